"""Sending a rendered answer, and the "All sources" button that shows every quote in full."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.answer.types import Answer
from bot.discordbot.errors import handle_interaction_error
from bot.discordbot.memory import AnswerCache
from bot.discordbot.render import NO_PINGS, language_of, render_answer, render_sources_full
from bot.discordbot.texts import text

log = logging.getLogger(__name__)

Send = Callable[..., Awaitable[Any]]


class SourcesButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"kabar:sources:(?P<key>[0-9a-f]{16})"
):
    """ "All sources": the answer's sources with their whole quotes, shown only to whoever presses it.

    A dynamic item, so a press after a restart still reaches us (and gets a clear "no longer available").
    """

    def __init__(self, key: str, lang: str = "id"):
        super().__init__(
            discord.ui.Button(
                label=text("all_sources", lang),
                style=discord.ButtonStyle.secondary,
                emoji="📚",
                custom_id=f"kabar:sources:{key}",
            )
        )
        self.key = key

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item, match: re.Match[str], /
    ) -> SourcesButton:
        return cls(match["key"], language_of(interaction.locale))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            cache: AnswerCache = interaction.client.answers  # type: ignore[attr-defined]
            await show_sources(interaction, cache.get(self.key))
        except Exception as e:  # a button has no command tree: report through the same handler
            await handle_interaction_error(interaction, e)


async def show_sources(interaction: discord.Interaction, answer: Answer | None) -> None:
    """Send every source of `answer` ephemerally, or say the answer is no longer remembered."""
    if answer is None:
        await interaction.response.send_message(
            text("sources_gone", language_of(interaction.locale)), ephemeral=True, allowed_mentions=NO_PINGS
        )
        return
    pages = render_sources_full(answer)
    await interaction.response.send_message(embeds=pages[0].embeds, ephemeral=True, allowed_mentions=NO_PINGS)
    for page in pages[1:]:
        await interaction.followup.send(embeds=page.embeds, ephemeral=True, allowed_mentions=NO_PINGS)


def sources_view(key: str, lang: str) -> discord.ui.View:
    """A view holding only the "All sources" button."""
    view = discord.ui.View(timeout=None)
    view.add_item(SourcesButton(key, lang))
    return view


async def send_answer(answer: Answer, answers: AnswerCache, send_first: Send, send_next: Send) -> list[Any]:
    """Render and send an answer: `send_first` carries the first message, `send_next` the rest."""
    messages = render_answer(answer)
    key = answers.put(answer) if any(m.sources_button for m in messages) else None
    sent = []
    for i, m in enumerate(messages):
        kwargs: dict[str, Any] = {
            "content": m.content or None,
            "embeds": m.embeds,
            "allowed_mentions": NO_PINGS,
        }
        if m.sources_button and key is not None:
            kwargs["view"] = sources_view(key, answer.language)
        sent.append(await (send_first if i == 0 else send_next)(**kwargs))
    return sent
