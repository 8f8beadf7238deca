"""Discord safety end to end: nothing the bot sends pings, article text cannot forge mentions or links,
admin commands refuse whoever is not an admin (or is not a member at all).

The answers come from the real engine over a real index (FakeEmbedder) holding a hostile article; Discord
is the spec_set fakes of test_discord_cogs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import discord
import pytest
from conftest import FakeEmbedder
from test_discord_cogs import (
    GUILD,
    ME,
    fake,
    interaction,
    invoke,
    member,
    mention_of_me,
    message,
    role,
    text_channel,
    thread,
)

from bot.app import Kabar, engine_for
from bot.discordbot.client import KabarBot, build_bot
from bot.discordbot.delivery import SourcesButton
from bot.discordbot.render import NO_PINGS
from bot.settings import Settings
from index.search import Searcher
from index.store import Store

pytestmark = pytest.mark.anyio

HOSTILE = (
    "Judul: Rapat @everyone <@123456789012345678> di <#789>\n\n"
    "Pengumuman untuk @here dan <@&456> serta <@!42>: rapat desa membahas jembatan gantung Sungai Ciliwung. "
    "Rapat desa tentang jembatan gantung Ciliwung meminta warga membuka "
    "[formulir resmi](http://evil.example/phish) "
    "dan </login:999> @everyone. "
    "Kepala desa <@123456789012345678> menyebut jembatan gantung Ciliwung rusak sejak banjir <#789>.\n"
)
QUESTION = "Apa yang dibahas rapat desa tentang jembatan gantung Sungai Ciliwung?"

# What must never reach Discord intact: mentions of any kind, @everyone/@here, a masked link.
LIVE = re.compile(r"<@|<#\d|<@&|</\w+:\d|@everyone|@here|\]\(")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def hostile_bot(tmp_path: Path, **overrides: Any) -> KabarBot:
    """The real engine over an index holding the hostile article, in a bot with its cogs loaded."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "rapat.txt").write_text(HOSTILE, encoding="utf-8")
    settings = Settings.load(
        None,
        home=tmp_path / "home",
        cache_dir=tmp_path / "cache",
        corpus=[corpus],
        discord_cooldown_seconds=0,
        min_support=-10.0,  # the fake embedder's scores are not the calibrated model's
        **overrides,
    )
    embedder = FakeEmbedder()
    kabar = Kabar(settings, tmp_path / "home", embedder, None, None)  # type: ignore[arg-type]
    kabar.indexer().sync([corpus])
    store = Store(tmp_path / "home", embedder.name, embedder.dim)
    kabar.store = store
    kabar.engine = engine_for(Searcher(store, embedder), None, settings.answer)
    bot = build_bot(kabar, settings, progress_interval=0.01)
    await bot.load_cogs()
    return bot


def texts_of(call: Any) -> list[str]:
    """Every piece of text a send/edit call carries: content and all embed parts."""
    out = [call.kwargs.get("content") or (call.args[0] if call.args else None) or ""]
    embeds = list(call.kwargs.get("embeds") or []) + (
        [call.kwargs["embed"]] if call.kwargs.get("embed") else []
    )
    for e in embeds:
        out += [e.title or "", e.description or "", e.footer.text or ""]
        out += [f.name or "" for f in e.fields] + [f.value or "" for f in e.fields]
    return out


def message_calls(*fakes: Any) -> list[Any]:
    """Every call that puts a message on Discord, over the fakes given (interactions, channels, messages)."""
    calls = []
    for f in fakes:
        for part in ("response.send_message", "followup.send", "edit_original_response", "send", "reply"):
            obj = f
            try:
                for name in part.split("."):
                    obj = getattr(obj, name)
            except AttributeError:
                continue
            calls += obj.call_args_list
    return calls


def assert_inert(calls: list[Any]) -> str:
    """No call may ping or carry a live mention or masked link; the visible text, joined."""
    assert calls
    seen = []
    for call in calls:
        assert call.kwargs.get("allowed_mentions") is NO_PINGS, call
        for t in texts_of(call):
            assert not LIVE.search(t), t
            seen.append(t.replace("\u200b", ""))
    return "\n".join(seen)


async def test_the_client_default_pings_nobody(tmp_path):
    bot = await hostile_bot(tmp_path)
    assert bot.allowed_mentions is not None and bot.allowed_mentions.to_dict() == {"parse": []}
    assert NO_PINGS.to_dict() == {"parse": []}


async def test_hostile_article_text_is_shown_but_inert_in_ask_answers_and_all_sources(tmp_path):
    bot = await hostile_bot(tmp_path)
    inter = interaction(bot)
    await invoke(bot, "ask", inter, question=QUESTION)
    visible = assert_inert(message_calls(inter))
    assert "jembatan gantung" in visible and "[1]" in visible  # answered from the article, with sources
    for hostile in ("@everyone", "<@123456789012345678>", "<#789>"):  # readers still see the article's text
        assert visible.count(hostile) >= 2  # in the title and in a quote

    views = [c.kwargs["view"] for c in inter.followup.send.call_args_list if "view" in c.kwargs]
    press = interaction(bot, user=member(2))
    key = views[0].children[0].key if views else bot.answers.put(await bot.worker.answer(QUESTION))
    await SourcesButton(key).callback(press)
    visible = assert_inert(message_calls(press))
    assert "jembatan gantung" in visible and "@everyone" in visible


async def test_mentions_threads_replies_and_refusals_ping_nobody(tmp_path):
    bot = await hostile_bot(tmp_path, discord_max_question_chars=200)
    cog = bot.get_cog("Mentions")
    msg = message(f"<@{ME}> {QUESTION}", mentions=(mention_of_me(),))
    new_thread = thread(msg.id)
    msg.create_thread.return_value = new_thread
    await cog.on_message(msg)
    follow = message("Kapan jembatan gantung rusak?", channel=new_thread)
    await cog.on_message(follow)
    too_long = message("x" * 300, channel=new_thread)
    await cog.on_message(too_long)
    channel = text_channel()
    plain = message(f"<@{ME}> " + "y" * 300, mentions=(mention_of_me(),), channel=channel)
    await cog.on_message(plain)
    visible = assert_inert(message_calls(new_thread, msg, follow, too_long, plain, channel))
    assert "jembatan gantung" in visible and "terlalu panjang" in visible


async def test_slash_refusals_stats_and_admin_edits_ping_nobody(tmp_path):
    bot = await hostile_bot(tmp_path, discord_admin_role="Redaksi")
    fakes = []
    for user, name, params in [
        (member(1), "ask", {"question": ""}),
        (member(1), "ask", {"question": "z" * 900}),
        (member(1), "kabar_stats", {}),
        (member(1), "reindex", {}),  # not an admin
        (member(admin=True), "reindex", {}),  # progress edits and the summary
    ]:
        inter = interaction(bot, user=user)
        await invoke(bot, name, inter, **params)
        fakes.append(inter)
    press = interaction(bot)
    await SourcesButton("0" * 16).callback(press)  # forgotten answer
    assert_inert(message_calls(*fakes, press))


# --- admin commands: who is refused --------------------------------------------------------------------


def forged_role_member() -> Any:
    """A member whose role is *named* like the admin role's id (anyone can name a role "55")."""
    return member(7, roles=(role(12345, "55"),))


@pytest.mark.parametrize(
    ("who", "guild_id", "expected"),
    [
        ("member without the role", GUILD, "Only Kabar admins can use this command"),
        ("role named like the admin role id", GUILD, "Only Kabar admins can use this command"),
        ("a user, not a member", GUILD, "Only Kabar admins can use this command"),
        ("no user at all", GUILD, "Only Kabar admins can use this command"),
        ("admin in a DM", None, "Kabar works in servers, not in direct messages."),
    ],
)
@pytest.mark.parametrize("command", ["reindex", "add_article"])
async def test_admin_commands_are_refused_before_anything_is_written(
    tmp_path, who, guild_id, expected, command
):
    bot = await hostile_bot(tmp_path, discord_admin_role="55")
    users = {
        "member without the role": member(3, roles=(role(56, "Pembaca"),)),
        "role named like the admin role id": forged_role_member(),
        "a user, not a member": fake(discord.User, id=4, bot=False),
        "no user at all": None,
        "admin in a DM": member(admin=True),
    }
    inter = interaction(bot, guild_id=guild_id, locale="en-US")
    inter.user = users[who]
    before = sorted(p.name for p in (tmp_path / "corpus").iterdir())
    params = {"file": fake(discord.Attachment, filename="a.txt", size=10)} if command == "add_article" else {}
    await invoke(bot, command, inter, **params)
    (call,) = inter.response.send_message.call_args_list
    assert call.kwargs["ephemeral"] is True and call.args[0].startswith(expected)
    assert call.kwargs["allowed_mentions"] is NO_PINGS
    inter.response.defer.assert_not_called()
    assert sorted(p.name for p in (tmp_path / "corpus").iterdir()) == before


async def test_the_admin_role_by_id_still_admits_its_members(tmp_path):
    bot = await hostile_bot(tmp_path, discord_admin_role="55")
    inter = interaction(bot, user=member(8, roles=(role(55, "Redaksi"),)))
    await invoke(bot, "reindex", inter)
    inter.response.defer.assert_awaited_once()
