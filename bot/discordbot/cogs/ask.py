"""`/ask question:<text>`: defer, answer in a worker thread, send the answer with its sources."""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.answer.types import Turn
from bot.discordbot.access import allowed_channel_only, question_refusal
from bot.discordbot.delivery import Send, send_answer
from bot.discordbot.progress import ProgressEdits
from index.lang import detect_language

if TYPE_CHECKING:
    from bot.discordbot.client import KabarBot


class AskCog(commands.Cog, name="Ask"):
    """The /ask slash command."""

    def __init__(self, bot: KabarBot):
        self.bot = bot

    @app_commands.command(
        name="ask", description="Ask about the indexed news articles; the answer cites its sources."
    )
    @app_commands.describe(question="Your question, in Indonesian or English")
    @app_commands.guild_only()
    @allowed_channel_only
    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        """Refuse (ephemerally) or defer, then answer publicly; a reply to the answer is a follow-up."""
        question = question.strip()
        lang = detect_language(question)
        refusal = question_refusal(
            self.bot.settings, self.bot.cooldown, interaction.user.id, question, lang, self.bot.worker.waiting
        )
        if refusal is not None:
            raise refusal  # the central handler sends it ephemerally
        await interaction.response.defer(thinking=True)
        progress = None
        if self.bot.worker.uses_llm():  # a local model takes seconds: show its sentences as they verify
            progress = ProgressEdits(
                lambda text: interaction.edit_original_response(content=text), asyncio.get_running_loop()
            )
        answer = await self.bot.worker.answer(question, on_progress=progress.offer if progress else None)
        send = functools.partial(interaction.followup.send, wait=True)
        first: Send = send
        if progress is not None:
            await progress.stop()
            if progress.edits:  # the reply already shows the draft: the answer replaces it
                first = interaction.edit_original_response
        sent = await send_answer(answer, self.bot.answers, first, send)
        self.bot.conversations.record(sent[0].id, Turn(question, answer), [m.id for m in sent])


async def setup(bot: KabarBot) -> None:
    """Extension entry point."""
    await bot.add_cog(AskCog(bot))
