"""Cog callbacks driven with spec_set fakes of discord.py objects, a fake engine, and a real index on disk.

Nothing connects to Discord: Interaction, Message, Thread, Member, Attachment... are `create_autospec`
fakes (unknown attributes fail, as in python-discord/bot's tests/helpers.py); the engine is a FakeEngine
with queued answers; /add_article and /reindex write a real Store with the deterministic FakeEmbedder.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import create_autospec

import discord
import pytest
from conftest import FakeEmbedder
from discord import app_commands

from bot.answer.types import Answer, Citation
from bot.app import Kabar
from bot.discordbot.client import KabarBot, build_bot
from bot.discordbot.delivery import SourcesButton
from bot.discordbot.gate import ModelGate
from bot.discordbot.render import MESSAGE_LIMIT
from bot.settings import Settings
from index.layout import DataDir, writer_lock
from index.store import Store

pytestmark = pytest.mark.anyio

GUILD, CHANNEL, OTHER_CHANNEL, ME = 10, 20, 21, 999
_ids = itertools.count(5000)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- fakes ---------------------------------------------------------------------------------------------


class FakeEngine:
    """Queued answers (or exceptions) in place of the engine; records each question and its history."""

    def __init__(self, *replies: Answer | BaseException):
        self.replies = deque(replies)
        self.calls: list[tuple[str, list[Any]]] = []
        self.llm = False
        self.drafts: list[Answer] = []  # what an LLM answer shows verified before it is complete
        self.after_drafts: Any = None  # called (in the worker thread) once the drafts were offered

    def uses_llm(self, use_llm: bool | None = None) -> bool:
        return self.llm

    def answer(self, question: str, history=(), top_k=None, on_progress=None) -> Answer:
        self.calls.append((question, list(history)))
        for draft in self.drafts if on_progress else ():
            on_progress(draft)
        if self.drafts and on_progress and self.after_drafts is not None:
            self.after_drafts()  # e.g. until the draft was shown: a real model takes seconds to finish
        reply = self.replies.popleft()
        if isinstance(reply, BaseException):
            raise reply
        return reply


class Clock:
    """A hand-moved clock for cooldowns."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake(cls: type, **attrs: Any) -> Any:
    """A spec_set fake of a discord.py class with the given attributes."""
    obj = create_autospec(cls, instance=True, spec_set=True)
    for name, value in attrs.items():
        setattr(obj, name, value)
    return obj


def sent_message(cls: type = discord.Message) -> Any:
    return fake(cls, id=next(_ids))


def member(user_id: int = 1, *, admin: bool = False, roles: tuple = (), bot: bool = False) -> Any:
    return fake(
        discord.Member,
        id=user_id,
        bot=bot,
        roles=list(roles),
        guild_permissions=discord.Permissions(administrator=admin),
        mention=f"<@{user_id}>",
    )


def role(role_id: int, name: str) -> Any:
    return fake(discord.Role, id=role_id, name=name, tags=None)


def text_channel(channel_id: int = CHANNEL) -> Any:
    channel = fake(discord.TextChannel, id=channel_id)
    channel.send.side_effect = lambda *a, **k: sent_message()
    return channel


def thread(thread_id: int, *, owner_id: int = ME, parent_id: int = CHANNEL) -> Any:
    t = fake(discord.Thread, id=thread_id, owner_id=owner_id, parent_id=parent_id)
    t.send.side_effect = lambda *a, **k: sent_message()
    return t


def interaction(
    bot: KabarBot, *, user: Any = None, channel: Any = None, guild_id: int | None = GUILD, locale: str = "id"
) -> Any:
    """A slash-command interaction whose response knows when it has been used, like the real one."""
    response = fake(discord.InteractionResponse)
    done = []
    response.is_done.side_effect = lambda: bool(done)
    response.defer.side_effect = lambda *a, **k: done.append("defer")
    response.send_message.side_effect = lambda *a, **k: done.append("send")
    followup = fake(discord.Webhook)
    followup.send.side_effect = lambda *a, **k: sent_message(discord.WebhookMessage)
    return fake(
        discord.Interaction,
        client=bot,
        user=user or member(),
        guild_id=guild_id,
        channel=channel or text_channel(),
        locale=discord.Locale(locale),
        command=None,
        response=response,
        followup=followup,
    )


def message(
    content: str,
    *,
    author: Any = None,
    channel: Any = None,
    mentions: tuple = (),
    reference: Any = None,
    guild: Any = None,
) -> Any:
    msg = fake(
        discord.Message,
        id=next(_ids),
        content=content,
        author=author or member(),
        channel=channel or text_channel(),
        guild=guild or fake(discord.Guild, id=GUILD, me=member(ME, bot=True)),
        mentions=list(mentions),
        role_mentions=[],
        reference=reference,
        type=discord.MessageType.reply if reference else discord.MessageType.default,
    )
    msg.reply.side_effect = lambda *a, **k: sent_message()
    return msg


def mention_of_me() -> Any:
    return member(ME, bot=True)


def content_of(call: Any) -> str | None:
    return call.kwargs.get("content", call.args[0] if call.args else None)


# --- answers and the bot -------------------------------------------------------------------------------

QUOTE = "Kementerian Luar Negeri Korsel mendesak agar pasukan Korea Utara segera ditarik."
CITATION = Citation(
    1,
    "e425e8bd6ae908eb",
    "Korsel panggil dubes Rusia",
    "Channelnewsasia.com",
    "2024-10-21",
    "seeds/x.txt",
    QUOTE,
    0.8,
    "INDOZONE.ID",
    "https://www.indozone.id/news/korsel",
)


def cited(question: str = "Apa desakan Korsel?", quote: str = QUOTE) -> Answer:
    c = Citation(**{**CITATION.__dict__, "quote": quote})
    return Answer(question, f"Menurut artikel yang diindeks:\n{quote} [1]", False, [c], "id")


def refused(question: str = "Siapa juara Piala Dunia?") -> Answer:
    text = "Informasi ini tidak ada dalam artikel yang diindeks, jadi saya tidak akan menebak."
    return Answer(question, text, True, [], "id")


async def start_bot(
    tmp_path: Path,
    *replies: Answer | BaseException,
    embedder: Any = None,
    clock: Any = None,
    **overrides: Any,
) -> KabarBot:
    """A bot with its cogs loaded (what setup_hook does before syncing), not connected."""
    values: dict[str, Any] = {
        "home": tmp_path / "home",
        "cache_dir": tmp_path / "cache",
        "corpus": [tmp_path / "corpus"],
        "discord_cooldown_seconds": 0,
    }
    settings = Settings.load(None, **{**values, **overrides})
    kabar = Kabar(settings, tmp_path / "home", embedder or FakeEmbedder(), None, FakeEngine(*replies))  # type: ignore[arg-type]
    bot = build_bot(kabar, settings, clock=clock or Clock(), progress_interval=0.01)
    await bot.load_cogs()
    return bot


def engine(bot: KabarBot) -> FakeEngine:
    return bot.kabar.engine  # type: ignore[return-value]


async def invoke(bot: KabarBot, name: str, inter: Any, **params: Any) -> None:
    """What the command tree does with a slash command: global check, command checks, callback, on_error."""
    command = bot.tree.get_command(name)
    assert isinstance(command, app_commands.Command)
    try:
        await bot.tree.interaction_check(inter)
        for check in command.checks:
            await check(inter)
        await command.callback(command.binding, inter, **params)
    except app_commands.AppCommandError as e:
        await bot.tree.on_error(inter, e)
    except Exception as e:
        await bot.tree.on_error(inter, app_commands.CommandInvokeError(command, e))


def ephemeral_text(inter: Any) -> str:
    """The one ephemeral reply an interaction got (as a first response or a follow-up)."""
    calls = [
        c
        for c in inter.response.send_message.call_args_list + inter.followup.send.call_args_list
        if c.kwargs.get("ephemeral")
    ]
    assert len(calls) == 1, calls
    return content_of(calls[0])


# --- /ask ----------------------------------------------------------------------------------------------


async def test_ask_defers_at_once_then_answers_publicly_with_the_sources(tmp_path):
    bot = await start_bot(tmp_path, cited())
    inter = interaction(bot)
    await invoke(bot, "ask", inter, question="  Apa desakan Korsel?  ")

    inter.response.defer.assert_awaited_once_with(thinking=True)
    inter.response.send_message.assert_not_called()
    (call,) = inter.followup.send.call_args_list
    assert call.kwargs["content"] == f"Menurut artikel yang diindeks:\n{QUOTE} [1]"
    assert "ephemeral" not in call.kwargs and call.kwargs["wait"] is True
    (embed,) = call.kwargs["embeds"]
    assert embed.title == "Sumber" and embed.fields[0].name == "[1] Korsel panggil dubes Rusia"
    assert "<https://www.indozone.id/news/korsel>" in embed.fields[0].value
    assert "view" not in call.kwargs  # everything fitted: no "All sources" button
    assert engine(bot).calls == [("Apa desakan Korsel?", [])]


async def test_ask_runs_the_engine_off_the_event_loop(tmp_path):
    bot = await start_bot(tmp_path, cited())
    loop_thread = []

    class ThreadNoting(FakeEngine):
        def answer(self, question, history=(), top_k=None):
            loop_thread.append(threading.current_thread() is threading.main_thread())
            return super().answer(question, history)

    bot.kabar.engine = ThreadNoting(cited())  # type: ignore[assignment]
    await invoke(bot, "ask", interaction(bot), question="Apa desakan Korsel?")
    assert loop_thread == [False]


async def test_a_refusal_is_sent_as_plain_text_in_the_questions_language(tmp_path):
    bot = await start_bot(tmp_path, refused())
    inter = interaction(bot)
    await invoke(bot, "ask", inter, question="Siapa juara Piala Dunia?")
    (call,) = inter.followup.send.call_args_list
    assert call.kwargs["content"] == refused().answer
    assert call.kwargs["embeds"] == []


async def test_an_over_long_question_is_refused_ephemerally_without_asking_the_engine(tmp_path):
    bot = await start_bot(tmp_path, discord_max_question_chars=20)
    inter = interaction(bot)
    await invoke(bot, "ask", inter, question="What did the foreign ministry of South Korea demand?")
    assert ephemeral_text(inter) == "That question is too long (52 characters); the limit is 20."
    inter.response.defer.assert_not_called()
    assert engine(bot).calls == []


async def test_a_blank_question_gets_a_hint(tmp_path):
    bot = await start_bot(tmp_path)
    inter = interaction(bot)
    await invoke(bot, "ask", inter, question="   ")
    assert ephemeral_text(inter).startswith("Ajukan pertanyaan tentang artikel berita")


async def test_cooldown_per_user(tmp_path):
    clock = Clock()
    bot = await start_bot(tmp_path, cited(), cited(), cited(), clock=clock, discord_cooldown_seconds=30)
    alice, bob = member(1), member(2)
    await invoke(bot, "ask", interaction(bot, user=alice), question="Apa desakan Korsel?")

    clock.now += 10
    too_soon = interaction(bot, user=alice)
    await invoke(bot, "ask", too_soon, question="Apa desakan Korsel?")
    assert ephemeral_text(too_soon) == "Tunggu 20 detik lagi sebelum bertanya lagi."
    too_soon.response.defer.assert_not_called()

    await invoke(
        bot, "ask", interaction(bot, user=bob), question="Apa desakan Korsel?"
    )  # others are not held up
    clock.now += 21
    await invoke(bot, "ask", interaction(bot, user=alice), question="Apa desakan Korsel?")
    assert len(engine(bot).calls) == 3


async def test_ask_only_in_allowed_servers_and_channels(tmp_path):
    bot = await start_bot(
        tmp_path, cited(), cited(), discord_guild_ids=[GUILD], discord_channel_ids=[CHANNEL]
    )

    elsewhere = interaction(bot, channel=text_channel(OTHER_CHANNEL), locale="en-US")
    await invoke(bot, "ask", elsewhere, question="What happened?")
    assert ephemeral_text(elsewhere) == "Kabar is not enabled here."

    other_server = interaction(bot, guild_id=77)
    await invoke(bot, "ask", other_server, question="Apa?")
    assert ephemeral_text(other_server) == "Kabar tidak digunakan di sini."

    dm = interaction(bot, guild_id=None, locale="en-US")
    await invoke(bot, "ask", dm, question="What?")
    assert ephemeral_text(dm) == "Kabar works in servers, not in direct messages."

    in_thread = interaction(bot, channel=thread(30, owner_id=1, parent_id=CHANNEL))
    await invoke(bot, "ask", in_thread, question="Apa desakan Korsel?")  # a thread counts as its parent
    in_thread.followup.send.assert_awaited_once()
    assert len(engine(bot).calls) == 1


async def test_a_failing_engine_gets_a_clear_message_not_a_traceback_and_the_bot_carries_on(tmp_path, caplog):
    bot = await start_bot(tmp_path, RuntimeError("chroma exploded"), cited())
    inter = interaction(bot)
    with caplog.at_level(logging.ERROR):
        await invoke(bot, "ask", inter, question="Apa desakan Korsel?")
    (call,) = inter.followup.send.call_args_list
    assert content_of(call) == "Maaf, terjadi kesalahan. Kesalahannya sudah dicatat; silakan coba lagi nanti."
    assert "Traceback" not in content_of(call) and "chroma" not in content_of(call)
    assert "chroma exploded" in caplog.text  # logged for the operator

    again = interaction(bot)
    await invoke(bot, "ask", again, question="Apa desakan Korsel?")
    assert again.followup.send.call_args.kwargs["embeds"]


async def test_a_long_answer_comes_in_several_messages_and_the_all_sources_button_shows_full_quotes(tmp_path):
    long_quote = " ".join(["Pasukan khusus Korea Utara sudah berada di Rusia untuk pelatihan."] * 40)
    answer = cited(quote=long_quote)
    bot = await start_bot(tmp_path, answer)
    inter = interaction(bot)
    await invoke(bot, "ask", inter, question="Apa desakan Korsel?")

    calls = inter.followup.send.call_args_list
    assert len(calls) == 2
    assert all(len(c.kwargs["content"]) <= MESSAGE_LIMIT for c in calls)
    assert not calls[0].kwargs["embeds"] and "view" not in calls[0].kwargs
    view = calls[1].kwargs["view"]
    (button,) = view.children
    assert isinstance(button, SourcesButton) and button.item.label == "Semua sumber"

    press = interaction(bot, user=member(2))
    await button.callback(press)
    (shown,) = press.response.send_message.call_args_list
    assert shown.kwargs["ephemeral"] is True
    assert long_quote in shown.kwargs["embeds"][0].description

    forgotten = interaction(bot, locale="en-US")
    await SourcesButton("0" * 16).callback(forgotten)
    assert ephemeral_text(forgotten).startswith("The sources of this answer are no longer available")


async def test_a_reply_to_an_ask_answer_is_a_follow_up(tmp_path):
    bot = await start_bot(tmp_path, cited(), cited("Kapan?"))
    inter = interaction(bot)
    inter.followup.send.side_effect = None
    inter.followup.send.return_value = fake(discord.WebhookMessage, id=4321)
    await invoke(bot, "ask", inter, question="Apa desakan Korsel?")
    reply = message("Kapan itu?", reference=fake(discord.MessageReference, message_id=4321, resolved=None))
    await bot.get_cog("Mentions").on_message(reply)
    question, history = engine(bot).calls[-1]
    assert question == "Kapan itu?" and [t.question for t in history] == ["Apa desakan Korsel?"]


# --- mentions, threads and reply chains ----------------------------------------------------------------


async def test_a_mention_opens_a_thread_and_answers_there_with_a_working_reaction(tmp_path):
    bot = await start_bot(tmp_path, cited())
    msg = message("<@999> Apa desakan Korsel?", mentions=(mention_of_me(),))
    new_thread = thread(msg.id)
    msg.create_thread.return_value = new_thread
    await bot.get_cog("Mentions").on_message(msg)

    msg.create_thread.assert_awaited_once_with(name="Apa desakan Korsel?", auto_archive_duration=1440)
    assert engine(bot).calls == [("Apa desakan Korsel?", [])]
    (call,) = new_thread.send.call_args_list
    assert call.kwargs["content"].endswith("[1]") and call.kwargs["embeds"]
    msg.reply.assert_not_called()
    msg.add_reaction.assert_awaited_once_with("⏳")
    msg.remove_reaction.assert_awaited_once_with("⏳", msg.guild.me)
    new_thread.typing.assert_called_once()


async def test_messages_in_the_bots_thread_are_follow_ups_with_bounded_memory(tmp_path):
    bot = await start_bot(tmp_path, *[cited(f"q{i}") for i in range(4)], discord_memory_turns=2)
    t = thread(4242)
    for i in range(4):
        await bot.get_cog("Mentions").on_message(message(f"pertanyaan {i}", channel=t))
    assert [[turn.question for turn in history] for _, history in engine(bot).calls] == [
        [],
        ["pertanyaan 0"],
        ["pertanyaan 0", "pertanyaan 1"],
        ["pertanyaan 1", "pertanyaan 2"],
    ]
    assert t.send.await_count == 4  # plain messages in the thread, no reply pings


async def test_without_threads_a_mention_is_answered_by_a_reply_and_replies_continue_the_chain(tmp_path):
    bot = await start_bot(tmp_path, cited(), cited("lalu?"), discord_open_threads=False)
    cog = bot.get_cog("Mentions")
    first = message("<@999> Apa desakan Korsel?", mentions=(mention_of_me(),))
    first.reply.side_effect = None
    first.reply.return_value = fake(discord.Message, id=4321)
    await cog.on_message(first)
    first.create_thread.assert_not_called()
    (call,) = first.reply.call_args_list
    assert call.kwargs["mention_author"] is False and call.kwargs["embeds"]

    follow = message(
        "Lalu bagaimana?", reference=fake(discord.MessageReference, message_id=4321, resolved=None)
    )
    await cog.on_message(follow)
    assert [t.question for t in engine(bot).calls[-1][1]] == ["Apa desakan Korsel?"]
    follow.reply.assert_awaited_once()


async def test_a_reply_to_an_answer_from_before_a_restart_starts_a_new_chain(tmp_path):
    bot = await start_bot(tmp_path, cited())
    old_answer = fake(discord.Message, id=77, author=member(ME, bot=True))
    msg = message("Kapan?", reference=fake(discord.MessageReference, message_id=77, resolved=old_answer))
    await bot.get_cog("Mentions").on_message(msg)
    assert engine(bot).calls == [("Kapan?", [])]
    assert bot.conversations.knows(77)


@pytest.mark.parametrize(
    "case",
    ["no mention", "from a bot", "reply to someone else", "mentions off", "other channel", "system message"],
)
async def test_messages_not_for_the_bot_are_ignored(tmp_path, case):
    overrides: dict[str, Any] = {"discord_channel_ids": [CHANNEL]}
    if case == "mentions off":
        overrides["discord_answer_mentions"] = False
    bot = await start_bot(tmp_path, **overrides)
    me = (mention_of_me(),)
    msg = {
        "no mention": lambda: message("Apa kabar semua?"),
        "from a bot": lambda: message("<@999> halo", mentions=me, author=member(5, bot=True)),
        "reply to someone else": lambda: message(
            "setuju", reference=fake(discord.MessageReference, message_id=1, resolved=None)
        ),
        "mentions off": lambda: message("<@999> Apa desakan Korsel?", mentions=me),
        "other channel": lambda: message("<@999> Apa?", mentions=me, channel=text_channel(OTHER_CHANNEL)),
        "system message": lambda: message("<@999>", mentions=me),
    }[case]()
    if case == "system message":
        msg.type = discord.MessageType.pins_add
    await bot.get_cog("Mentions").on_message(msg)
    assert engine(bot).calls == []
    msg.reply.assert_not_called()
    msg.add_reaction.assert_not_called()
    msg.create_thread.assert_not_called()


async def test_with_mentions_off_the_bots_threads_still_get_follow_ups(tmp_path):
    bot = await start_bot(tmp_path, cited(), discord_answer_mentions=False)
    await bot.get_cog("Mentions").on_message(message("Apa desakan Korsel?", channel=thread(4242)))
    assert len(engine(bot).calls) == 1


async def test_a_bare_mention_gets_a_hint_and_an_over_long_one_a_refusal(tmp_path):
    bot = await start_bot(tmp_path, discord_max_question_chars=10)
    cog = bot.get_cog("Mentions")
    bare = message("<@999>", mentions=(mention_of_me(),))
    await cog.on_message(bare)
    assert content_of(bare.reply.call_args).startswith("Ajukan pertanyaan")
    long = message("<@999> What did the foreign ministry say?", mentions=(mention_of_me(),))
    await cog.on_message(long)
    assert content_of(long.reply.call_args) == "That question is too long (34 characters); the limit is 10."
    assert engine(bot).calls == []
    long.create_thread.assert_not_called()


async def test_a_failing_answer_to_a_mention_is_reported_and_the_listener_survives(tmp_path, caplog):
    bot = await start_bot(tmp_path, ValueError("boom"), cited(), discord_open_threads=False)
    cog = bot.get_cog("Mentions")
    msg = message("<@999> Apa desakan Korsel?", mentions=(mention_of_me(),))
    with caplog.at_level(logging.ERROR):
        await cog.on_message(msg)  # must not raise
    assert content_of(msg.reply.call_args) == (
        "Maaf, terjadi kesalahan. Kesalahannya sudah dicatat; silakan coba lagi nanti."
    )
    assert [c.args[0] for c in msg.add_reaction.call_args_list] == ["⏳", "⚠️"]
    msg.remove_reaction.assert_awaited_once_with("⏳", msg.guild.me)
    assert "boom" in caplog.text

    ok = message("<@999> Apa desakan Korsel?", mentions=(mention_of_me(),))
    await cog.on_message(ok)
    assert ok.reply.call_args.kwargs["embeds"]


async def test_no_thread_permission_falls_back_to_a_reply(tmp_path):
    bot = await start_bot(tmp_path, cited())
    msg = message("<@999> Apa desakan Korsel?", mentions=(mention_of_me(),))
    response = SimpleNamespace(status=403, reason="Forbidden")
    msg.create_thread.side_effect = discord.Forbidden(response, "Missing Permissions")
    await bot.get_cog("Mentions").on_message(msg)
    msg.reply.assert_awaited_once()
    assert msg.reply.call_args.kwargs["embeds"]


# --- admin: who may ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "admin_role", "allowed"),
    [
        (member(), None, False),
        (member(admin=True), None, True),
        (member(roles=(role(55, "Redaksi"),)), "Redaksi", True),
        (member(roles=(role(55, "Redaksi"),)), "55", True),
        (member(roles=(role(56, "Pembaca"),)), "Redaksi", False),
    ],
)
async def test_admin_commands_check_the_role_or_the_administrator_permission(
    tmp_path, user, admin_role, allowed
):
    bot = await start_bot(tmp_path, discord_admin_role=admin_role)
    for name in ("reindex", "add_article"):
        inter = interaction(bot, user=user, locale="en-US")
        command = bot.tree.get_command(name)
        try:
            ok = all([await check(inter) for check in command.checks])
        except app_commands.CheckFailure as e:
            ok = False
            await bot.tree.on_error(inter, e)
            expected = "Only Kabar admins can use this command "
            expected += (
                "(the “Redaksi” role or the Administrator permission)."
                if admin_role
                else "(the Administrator permission)."
            )
            assert ephemeral_text(inter) == expected
        assert ok == allowed


async def test_non_admins_are_refused_before_anything_happens(tmp_path, corpus):
    bot = await start_bot(tmp_path, corpus=[corpus], discord_admin_role="Redaksi")
    inter = interaction(bot)
    await invoke(bot, "reindex", inter)
    assert (
        ephemeral_text(inter)
        == "Perintah ini hanya untuk admin Kabar (peran “Redaksi” atau izin Administrator)."
    )
    inter.response.defer.assert_not_called()
    assert not DataDir(tmp_path / "home").exists()


# --- /reindex ------------------------------------------------------------------------------------------


class SlowEmbedder(FakeEmbedder):
    """The fake embedder, slowed down so that a re-index takes a while; notes when the indexer started."""

    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()

    def count_tokens(self, text: str) -> int:
        self.started.set()
        time.sleep(0.005)
        return super().count_tokens(text)


async def test_reindex_reports_progress_then_a_summary_and_the_index_holds_the_corpus(tmp_path, corpus):
    bot = await start_bot(tmp_path, corpus=[corpus], embedder=SlowEmbedder())
    inter = interaction(bot, user=member(admin=True))
    await invoke(bot, "reindex", inter)

    inter.response.defer.assert_awaited_once_with(thinking=True, ephemeral=True)
    edits = [c.kwargs["content"] for c in inter.edit_original_response.call_args_list]
    assert edits[0] == f"⏳ Re-indexing {corpus}…"
    assert any("Embedding chunks" in e or "Reading articles" in e for e in edits[1:-1])
    assert edits[-1].startswith(f"✅ Re-indexed `{corpus}`: 1 new, 0 changed, 0 unchanged article(s);")
    assert "The index now holds 1 article(s)" in edits[-1]
    stats = await bot.worker.stats()
    assert stats["articles"] == 1 and stats["chunks"] > 0


async def test_answers_keep_flowing_while_a_reindex_runs(tmp_path, corpus):
    bot = await start_bot(tmp_path, cited(), corpus=[corpus], embedder=SlowEmbedder())
    reindex = asyncio.create_task(invoke(bot, "reindex", interaction(bot, user=member(admin=True))))
    while not bot.kabar.embedder.started.is_set():  # the indexer is busy chunking (~100 slow calls)
        await asyncio.sleep(0.01)
    ask = interaction(bot)
    await asyncio.wait_for(invoke(bot, "ask", ask, question="Apa desakan Korsel?"), timeout=10)
    assert not reindex.done()
    ask.followup.send.assert_awaited_once()
    await reindex


def test_the_model_gate_lets_a_waiting_question_in_before_the_indexers_next_call():
    gate = ModelGate()
    order: list[str] = []

    def use(kind: str) -> None:
        with gate.question() if kind == "question" else gate.indexing():
            order.append(kind)

    with gate.indexing():  # an embedding call of a re-index is running
        question = threading.Thread(target=use, args=("question",))
        question.start()
        time.sleep(0.05)  # the question is waiting
        next_call = threading.Thread(target=use, args=("index",))
        next_call.start()
        time.sleep(0.05)
        assert order == []
    question.join(5)
    next_call.join(5)
    assert order == ["question", "index"]


async def test_a_second_writer_is_told_to_wait(tmp_path, corpus):
    bot = await start_bot(tmp_path, corpus=[corpus])
    inter = interaction(bot, user=member(admin=True))
    with writer_lock(tmp_path / "home"):
        await invoke(bot, "reindex", inter)
    assert ephemeral_text(inter) == "Pengindeksan lain sedang berjalan; coba lagi setelah selesai."


async def test_reindex_without_a_corpus_folder_says_what_to_set(tmp_path):
    bot = await start_bot(tmp_path, corpus=[tmp_path / "nowhere"])
    inter = interaction(bot, user=member(admin=True))
    await invoke(bot, "reindex", inter)
    content = inter.edit_original_response.call_args.kwargs["content"]
    assert content == f"❌ No corpus folder at `{tmp_path / 'nowhere'}`: create it or set KABAR_CORPUS."


# --- /add_article --------------------------------------------------------------------------------------

ARTICLE_MD = b"""---
title: Banjir rob di Jakarta Utara
date: 2024-11-02
---
# Banjir rob di Jakarta Utara

Banjir rob kembali merendam permukiman warga di Jakarta Utara pada Sabtu pagi. Ketinggian air mencapai
lima puluh sentimeter di beberapa ruas jalan.

Badan Penanggulangan Bencana Daerah mengerahkan pompa dan perahu karet untuk membantu warga.
"""


def attachment(filename: str, data: bytes, size: int | None = None) -> Any:
    a = fake(discord.Attachment, filename=filename, size=len(data) if size is None else size)
    a.read.return_value = data
    return a


async def test_add_article_stores_a_safe_copy_indexes_it_and_says_what_was_added(tmp_path):
    folder = tmp_path / "corpus"
    bot = await start_bot(tmp_path)
    inter = interaction(bot, user=member(admin=True))
    await invoke(bot, "add_article", inter, file=attachment("../../Banjir Rob (final).MD", ARTICLE_MD))

    inter.response.defer.assert_awaited_once_with(thinking=True, ephemeral=True)
    (stored,) = folder.iterdir()
    assert stored.name.startswith("discord-banjir-rob-final-") and stored.suffix == ".md"
    assert stored.read_bytes() == ARTICLE_MD
    store = Store(tmp_path / "home")
    ((article_id, _),) = store.article_hashes().items()
    chunks = store.stats()["chunks"]
    store.close()
    content = inter.edit_original_response.call_args.kwargs["content"]
    assert content.startswith(
        f"✅ Added **Banjir rob di Jakarta Utara** (`{article_id}`): {chunks} chunk(s)."
    )
    assert f"Stored as `{stored.name}` in the corpus" in content

    again = interaction(bot, user=member(admin=True))
    await invoke(bot, "add_article", again, file=attachment("copy.md", ARTICLE_MD))
    content = again.edit_original_response.call_args.kwargs["content"]
    assert content.startswith("ℹ️ Already indexed: **Banjir rob di Jakarta Utara**")
    assert len(list(folder.iterdir())) == 1  # no duplicate file


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        (
            attachment("foto.png", b"\x89PNG\r\n"),
            "❌ `foto.png` is not a supported article file: use .txt, .md, .html, .htm, .json.",
        ),
        (attachment("besar.txt", b"x", size=3_000_000), "❌ `besar.txt` is 3.0 MB; the limit is 2.0 MB."),
        (attachment("kosong.txt", b""), "❌ `kosong.txt` is empty."),
    ],
)
async def test_add_article_refuses_a_bad_attachment_before_downloading_it(tmp_path, file, expected):
    bot = await start_bot(tmp_path)
    inter = interaction(bot, user=member(admin=True))
    await invoke(bot, "add_article", inter, file=file)
    assert ephemeral_text(inter) == expected
    file.read.assert_not_called()
    inter.response.defer.assert_not_called()


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        (
            attachment("gambar.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
            "❌ `gambar.txt` is a binary file, not text.",
        ),
        (
            attachment("latin.txt", "Berita café".encode("latin-1")),
            "❌ `latin.txt` is not UTF-8 text (invalid byte at position 10).",
        ),
        (
            attachment("rusak.json", b'{"text": '),
            "❌ `rusak.json` is not valid JSON (line 1, column 10: Expecting value).",
        ),
        (
            attachment("bohong.txt", b"x" * 3_000_000, size=10),
            "❌ `bohong.txt` is 3.0 MB; the limit is 2.0 MB.",
        ),
        (attachment("kosong.md", b"\n \n"), "❌ `kosong.md` holds no text."),
        (attachment("tanpa.json", b'{"title": "no text"}'), "❌ `tanpa.json` holds no usable article: "),
    ],
)
async def test_add_article_refuses_content_that_is_not_an_article_and_stores_nothing(
    tmp_path, file, expected
):
    bot = await start_bot(tmp_path)
    inter = interaction(bot, user=member(admin=True))
    await invoke(bot, "add_article", inter, file=file)
    assert inter.edit_original_response.call_args.kwargs["content"].startswith(expected)
    folder = tmp_path / "corpus"
    assert not folder.exists() or list(folder.iterdir()) == []


# --- /kabar_stats --------------------------------------------------------------------------------------


async def test_kabar_stats_shows_the_index_to_whoever_asked(tmp_path, corpus):
    bot = await start_bot(tmp_path, corpus=[corpus])
    await bot.worker.reindex([corpus], prune=False, progress=lambda *a: None)
    inter = interaction(bot, locale="en-US")
    await invoke(bot, "kabar_stats", inter)
    inter.response.defer.assert_awaited_once_with(thinking=True, ephemeral=True)
    (call,) = inter.followup.send.call_args_list
    assert call.kwargs["ephemeral"] is True
    fields = {f.name: f.value for f in call.kwargs["embed"].fields}
    assert fields["Articles"] == "1" and fields["Embedding model"] == "fake-bow-64"
    assert str(tmp_path) not in str(call.kwargs["embed"].to_dict())  # the data directory stays private


# --- progress while an LLM answers --------------------------------------------------------------------


async def test_an_llm_answer_edits_the_reply_as_sentences_verify_then_replaces_it(tmp_path):
    final = cited()
    bot = await start_bot(tmp_path, final)
    engine(bot).llm = True
    engine(bot).drafts = [
        Answer("q", "Kementerian mendesak [1].", False, [], "id", mode="llm"),
        Answer("q", "Kementerian mendesak [1]. Pasukan ditarik [1].", False, [], "id", mode="llm"),
    ]
    inter = interaction(bot)
    shown = threading.Event()

    def edited(*args: Any, **kwargs: Any) -> Any:
        shown.set()
        return sent_message(discord.InteractionMessage)

    inter.edit_original_response.side_effect = edited
    engine(bot).after_drafts = lambda: shown.wait(10)
    await invoke(bot, "ask", inter, question="Apa desakan Korsel?")
    edits = [c.kwargs for c in inter.edit_original_response.call_args_list]
    # one draft, whichever was latest when the event loop got to it (the worker thread may offer both
    # first); the other came within 1.5 s of it, so it was never shown; then the answer replaced it
    drafts = {"Kementerian mendesak [1]. …", "Kementerian mendesak [1]. Pasukan ditarik [1]. …"}
    assert edits[0].keys() == {"content"} and edits[0]["content"] in drafts
    assert edits[-1]["content"] == final.answer and edits[-1]["embeds"]
    assert len(edits) == 2
    inter.followup.send.assert_not_called()  # the answer replaced the draft instead of adding a message


async def test_progress_edits_are_rate_limited_and_end_with_the_latest_draft():
    import asyncio
    import threading

    from bot.discordbot.progress import ProgressEdits

    shown: list[tuple[float, str]] = []
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def edit(text: str) -> None:
        shown.append((loop.time() - start, text))

    progress = ProgressEdits(edit, loop, interval=0.2)

    def worker() -> None:  # drafts from the engine's thread, far faster than Discord allows edits
        for i in range(1, 31):
            progress.offer(Answer("q", f"draft {i}", False, [], "id", mode="llm"))
            threading.Event().wait(0.02)

    await asyncio.to_thread(worker)
    await asyncio.sleep(0.45)
    await progress.stop()
    assert 2 <= len(shown) <= 5 and progress.edits == len(shown)
    gaps = [b[0] - a[0] for a, b in zip(shown, shown[1:], strict=False)]
    assert all(g >= 0.19 for g in gaps), gaps  # never two edits within the interval
    assert shown[-1][1] == "draft 30 …"  # the latest draft wins
    progress.offer(Answer("q", "late", False, [], "id", mode="llm"))
    await asyncio.sleep(0.3)
    assert shown[-1][1] == "draft 30 …"  # nothing after stop()
