"""The Discord client: minimal intents, one cog per feature loaded in `setup_hook`, commands synced."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import Kabar
from bot.discordbot.access import guild_allowed
from bot.discordbot.delivery import SourcesButton
from bot.discordbot.errors import Refusal, handle_interaction_error
from bot.discordbot.memory import AnswerCache, Conversations, Cooldown, MemoryFile
from bot.discordbot.render import NO_PINGS
from bot.discordbot.worker import Worker
from bot.settings import Settings
from index.layout import DataDir

if TYPE_CHECKING:
    from index.watch import CorpusWatcher

log = logging.getLogger(__name__)

EXTENSIONS = (
    "bot.discordbot.cogs.ask",
    "bot.discordbot.cogs.mentions",
    "bot.discordbot.cogs.admin",
    "bot.discordbot.cogs.stats",
)


def build_intents(settings: Settings) -> discord.Intents:
    """Only what the configured features need.

    guilds: servers, channels, threads and roles. guild_messages: message events, needed only to answer
    mentions and follow-ups. message_content (privileged): the text of replies and of messages in the
    bot's threads, which do not mention it; a message that mentions the bot carries its text without it.
    """
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = settings.discord.answer_mentions or settings.discord.follow_ups
    intents.message_content = settings.discord.follow_ups
    return intents


def sync_targets(settings: Settings) -> list[discord.Object | None]:
    """Where to sync slash commands: the sync guilds, else the allowed guilds, else globally (None)."""
    ids = settings.discord.sync_guild_ids or settings.discord.guild_ids
    return [discord.Object(id=i) for i in ids] if ids else [None]


class KabarTree(app_commands.CommandTree):
    """The command tree: allowed servers checked once for every command, errors handled in one place."""

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        settings: Settings = self.client.settings  # type: ignore[attr-defined]
        if interaction.guild_id is None:
            raise Refusal("guild_only")
        if not guild_allowed(settings, interaction.guild_id):
            raise Refusal("not_here")
        return True

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await handle_interaction_error(interaction, error)


class KabarBot(commands.Bot):
    """Kabar on Discord: holds the engine and the shared state its cogs use; slash commands only."""

    def __init__(
        self,
        kabar: Kabar,
        settings: Settings,
        *,
        worker: Worker | None = None,
        clock: Callable[[], float] = time.monotonic,
        progress_interval: float = 2.0,
        extensions: Sequence[str] = EXTENSIONS,
        tree_cls: type[KabarTree] = KabarTree,
        memory: MemoryFile | None = None,
        **client_options: Any,
    ):
        super().__init__(
            command_prefix=commands.when_mentioned,  # required by commands.Bot; prefix commands are off
            help_command=None,
            intents=build_intents(settings),
            tree_cls=tree_cls,
            # article text may hold "@everyone" or user ids: nothing the bot sends pings anyone
            allowed_mentions=NO_PINGS,
            **client_options,
        )
        self.kabar = kabar
        self.settings = settings
        # a bot runs for weeks: its model file is mapped in whole now, not page by page as new words come
        resident = getattr(kabar.embedder if kabar else None, "make_resident", None)
        if resident is not None:
            resident()
        self.worker = worker or Worker(kabar)
        self.cooldown = Cooldown(settings.discord.cooldown_seconds, clock)
        # kept in the data dir, so a restart mid-conversation carries on (and old buttons still work)
        self.memory = memory or MemoryFile(DataDir(kabar.data_dir).bot_memory if kabar else ":memory:")
        self.conversations = Conversations(settings.discord.memory_turns, store=self.memory)
        self.answers = AnswerCache(store=self.memory)
        self.progress_interval = progress_interval
        self.extension_names = tuple(extensions)
        self.watcher: CorpusWatcher | None = None

    async def setup_hook(self) -> None:
        """Runs once after login, before connecting to the gateway."""
        await self.load_cogs()
        await self.sync_commands()
        if self.settings.discord.watch:
            from bot.discordbot.watching import corpus_watcher

            self.watcher = corpus_watcher(self.worker)
            self.watcher.start_thread()

    async def close(self) -> None:
        """Stop the corpus watcher (if running), then disconnect."""
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        await super().close()
        self.memory.close()

    async def load_cogs(self) -> None:
        """Load every feature's cog and register the persistent "All sources" button."""
        for name in self.extension_names:
            await self.load_extension(name)
        self.add_dynamic_items(SourcesButton)

    async def sync_commands(self) -> None:
        """Sync the slash commands to the configured guilds (instant) or globally (up to an hour)."""
        for guild in sync_targets(self.settings):
            if guild is not None:
                self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d command(s) %s", len(synced), f"to guild {guild.id}" if guild else "globally")

    async def on_ready(self) -> None:
        log.info(
            "connected as %s (id %s) to %d server(s)",
            self.user,
            self.user.id if self.user else "?",
            len(self.guilds),
        )

    async def on_message(self, message: discord.Message) -> None:
        """No prefix commands: the mentions cog listens for questions."""

    async def on_error(self, event_method: str, /, *args: object, **kwargs: object) -> None:
        """A crash in one event handler is logged; the bot carries on."""
        log.exception("unhandled error in %s", event_method)


class ShardedKabarBot(KabarBot, commands.AutoShardedBot):
    """The same bot over several gateway shards (discord.py's AutoShardedBot), for many servers."""


def shard_options(settings: Settings) -> dict[str, Any]:
    """shard_count and shard_ids for discord.py, from KABAR_DISCORD_SHARD_COUNT/_IDS (empty: unsharded)."""
    d = settings.discord
    if d.shard_count is None:
        return {}
    return {"shard_count": d.shard_count, **({"shard_ids": list(d.shard_ids)} if d.shard_ids else {})}


def build_bot(kabar: Kabar, settings: Settings, **options) -> KabarBot:
    """The bot, ready to `run(token)`; building it connects to nothing."""
    shards = shard_options(settings)
    if shards:  # every process of a sharded bot runs its own shards; the index server is shared
        return ShardedKabarBot(kabar, settings, **options, **shards)
    return KabarBot(kabar, settings, **options)
