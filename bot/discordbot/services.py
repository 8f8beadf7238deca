"""What the cogs share: the engine and indexer run off the event loop, conversation memory, cooldowns."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
import threading
import time
import unicodedata
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.app import Kabar
from bot.engine import Turn
from index.errors import KabarError
from index.ingest import ChunkParams, IndexReport, Progress, index_paths
from index.load import load_articles
from index.store import Store, writer_lock
from index.types import Answer

log = logging.getLogger(__name__)

UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".htm", ".json")


class IndexBusy(KabarError):
    """Another writer holds the index's writer lock."""


class UploadRejected(KabarError):
    """An /add_article file that cannot be used; the message says why."""


# --- running the engine and the indexer ----------------------------------------------------------------


class ModelGate:
    """One user of the embedding model at a time, and a waiting question goes before the indexer's next call.

    So a question waits for at most one embedding call of a running re-index, never for the whole run.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._questions_waiting = 0

    @contextmanager
    def question(self) -> Iterator[None]:
        """Hold the model for answering one question."""
        with self._cond:
            self._questions_waiting += 1
            while self._busy:
                self._cond.wait()
            self._questions_waiting -= 1
            self._busy = True
        try:
            yield
        finally:
            self._release()

    @contextmanager
    def indexing(self) -> Iterator[None]:
        """Hold the model for one call of the indexer, after any waiting question."""
        with self._cond:
            while self._busy or self._questions_waiting:
                self._cond.wait()
            self._busy = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()


class _GatedEmbedder:
    """The shared embedder as the indexer sees it: every call passes the model gate."""

    def __init__(self, inner: Any, gate: ModelGate):
        self._inner = inner
        self._gate = gate
        self.name = inner.name
        self.dim = inner.dim
        self.max_tokens = inner.max_tokens

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        with self._gate.indexing():
            return self._inner.embed_queries(texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        with self._gate.indexing():
            return self._inner.embed_passages(texts)

    def count_tokens(self, text: str) -> int:
        with self._gate.indexing():
            return self._inner.count_tokens(text)


@dataclass
class AddedArticle:
    """One article of an /add_article upload and what indexing did with it."""

    article_id: str
    title: str | None
    chunks: int
    status: str  # "added", "updated" or "unchanged"


@dataclass
class AddResult:
    """What /add_article stored and indexed."""

    articles: list[AddedArticle]
    stored_as: str | None  # file name in the corpus folder; None when nothing new was kept
    seconds: float
    skipped: list[tuple[str, str]] = field(default_factory=list)


class Worker:
    """Runs the synchronous, CPU-bound engine and indexer in threads so the event loop keeps serving.

    The embedding model is shared: the gate lets a question in between two embedding calls of a long
    re-index (answers keep flowing) without two threads driving the model (and its tokenizer) at once.
    The indexer writes through its own Store connection under the data directory's writer lock.
    """

    def __init__(self, kabar: Kabar):
        self.kabar = kabar
        self.gate = ModelGate()

    async def answer(self, question: str, history: Sequence[Turn] = ()) -> Answer:
        """The engine's answer, computed in a worker thread."""
        return await asyncio.to_thread(self._answer, question, list(history))

    def _answer(self, question: str, history: list[Turn]) -> Answer:
        with self.gate.question():
            return self.kabar.engine.answer(question, history)

    async def stats(self) -> dict[str, Any]:
        """`Store.stats()` of the index, read on its own connection."""
        return await asyncio.to_thread(self._stats)

    def _stats(self) -> dict[str, Any]:
        store = Store(self.kabar.data_dir)
        try:
            return store.stats()
        finally:
            store.close()

    async def reindex(
        self, paths: list[Path], *, prune: bool, progress: Progress
    ) -> tuple[IndexReport, dict]:
        """Index `paths` (the corpus folders) under the writer lock; (report, stats after)."""
        return await asyncio.to_thread(self._reindex, paths, prune, progress)

    def _reindex(self, paths: list[Path], prune: bool, progress: Progress) -> tuple[IndexReport, dict]:
        with self._writer() as store:
            report = index_paths(
                paths, store, self._embedder(), chunking=self._chunking(), prune=prune, progress=progress
            )
            return report, store.stats()

    async def add_file(self, folder: Path, filename: str, data: bytes) -> AddResult:
        """Store an uploaded article file in `folder` under a safe unique name and index it."""
        return await asyncio.to_thread(self._add_file, folder, filename, data)

    def _add_file(self, folder: Path, filename: str, data: bytes) -> AddResult:
        t0 = time.perf_counter()
        with self._writer() as store:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / safe_filename(filename, data)
            existed = path.exists()  # the same bytes under the same name: already in the corpus
            if not existed:
                _write_atomically(path, data)
            skipped: list[tuple[str, str]] = []
            articles = list(load_articles([path], on_skip=lambda p, r: skipped.append((p, r))))
            if not articles:
                if not existed:
                    path.unlink(missing_ok=True)
                reasons = "; ".join(r for _, r in skipped) or "no article text found"
                raise UploadRejected(f"`{filename}` holds no usable article: {reasons}")
            before = store.article_hashes()
            report = index_paths([path], store, self._embedder(), chunking=self._chunking())
            added = []
            for a in articles:
                old = before.get(a.article_id)
                status = "added" if old is None else "unchanged" if old == a.content_hash else "updated"
                added.append(AddedArticle(a.article_id, a.title, _chunk_count(store, a.article_id), status))
            keep = existed or any(a.status != "unchanged" for a in added)
            if not keep:
                path.unlink(missing_ok=True)  # a copy of indexed articles would only load as duplicates
            skipped += report.skipped
            return AddResult(added, path.name if keep else None, time.perf_counter() - t0, skipped)

    @contextmanager
    def _writer(self) -> Iterator[Store]:
        data_dir = self.kabar.data_dir
        lock = writer_lock(data_dir)
        try:
            lock.__enter__()
        except KabarError as e:
            raise IndexBusy(str(e)) from None
        try:
            embedder = self.kabar.embedder
            store = Store(data_dir, embedder.name, embedder.dim)
            try:
                yield store
            finally:
                store.close()
        finally:
            lock.__exit__(None, None, None)

    def _embedder(self) -> _GatedEmbedder:
        return _GatedEmbedder(self.kabar.embedder, self.gate)

    def _chunking(self) -> ChunkParams:
        s = self.kabar.settings
        return ChunkParams(s.chunk_tokens, s.chunk_overlap)


def _chunk_count(store: Store, article_id: str) -> int:
    row = store.db.execute("SELECT n_chunks FROM articles WHERE article_id = ?", (article_id,)).fetchone()
    return int(row[0]) if row else 0


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")  # hidden: the loader skips it if we crash before the rename
    tmp.write_bytes(data)
    os.replace(tmp, path)


class ProgressBoard:
    """The latest progress(phase, done, total) of an index run: written by its thread, read by the loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: tuple[str | None, int, int] = (None, 0, 0)
        self._version = 0

    def update(self, phase: str, done: int, total: int) -> None:
        """The indexer's progress callback."""
        with self._lock:
            self._state = (phase, done, total)
            self._version += 1

    def snapshot(self) -> tuple[int, tuple[str | None, int, int]]:
        """(how many updates so far, the latest state)."""
        with self._lock:
            return self._version, self._state


# --- uploads -------------------------------------------------------------------------------------------


def safe_filename(filename: str, data: bytes) -> str:
    """'discord-<ascii slug>-<content hash><ext>': no path parts, no hidden files, unique per content."""
    name = Path(filename.replace("\\", "/")).name
    stem, suffix = os.path.splitext(name)
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_stem.lower()).strip("-")[:60].strip("-") or "article"
    digest = hashlib.sha256(data).hexdigest()[:12]
    return f"discord-{slug}-{digest}{suffix.lower()}"


def check_attachment(filename: str, size: int, limit: int) -> str | None:
    """Why an attachment cannot be an article before downloading it (type, size), or None."""
    suffix = os.path.splitext(filename)[1].lower()
    if suffix not in UPLOAD_SUFFIXES:
        return f"`{filename}` is not a supported article file: use {', '.join(UPLOAD_SUFFIXES)}."
    if size > limit:
        return f"`{filename}` is {_size(size)}; the limit is {_size(limit)}."
    if size == 0:
        return f"`{filename}` is empty."
    return None


def check_content(filename: str, data: bytes, limit: int) -> str | None:
    """Why downloaded bytes are not a usable text file (size, binary, encoding, JSON syntax), or None."""
    if len(data) > limit:
        return f"`{filename}` is {_size(len(data))}; the limit is {_size(limit)}."
    if b"\x00" in data:
        return f"`{filename}` is a binary file, not text."
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return f"`{filename}` is not UTF-8 text (invalid byte at position {e.start})."
    if not content.strip():
        return f"`{filename}` holds no text."
    if filename.lower().endswith(".json"):
        import json

        try:
            json.loads(content)
        except json.JSONDecodeError as e:
            return f"`{filename}` is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})."
    return None


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n / 1000:.1f} kB" if n >= 1000 else f"{n} bytes"


# --- memory and limits ---------------------------------------------------------------------------------


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
