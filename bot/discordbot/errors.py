"""The one place errors become what users read: refusals, known failures, and everything unexpected."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.discordbot.render import NO_PINGS, language_of
from bot.discordbot.texts import text
from bot.discordbot.worker import IndexBusy
from index.errors import IndexEmptyError, IndexUnavailable

log = logging.getLogger(__name__)


class Refusal(app_commands.CheckFailure):
    """A polite "no" for the user (not allowed here, not an admin, too long, too soon); not a bug."""

    def __init__(self, key: str, lang: str | None = None, **values: object):
        super().__init__(key)
        self.key = key
        self.lang = lang
        self.values = values

    def message(self, lang: str) -> str:
        """The refusal in the user's language (the question's, when known)."""
        return text(self.key, self.lang or lang, **self.values)


def user_message(error: BaseException, lang: str) -> tuple[str, bool]:
    """(what to tell the user, whether the error was expected); never a traceback, never internals."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, Refusal):
        return error.message(lang), True
    if isinstance(error, app_commands.NoPrivateMessage):
        return text("guild_only", lang), True
    if isinstance(error, app_commands.CommandOnCooldown):
        return text("cooldown", lang, seconds=max(1, round(error.retry_after))), True
    if isinstance(error, app_commands.CheckFailure):
        return text("not_here", lang), True
    if isinstance(error, IndexEmptyError):
        return text("index_empty", lang), True
    if isinstance(error, IndexBusy):
        return text("busy", lang), True
    if isinstance(error, IndexUnavailable):  # the Chroma server is down or restarting: it comes back alone
        log.warning("index unavailable: %s", error)
        return text("unavailable", lang), True
    return text("error", lang), False


async def respond(interaction: discord.Interaction, content: str, *, ephemeral: bool = True) -> None:
    """Reply to an interaction whether or not it was already answered or deferred."""
    if interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=ephemeral, allowed_mentions=NO_PINGS)
    else:
        await interaction.response.send_message(content, ephemeral=ephemeral, allowed_mentions=NO_PINGS)


async def handle_interaction_error(interaction: discord.Interaction, error: BaseException) -> None:
    """The central handler of every slash command and button: log, then tell the user (ephemerally)."""
    message, expected = user_message(error, language_of(interaction.locale))
    command = interaction.command.qualified_name if interaction.command else "component"
    if expected:
        log.debug("/%s refused for user %s: %s", command, getattr(interaction.user, "id", None), error)
    else:
        original = getattr(error, "original", error)
        log.error("/%s failed", command, exc_info=(type(original), original, original.__traceback__))
    try:
        await respond(interaction, message)
    except discord.HTTPException:
        log.warning("could not report the failure of /%s to the user", command, exc_info=True)
