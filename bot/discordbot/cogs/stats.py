"""`/kabar_stats`: what is indexed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discordbot.access import allowed_channel_only
from bot.discordbot.render import NO_PINGS, language_of, render_stats

if TYPE_CHECKING:
    from bot.discordbot.client import KabarBot


class StatsCog(commands.Cog, name="Stats"):
    """The /kabar_stats slash command."""

    def __init__(self, bot: KabarBot):
        self.bot = bot

    @app_commands.command(
        name="kabar_stats", description="What Kabar has indexed: articles, chunks, model, last update"
    )
    @app_commands.guild_only()
    @allowed_channel_only
    async def kabar_stats(self, interaction: discord.Interaction) -> None:
        """Index statistics, shown only to whoever asked."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        stats = await self.bot.worker.stats()
        await interaction.followup.send(
            embed=render_stats(stats, language_of(interaction.locale)),
            ephemeral=True,
            allowed_mentions=NO_PINGS,
        )


async def setup(bot: KabarBot) -> None:
    """Extension entry point."""
    await bot.add_cog(StatsCog(bot))
