"""Who may do what, where: allowed servers and channels, admins, question limits and cooldowns."""

from __future__ import annotations

import math
from typing import Any

import discord
from discord import app_commands

from bot.discordbot.errors import Refusal
from bot.discordbot.memory import Cooldown
from bot.settings import Settings


def is_admin(member: Any, admin_role: str | None) -> bool:
    """A member with the Administrator permission, or with the configured role (by name or id)."""
    perms = getattr(member, "guild_permissions", None)
    if perms is not None and perms.administrator:
        return True
    wanted = (admin_role or "").strip()
    if not wanted:
        return False
    roles = getattr(member, "roles", None) or ()
    if wanted.isdigit():  # an id: a role merely *named* like the id must not pass
        return any(getattr(role, "id", None) == int(wanted) for role in roles)
    return any(getattr(role, "name", None) == wanted for role in roles)


def admin_refusal(admin_role: str | None) -> Refusal:
    """The refusal for a non-admin, naming what would make them one."""
    role = (admin_role or "").strip()
    if not role:
        return Refusal("not_admin")
    return Refusal("not_admin_role", role=f"<@&{role}>" if role.isdigit() else role)


def guild_allowed(settings: Settings, guild_id: int | None) -> bool:
    """Whether the bot works in this server at all."""
    return guild_id is not None and (not settings.discord.guild_ids or guild_id in settings.discord.guild_ids)


def channel_allowed(settings: Settings, guild_id: int | None, channel: Any) -> bool:
    """Whether the bot answers in this channel (a thread counts as its parent channel)."""
    if not guild_allowed(settings, guild_id):
        return False
    if not settings.discord.channel_ids:
        return True
    ids = {getattr(channel, "id", None)}
    if isinstance(channel, discord.Thread):
        ids.add(channel.parent_id)
    return bool(ids & set(settings.discord.channel_ids))


def question_refusal(
    settings: Settings, cooldown: Cooldown, user_id: int, question: str, lang: str, waiting: int = 0
) -> Refusal | None:
    """Why this question is not answered now (empty, too long, too many waiting, too soon), or None; counts
    the cooldown. `waiting`: questions already waiting for the engine."""
    if not question.strip():
        return Refusal("empty_question", lang)
    limit = settings.discord.max_question_chars
    if len(question) > limit:
        return Refusal("too_long", lang, length=len(question), limit=limit)
    if waiting >= settings.discord.max_waiting:  # a bounded queue: later, rather than minutes of waiting
        return Refusal("queue_full", lang)
    wait = cooldown.retry_after(user_id)
    if wait > 0:
        return Refusal("cooldown", lang, seconds=math.ceil(wait))
    return None


# --- app command checks (a failed check goes to the central error handler) -------------------------------


async def _require_admin(interaction: discord.Interaction) -> bool:
    settings: Settings = interaction.client.settings  # type: ignore[attr-defined]
    if is_admin(interaction.user, settings.discord.admin_role):
        return True
    raise admin_refusal(settings.discord.admin_role)


async def _require_allowed_channel(interaction: discord.Interaction) -> bool:
    settings: Settings = interaction.client.settings  # type: ignore[attr-defined]
    if channel_allowed(settings, interaction.guild_id, interaction.channel):
        return True
    raise Refusal("not_here")


admin_only = app_commands.check(_require_admin)
allowed_channel_only = app_commands.check(_require_allowed_channel)
