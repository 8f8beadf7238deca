"""Start-up up to the point of connecting: settings, intents, cogs, command tree, sync, `kabar discord`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import discord
import pytest
from click.testing import CliRunner
from discord import app_commands

from bot.app import Kabar
from bot.cli.discord_cmd import check_report, discord_cmd
from bot.discordbot.client import EXTENSIONS, KabarBot, KabarTree, build_bot, build_intents, sync_targets
from bot.settings import Settings
from index.ingest import index_paths
from index.store import Store

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.sEcReT-tOkEn-ThAt-MuSt-NeVeR-bE-sHoWn"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings.load(None, home=tmp_path / "home", cache_dir=tmp_path / "cache", **values)


class RecordingTree(KabarTree):
    """The real tree, except that `sync` records where it would sync instead of calling Discord."""

    def __init__(self, client: discord.Client, **options: Any):
        super().__init__(client, **options)
        self.synced: list[tuple[int | None, list[str]]] = []

    async def sync(self, *, guild: discord.abc.Snowflake | None = None) -> list[app_commands.AppCommand]:
        names = sorted(c.name for c in self.get_commands(guild=guild))
        self.synced.append((guild.id if guild else None, names))
        return []


COMMANDS = {
    "ask": {"question": "Your question, in Indonesian or English"},
    "reindex": {"prune": "Also remove indexed articles whose files are gone (default: keep them)"},
    "add_article": {"file": "The article: a .txt, .md, .html, .htm or .json file in UTF-8 (not a link)"},
    "kabar_stats": {},
}


@pytest.mark.anyio
async def test_the_bot_builds_loads_its_cogs_and_holds_the_commands_without_connecting(tmp_path):
    bot = build_bot(None, settings(tmp_path))  # type: ignore[arg-type]
    assert not bot.is_ready() and bot.user is None
    await bot.load_cogs()

    assert sorted(bot.cogs) == ["Admin", "Ask", "Mentions", "Stats"]
    assert sorted(bot.extensions) == sorted(EXTENSIONS)
    commands = {c.name: c for c in bot.tree.get_commands()}
    assert {name: {p.name: p.description for p in c.parameters} for name, c in commands.items()} == COMMANDS
    for command in commands.values():
        payload = command.to_dict(bot.tree)  # what would be synced: Discord's own limits hold
        assert 1 <= len(payload["description"]) <= 100
        assert all(1 <= len(o["description"]) <= 100 for o in payload.get("options", []))
        assert payload["contexts"] == [0]  # servers only, not DMs
    assert commands["ask"].parameters[0].required and not commands["reindex"].parameters[0].required
    assert commands["add_article"].parameters[0].type is discord.AppCommandOptionType.attachment
    assert all(len(commands[name].checks) == 1 for name in commands)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, [(None, sorted(COMMANDS))]),
        ({"discord_guild_ids": [1, 2]}, [(1, sorted(COMMANDS)), (2, sorted(COMMANDS))]),
        ({"discord_guild_ids": [1], "discord_sync_guild_ids": [3]}, [(3, sorted(COMMANDS))]),
    ],
)
async def test_setup_hook_syncs_to_the_configured_guilds_or_globally(tmp_path, values, expected):
    bot = KabarBot(None, settings(tmp_path, **values), tree_cls=RecordingTree)  # type: ignore[arg-type]
    await bot.setup_hook()
    assert bot.tree.synced == expected
    assert [None if t is None else t.id for t in sync_targets(bot.settings)] == [g for g, _ in expected]


@pytest.mark.parametrize(
    ("values", "guild_messages", "message_content"),
    [
        ({}, True, True),
        ({"discord_follow_ups": False}, True, False),  # a mention carries its text without the intent
        ({"discord_follow_ups": False, "discord_answer_mentions": False}, False, False),
        ({"discord_answer_mentions": False}, True, True),
    ],
)
def test_intents_are_only_what_the_features_need(tmp_path, values, guild_messages, message_content):
    intents = build_intents(settings(tmp_path, **values))
    assert (intents.guilds, intents.guild_messages, intents.message_content) == (
        True,
        guild_messages,
        message_content,
    )
    assert not intents.members and not intents.presences and not intents.dm_messages


def test_discord_settings_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KABAR_DISCORD_GUILD_IDS", "[111, 222]")
    monkeypatch.setenv("KABAR_DISCORD_ADMIN_ROLE", "Redaksi")
    monkeypatch.setenv("KABAR_DISCORD_COOLDOWN_SECONDS", "2.5")
    monkeypatch.setenv("KABAR_DISCORD_TOKEN", TOKEN)
    s = Settings.load(None)
    assert (s.discord.guild_ids, s.discord.admin_role, s.discord.cooldown_seconds) == (
        [111, 222],
        "Redaksi",
        2.5,
    )
    assert TOKEN not in repr(s) and TOKEN not in str(s.model_dump())
    assert s.discord.token is not None and s.discord.token.get_secret_value() == TOKEN


# --- `kabar discord` -----------------------------------------------------------------------------------


def run_discord(tmp_path: Path, monkeypatch, env: dict[str, str | None], *args: str):
    monkeypatch.chdir(tmp_path)  # no stray .env from the working directory
    env = {"KABAR_HOME": str(tmp_path / "home"), "KABAR_DISCORD_TOKEN": None, **env}
    return CliRunner().invoke(discord_cmd, list(args), env=env)


def test_without_a_token_it_exits_non_zero_saying_what_to_set(tmp_path, monkeypatch):
    result = run_discord(tmp_path, monkeypatch, {}, "--check")
    assert result.exit_code == 1
    assert "no Discord bot token: set KABAR_DISCORD_TOKEN" in result.output


def test_a_token_in_dotenv_is_read_and_a_malformed_one_is_refused_without_echoing_it(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("KABAR_DISCORD_TOKEN=not-a-token-secret\n")
    result = run_discord(tmp_path, monkeypatch, {}, "--check")
    assert result.exit_code == 1
    assert "KABAR_DISCORD_TOKEN does not look like a bot token" in result.output
    assert "not-a-token-secret" not in result.output


def test_invalid_settings_name_the_variable_and_never_echo_the_token(tmp_path, monkeypatch):
    result = run_discord(
        tmp_path,
        monkeypatch,
        {"KABAR_DISCORD_TOKEN": TOKEN, "KABAR_DISCORD_COOLDOWN_SECONDS": "-1"},
        "--check",
    )
    assert result.exit_code == 1
    assert "invalid settings: KABAR_DISCORD_COOLDOWN_SECONDS:" in result.output
    assert TOKEN not in result.output and "sEcReT" not in result.output


def test_check_reports_index_corpus_sync_and_intents_without_secrets(tmp_path, corpus, fake_embedder):
    s = settings(tmp_path, corpus=[corpus, tmp_path / "missing"], discord_guild_ids=[7], discord_token=TOKEN)
    store = Store(tmp_path / "home", fake_embedder.name, fake_embedder.dim)
    index_paths([corpus], store, fake_embedder)
    kabar = Kabar(s, tmp_path / "home", fake_embedder, store, None)  # type: ignore[arg-type]
    lines = check_report(kabar, s)
    store.close()
    assert lines[0] == "Settings: OK; token: set (not shown)."
    assert lines[1].startswith("Index: 1 article(s), ")
    assert (
        lines[2] == f"Corpus folders for /reindex and /add_article: {corpus}, {tmp_path / 'missing'} "
        f"(missing: {tmp_path / 'missing'})."
    )
    assert lines[3] == "Slash commands sync to guild(s) 7."
    assert lines[4].startswith(
        "Intents: guilds, guild_messages, message_content. Enable “Message Content Intent”"
    )
    assert TOKEN not in "\n".join(lines)


def test_the_command_is_named_discord_with_check_and_data_dir():
    assert discord_cmd.name == "discord"
    assert {p.name for p in discord_cmd.params} == {"check", "data_dir"}
