"""Sharding: KABAR_DISCORD_SHARD_COUNT/_IDS build discord.py's AutoShardedBot with exactly those shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import discord
import pytest

from bot.discordbot.client import KabarBot, ShardedKabarBot, build_bot
from bot.settings import Settings, SettingsError


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings.load(None, home=tmp_path / "home", cache_dir=tmp_path / "cache", **values)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_unsharded_by_default(tmp_path: Path) -> None:
    bot = build_bot(None, settings(tmp_path))  # type: ignore[arg-type]
    assert type(bot) is KabarBot and not isinstance(bot, discord.AutoShardedClient)
    assert bot.shard_count is None


@pytest.mark.parametrize(
    ("values", "count", "ids"),
    [
        ({"discord_shard_count": 4}, 4, None),  # every shard in this process
        ({"discord_shard_count": 4, "discord_shard_ids": [1, 3]}, 4, [1, 3]),  # this process runs two of four
    ],
)
@pytest.mark.anyio
async def test_shard_settings_build_an_auto_sharded_bot(tmp_path: Path, values, count, ids) -> None:
    bot = build_bot(None, settings(tmp_path, **values))  # type: ignore[arg-type]
    assert isinstance(bot, ShardedKabarBot) and isinstance(bot, discord.AutoShardedClient)
    assert (bot.shard_count, bot.shard_ids) == (count, ids)
    await bot.load_cogs()  # the same cogs and commands as unsharded
    assert sorted(bot.cogs) == ["Admin", "Ask", "Mentions", "Stats"]
    assert bot.intents == build_bot(None, settings(tmp_path)).intents  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "values",
    [
        {"discord_shard_ids": [0]},  # ids need the count of the whole bot
        {"discord_shard_count": 2, "discord_shard_ids": [2]},  # ids run from 0 to count - 1
        {"discord_shard_count": 2, "discord_shard_ids": [1, 1]},
        {"discord_shard_count": 0},
    ],
)
def test_bad_shard_settings_name_their_variable(tmp_path: Path, values) -> None:
    with pytest.raises(SettingsError, match="KABAR_DISCORD_SHARD_(IDS|COUNT)"):
        settings(tmp_path, **values)
