"""What the bot remembers between messages: conversations for follow-ups, cooldowns, recent answers."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

from bot.answer.types import Answer, Turn


class Conversations:
    """Bounded follow-up memory: the last turns per conversation (a thread, or a reply chain's root).

    The bot's answer messages point at their conversation, so a reply to any of them continues it.
    The least recently used conversations are forgotten first.
    """

    def __init__(self, turns: int, max_conversations: int = 1000):
        self.turns = turns
        self.max_conversations = max_conversations
        self._history: OrderedDict[int, deque[Turn]] = OrderedDict()
        self._message_owner: OrderedDict[int, int] = OrderedDict()

    def history(self, key: int) -> list[Turn]:
        """The remembered turns of conversation `key`, oldest first."""
        turns = self._history.get(key)
        if turns is None:
            return []
        self._history.move_to_end(key)
        return list(turns)

    def knows(self, key: int) -> bool:
        """Whether conversation `key` is remembered (e.g. a thread the bot opened)."""
        return key in self._history

    def conversation_of(self, message_id: int) -> int | None:
        """The conversation a bot message belongs to, if remembered."""
        return self._message_owner.get(message_id)

    def record(self, key: int, turn: Turn, message_ids: Sequence[int] = ()) -> None:
        """Add a turn to conversation `key`; `message_ids` are the bot messages that carried it."""
        turns = self._history.get(key)
        if turns is None:
            turns = self._history[key] = deque(maxlen=max(self.turns, 1))
        if self.turns:
            turns.append(turn)
        self._history.move_to_end(key)
        while len(self._history) > self.max_conversations:
            self._history.popitem(last=False)
        for mid in message_ids:
            self._message_owner[mid] = key
            self._message_owner.move_to_end(mid)
        while len(self._message_owner) > self.max_conversations * 10:
            self._message_owner.popitem(last=False)


class Cooldown:
    """Per-user cooldown between questions; `clock` is injectable for tests."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self.clock = clock
        self._last: dict[int, float] = {}

    def retry_after(self, user_id: int) -> float:
        """0 and the use is counted, or the seconds left to wait."""
        now = self.clock()
        last = self._last.get(user_id)
        if last is not None and now - last < self.seconds:
            return self.seconds - (now - last)
        self._last[user_id] = now
        if len(self._last) > 10_000:  # forget users whose cooldown is over
            self._last = {u: t for u, t in self._last.items() if now - t < self.seconds}
        return 0.0


class AnswerCache:
    """Recent answers by a random key, for the "All sources" button (gone after a restart)."""

    def __init__(self, size: int = 500):
        self.size = size
        self._answers: OrderedDict[str, Answer] = OrderedDict()

    def put(self, answer: Answer) -> str:
        """Remember an answer; returns its key."""
        key = secrets.token_hex(8)
        self._answers[key] = answer
        while len(self._answers) > self.size:
            self._answers.popitem(last=False)
        return key

    def get(self, key: str) -> Answer | None:
        """The answer, if still remembered."""
        return self._answers.get(key)
