"""Admin-only `/reindex` and `/add_article`: write the index under its lock, in a thread, with progress."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discordbot.access import admin_only
from bot.discordbot.render import NO_PINGS, render_added, render_index_report, render_progress
from bot.discordbot.uploads import check_attachment, check_content
from bot.discordbot.worker import IndexBusy, ProgressBoard
from index.errors import KabarError

if TYPE_CHECKING:
    from bot.discordbot.client import KabarBot

log = logging.getLogger(__name__)

# An interaction token lasts 15 minutes: stop editing a little before, and report the end in the channel.
EDIT_WINDOW_SECONDS = 14 * 60


class AdminCog(commands.Cog, name="Admin"):
    """Corpus maintenance from Discord."""

    def __init__(self, bot: KabarBot):
        self.bot = bot

    @app_commands.command(
        name="reindex", description="Re-index the configured corpus folders (Kabar admins only)"
    )
    @app_commands.describe(prune="Also remove indexed articles whose files are gone (default: keep them)")
    @app_commands.guild_only()
    @admin_only
    async def reindex(self, interaction: discord.Interaction, prune: bool = False) -> None:
        """Index the corpus folders in a worker thread, editing the deferred reply with progress."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        folders = list(self.bot.settings.index.corpus)
        missing = [str(f) for f in folders if not f.exists()]
        if not folders or missing:
            await self._finish(interaction, _no_corpus(missing))
            return
        names = [str(f) for f in folders]
        board = ProgressBoard()
        reporter = asyncio.create_task(self._report(interaction, board, f"Re-indexing {', '.join(names)}"))
        try:
            report, stats = await self.bot.worker.reindex(folders, prune=prune, progress=board.update)
        except IndexBusy:
            raise  # the central handler says so
        except KabarError as e:
            await self._finish(interaction, f"❌ Re-indexing failed: {e}")
            return
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        await self._finish(interaction, render_index_report(report, stats, names))

    @app_commands.command(
        name="add_article", description="Add an article file to the corpus and index it (Kabar admins only)"
    )
    @app_commands.describe(file="The article: a .txt, .md, .html, .htm or .json file in UTF-8 (not a link)")
    @app_commands.guild_only()
    @admin_only
    async def add_article(self, interaction: discord.Interaction, file: discord.Attachment) -> None:
        """Validate the attachment, store it in the first corpus folder under a safe name, index it."""
        limit = self.bot.settings.discord.max_attachment_bytes
        problem = check_attachment(file.filename, file.size, limit)
        if problem:
            await interaction.response.send_message(
                f"❌ {problem}", ephemeral=True, allowed_mentions=NO_PINGS
            )
            return
        await interaction.response.defer(thinking=True, ephemeral=True)
        folders = list(self.bot.settings.index.corpus)
        if not folders or (folders[0].exists() and not folders[0].is_dir()):
            await self._finish(interaction, _no_corpus([str(f) for f in folders[:1]]))
            return
        data = await file.read()
        problem = check_content(file.filename, data, limit)
        if problem:
            await self._finish(interaction, f"❌ {problem}")
            return
        try:
            result = await self.bot.worker.add_file(folders[0], file.filename, data)
        except IndexBusy:
            raise
        except KabarError as e:
            await self._finish(interaction, f"❌ {e}")
            return
        log.info("added %s from %s", result.stored_as, interaction.user.id)
        await self._finish(interaction, render_added(result))

    async def _report(self, interaction: discord.Interaction, board: ProgressBoard, what: str) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        shown = -1
        while loop.time() - started < EDIT_WINDOW_SECONDS:
            version, (phase, done, total) = board.snapshot()
            if version != shown:
                shown = version
                try:
                    await interaction.edit_original_response(
                        content=render_progress(what, phase, done, total), allowed_mentions=NO_PINGS
                    )
                except discord.HTTPException as e:  # a missed progress update is harmless
                    log.debug("progress update failed: %s", e)
            await asyncio.sleep(self.bot.progress_interval)

    async def _finish(self, interaction: discord.Interaction, content: str) -> None:
        try:
            await interaction.edit_original_response(content=content, allowed_mentions=NO_PINGS)
        except discord.HTTPException:  # the token expired on a long run: say it in the channel instead
            channel = interaction.channel
            if channel is not None and hasattr(channel, "send"):
                await channel.send(content, allowed_mentions=NO_PINGS)


def _no_corpus(missing: list[str]) -> str:
    if missing:
        return (
            f"❌ No corpus folder at {', '.join(f'`{m}`' for m in missing)}: create it or set KABAR_CORPUS."
        )
    return "❌ No corpus folder is configured: set KABAR_CORPUS (a JSON list of folders)."


async def setup(bot: KabarBot) -> None:
    """Extension entry point."""
    await bot.add_cog(AdminCog(bot))
