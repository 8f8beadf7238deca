"""What the bot remembers between messages: conversations for follow-ups, cooldowns, recent answers.

Conversations and answers live in a small SQLite file in the data dir (`bot-memory.sqlite`), so a restart
mid-conversation carries on: bounded in size, entries expire, and one lock serialises the bot's tasks
(threads and the event loop) on one connection; WAL lets another process read while this one writes.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bot.answer.types import Answer, Citation, Turn

log = logging.getLogger(__name__)

DEFAULT_TTL_SECONDS = 7 * 24 * 3600  # a week without use, then a conversation or an answer is forgotten

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (key INTEGER PRIMARY KEY, used REAL NOT NULL);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS turns_by_key ON turns (key, id);
CREATE TABLE IF NOT EXISTS owners (message_id INTEGER PRIMARY KEY, key INTEGER NOT NULL, used REAL NOT NULL);
CREATE INDEX IF NOT EXISTS owners_by_use ON owners (used);
CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, used REAL NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS answers_by_use ON answers (used);
"""


class MemoryFile:
    """The SQLite file behind the bot's memory; ":memory:" (the default) keeps it in this process only.

    A file that cannot be opened or written (read-only data dir, corrupt file) is logged once and the bot
    carries on with memory in the process: it loses follow-ups over a restart, never an answer.
    """

    def __init__(self, path: Path | str = ":memory:", clock: Callable[[], float] = time.time):
        self.clock = clock
        self._lock = threading.Lock()
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self.db = self._open(self.path)
        except (sqlite3.Error, OSError) as e:
            log.warning("bot memory %s unusable (%s); remembering in memory only until restart", path, e)
            self.path = ":memory:"
            self.db = self._open(self.path)

    @staticmethod
    def _open(path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            db.execute("PRAGMA journal_mode=WAL")
            # commits without fsync (the event loop writes here): a power cut may lose the last turns
            db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        db.execute("SELECT COUNT(*) FROM answers").fetchone()  # a corrupt file fails here, not later
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one write transaction, under the lock."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple]:
        """Rows of one query, under the lock."""
        with self._lock:
            return self.db.execute(sql, args).fetchall()

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self.db.close()


def answer_to_json(answer: Answer) -> str:
    """An answer as stored."""
    return json.dumps(asdict(answer), ensure_ascii=False)


def answer_from_json(data: str) -> Answer:
    """An answer as it was stored."""
    fields = json.loads(data)
    fields["citations"] = [Citation(**c) for c in fields.get("citations", [])]
    return Answer(**fields)


class Conversations:
    """Bounded follow-up memory: the last turns per conversation (a thread, or a reply chain's root).

    The bot's answer messages point at their conversation, so a reply to any of them continues it.
    The least recently used conversations are forgotten first, and any unused for `ttl` seconds.
    """

    def __init__(
        self,
        turns: int,
        max_conversations: int = 1000,
        store: MemoryFile | None = None,
        ttl: float = DEFAULT_TTL_SECONDS,
    ):
        self.turns = turns
        self.max_conversations = max_conversations
        self.store = store or MemoryFile()
        self.ttl = ttl

    def _fresh(self) -> float:
        return self.store.clock() - self.ttl

    def history(self, key: int) -> list[Turn]:
        """The remembered turns of conversation `key`, oldest first."""
        if not self.knows(key):
            return []
        rows = self.store.read("SELECT data FROM turns WHERE key = ? ORDER BY id", (key,))
        with self.store.transaction() as db:
            db.execute("UPDATE conversations SET used = ? WHERE key = ?", (self.store.clock(), key))
        turns = []
        for (data,) in rows:
            stored = json.loads(data)
            turns.append(Turn(stored["question"], answer_from_json(stored["answer"])))
        return turns

    def knows(self, key: int) -> bool:
        """Whether conversation `key` is remembered (e.g. a thread the bot opened)."""
        rows = self.store.read(
            "SELECT 1 FROM conversations WHERE key = ? AND used >= ?", (key, self._fresh())
        )
        return bool(rows)

    def conversation_of(self, message_id: int) -> int | None:
        """The conversation a bot message belongs to, if remembered."""
        rows = self.store.read(
            "SELECT o.key FROM owners o JOIN conversations c USING (key) "
            "WHERE o.message_id = ? AND c.used >= ?",
            (message_id, self._fresh()),
        )
        return int(rows[0][0]) if rows else None

    def record(self, key: int, turn: Turn, message_ids: Sequence[int] = ()) -> None:
        """Add a turn to conversation `key`; `message_ids` are the bot messages that carried it."""
        now = self.store.clock()
        data = json.dumps({"question": turn.question, "answer": answer_to_json(turn.answer)})
        with self.store.transaction() as db:
            db.execute("INSERT OR REPLACE INTO conversations (key, used) VALUES (?, ?)", (key, now))
            if self.turns:
                db.execute("INSERT INTO turns (key, data) VALUES (?, ?)", (key, data))
            db.execute(  # the last `turns` turns of this conversation stay
                "DELETE FROM turns WHERE key = ? AND id NOT IN "
                "(SELECT id FROM turns WHERE key = ? ORDER BY id DESC LIMIT ?)",
                (key, key, max(self.turns, 0)),
            )
            db.executemany(
                "INSERT OR REPLACE INTO owners (message_id, key, used) VALUES (?, ?, ?)",
                [(mid, key, now) for mid in message_ids],
            )
            self._forget(db, now)

    def _forget(self, db: sqlite3.Connection, now: float) -> None:
        """Drop expired conversations, then the least recently used beyond the bound, with their turns."""
        db.execute("DELETE FROM conversations WHERE used < ?", (now - self.ttl,))
        db.execute(
            "DELETE FROM conversations WHERE key NOT IN "
            "(SELECT key FROM conversations ORDER BY used DESC, rowid DESC LIMIT ?)",
            (self.max_conversations,),
        )
        db.execute("DELETE FROM turns WHERE key NOT IN (SELECT key FROM conversations)")
        db.execute("DELETE FROM owners WHERE key NOT IN (SELECT key FROM conversations)")
        db.execute(
            "DELETE FROM owners WHERE message_id NOT IN "
            "(SELECT message_id FROM owners ORDER BY used DESC LIMIT ?)",
            (self.max_conversations * 10,),
        )


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
    """Recent answers by a random key, for the "All sources" button; kept over a restart with a file store."""

    def __init__(self, size: int = 500, store: MemoryFile | None = None, ttl: float = DEFAULT_TTL_SECONDS):
        self.size = size
        self.store = store or MemoryFile()
        self.ttl = ttl

    def put(self, answer: Answer) -> str:
        """Remember an answer; returns its key."""
        key = secrets.token_hex(8)
        now = self.store.clock()
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO answers (key, used, data) VALUES (?, ?, ?)", (key, now, answer_to_json(answer))
            )
            db.execute("DELETE FROM answers WHERE used < ?", (now - self.ttl,))
            db.execute(
                "DELETE FROM answers WHERE key NOT IN "
                "(SELECT key FROM answers ORDER BY used DESC, rowid DESC LIMIT ?)",
                (self.size,),
            )
        return key

    def get(self, key: str) -> Answer | None:
        """The answer, if still remembered."""
        rows = self.store.read(
            "SELECT data FROM answers WHERE key = ? AND used >= ?", (key, self.store.clock() - self.ttl)
        )
        return answer_from_json(rows[0][0]) if rows else None
