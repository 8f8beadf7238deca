"""Questions in messages: a mention of the bot, a reply to one of its answers, a message in its thread."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import discord
from discord.ext import commands

from bot.answer.types import Turn
from bot.discordbot.access import channel_allowed, question_refusal
from bot.discordbot.delivery import send_answer
from bot.discordbot.errors import user_message
from bot.discordbot.memory import Conversations
from bot.discordbot.render import NO_PINGS, thread_name
from bot.settings import Settings
from index.lang import detect_language

if TYPE_CHECKING:
    from bot.discordbot.client import KabarBot

log = logging.getLogger(__name__)

WORKING = "⏳"
FAILED = "⚠️"
THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440  # a day without messages
_USER_MESSAGES = (discord.MessageType.default, discord.MessageType.reply)


@dataclass
class Trigger:
    """A message the bot should answer: the question, the conversation it continues, where to answer."""

    question: str
    key: int | None = None  # conversation continued (thread id or reply-chain root); None: a new one
    in_own_thread: bool = False  # answer with a plain message in the bot's thread
    open_thread: bool = False  # start a thread from the message and answer there


def classify(message: discord.Message, settings: Settings, conversations: Conversations) -> Trigger | None:
    """Whether and how to answer `message`: follow-ups first, then mentions; None to stay quiet."""
    if message.author.bot or message.guild is None or message.type not in _USER_MESSAGES:
        return None
    me = message.guild.me
    question = strip_mentions(message.content, me)
    channel = message.channel
    if settings.discord.follow_ups:
        if isinstance(channel, discord.Thread) and (
            channel.owner_id == me.id or conversations.knows(channel.id)
        ):
            return Trigger(question, key=channel.id, in_own_thread=True)
        ref = message.reference
        if ref is not None and ref.message_id is not None:
            key = conversations.conversation_of(ref.message_id)
            if key is None and isinstance(ref.resolved, discord.Message) and ref.resolved.author.id == me.id:
                key = ref.message_id  # an answer from before a restart: a new chain rooted there
            if key is not None:
                return Trigger(question, key=key)
    if not settings.discord.answer_mentions or not mentions_me(message, me):
        return None
    open_thread = settings.discord.open_threads and isinstance(channel, discord.TextChannel)
    return Trigger(question, open_thread=open_thread)


def mentions_me(message: discord.Message, me: Any) -> bool:
    """Mentioned by name, or through the bot's own managed role."""
    if any(user.id == me.id for user in message.mentions):
        return True
    return any(role.tags is not None and role.tags.bot_id == me.id for role in message.role_mentions)


def strip_mentions(content: str, me: Any) -> str:
    """The question without the bot's mention (user or managed role), whitespace tidied."""
    role_ids = [str(r.id) for r in getattr(me, "roles", ()) if r.tags is not None and r.tags.bot_id == me.id]
    pattern = rf"<@!?{me.id}>" + "".join(rf"|<@&{rid}>" for rid in role_ids)
    return " ".join(re.sub(pattern, " ", content or "").split())


class MentionsCog(commands.Cog, name="Mentions"):
    """Answers mentions, and follow-ups in reply chains and in the threads the bot opened."""

    def __init__(self, bot: KabarBot):
        self.bot = bot

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Answer the message if it is for us; failures are reported in the channel, never raised."""
        trigger = classify(message, self.bot.settings, self.bot.conversations)
        guild_id = message.guild.id if message.guild else None
        if trigger is None or not channel_allowed(self.bot.settings, guild_id, message.channel):
            return
        await self.answer(message, trigger)

    async def answer(self, message: discord.Message, trigger: Trigger) -> None:
        """Check the question, show that we work on it, answer where the conversation lives, remember it."""
        if message.guild is None:
            return  # classify() lets only server messages through
        history = self.bot.conversations.history(trigger.key) if trigger.key is not None else []
        question = trigger.question
        lang = detect_language(question, default=history[-1].answer.language if history else "id")
        if not question and trigger.key is not None:
            return  # an image or a sticker in a conversation: nothing to answer
        refusal = question_refusal(
            self.bot.settings, self.bot.cooldown, message.author.id, question, lang, self.bot.worker.waiting
        )
        if refusal is not None:
            await self._say(message, message.channel, refusal.message(lang), trigger.in_own_thread)
            return
        me = message.guild.me
        await _quietly(message.add_reaction(WORKING))
        destination: Any = message.channel
        key = trigger.key if trigger.key is not None else message.id
        in_thread = trigger.in_own_thread
        try:
            if trigger.open_thread:
                thread = await self._open_thread(message, question)
                if thread is not None:
                    destination, key, in_thread = thread, thread.id, True
            async with destination.typing():
                answer = await self.bot.worker.answer(question, history)
            first = destination.send if in_thread else functools.partial(message.reply, mention_author=False)
            sent = await send_answer(answer, self.bot.answers, first, destination.send)
        except Exception as e:  # one failed answer must not go unnoticed, nor take the listener down
            await self._fail(message, destination, e, lang, in_thread)
            return
        finally:
            await _quietly(message.remove_reaction(WORKING, me))
        self.bot.conversations.record(key, Turn(question, answer), [m.id for m in sent])

    async def _open_thread(self, message: discord.Message, question: str) -> discord.Thread | None:
        try:
            return await message.create_thread(
                name=thread_name(question), auto_archive_duration=THREAD_ARCHIVE_MINUTES
            )
        except discord.HTTPException as e:  # e.g. no Create Public Threads permission: answer in place
            log.warning(
                "could not open a thread in channel %s (%s); replying in place", message.channel.id, e
            )
            return None

    async def _fail(
        self, message: discord.Message, destination: Any, error: Exception, lang: str, in_thread: bool
    ):
        text, expected = user_message(error, lang)
        if not expected:
            log.error("answering message %s failed", message.id, exc_info=error)
        await _quietly(message.add_reaction(FAILED))
        await self._say(message, destination, text, in_thread)

    async def _say(self, message: discord.Message, destination: Any, text: str, in_thread: bool) -> None:
        try:
            if in_thread:
                await destination.send(text, allowed_mentions=NO_PINGS)
            else:
                await message.reply(text, mention_author=False, allowed_mentions=NO_PINGS)
        except discord.HTTPException:
            log.warning("could not reply to message %s", message.id, exc_info=True)


async def _quietly(action: Any) -> None:
    """Await a cosmetic call (a reaction) and ignore Discord refusing it (e.g. no permission)."""
    with contextlib.suppress(discord.HTTPException):
        await action


async def setup(bot: KabarBot) -> None:
    """Extension entry point."""
    await bot.add_cog(MentionsCog(bot))
