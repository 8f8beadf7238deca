"""The bot's worker: the engine and the Indexer run in threads, off the event loop, sharing one model."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bot.answer.types import Answer, Turn
from bot.app import Kabar
from bot.discordbot.child import reindex_in_child
from bot.discordbot.gate import GatedEmbedder, ModelGate
from bot.discordbot.uploads import UploadRejected, safe_filename, write_atomically
from index.errors import IndexLockedError, KabarError
from index.indexer import ArticleStatus, Indexer
from index.ingest import IndexReport, Progress


class IndexBusy(KabarError):
    """Another writer holds the index's writer lock."""


@dataclass
class AddResult:
    """What /add_article stored and indexed."""

    articles: list[ArticleStatus]
    stored_as: str | None  # file name in the corpus folder; None when nothing new was kept
    seconds: float
    skipped: list[tuple[str, str]] = field(default_factory=list)


class Worker:
    """Runs the synchronous, CPU-bound engine and indexer in threads so the event loop keeps serving.

    Questions are answered one at a time in one thread. A re-index of the corpus folders runs in a niced
    child process (`child.py`) when the embedder can be built there, with its own interpreter lock and
    model; otherwise (and for /add_article) it runs here and shares the model: the gate lets a question in
    between two of its embedding calls without two threads driving the model (and its tokenizer) at once.
    The Indexer writes through its own Store connection under the data directory's writer lock.
    """

    def __init__(self, kabar: Kabar):
        self.kabar = kabar
        self.gate = ModelGate()
        self._indexer: Indexer | None = None
        self.waiting = 0  # questions handed to answer() and not answered yet (read by the event loop)
        # One answering thread: the gate lets one question at a time on the model anyway, so more threads
        # only wait (and each keeps its own malloc arena); the queue of questions is this executor's
        self._answering = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kabar-answer")

    @property
    def indexer(self) -> Indexer:
        """The index's Indexer, embedding through the model gate."""
        if self._indexer is None:
            self._indexer = self.kabar.indexer(GatedEmbedder(self.kabar.embedder, self.gate))
        return self._indexer

    async def answer(
        self, question: str, history: Sequence[Turn] = (), on_progress: Callable[[Answer], None] | None = None
    ) -> Answer:
        """The engine's answer, computed in a worker thread (an LLM's verified sentences go to
        `on_progress` as they come, from that thread)."""
        self.waiting += 1
        try:
            job = partial(self._answer, question, list(history), on_progress)
            return await asyncio.get_running_loop().run_in_executor(self._answering, job)
        finally:
            self.waiting -= 1

    def uses_llm(self) -> bool:
        """Whether answers are generated (slow enough to show progress)."""
        return self.kabar.engine.uses_llm()

    def _answer(
        self, question: str, history: list[Turn], on_progress: Callable[[Answer], None] | None = None
    ) -> Answer:
        with self.gate.question():
            if on_progress is None:
                return self.kabar.engine.answer(question, history)
            return self.kabar.engine.answer(question, history, on_progress=on_progress)

    async def stats(self) -> dict[str, Any]:
        """The index's stats, read on their own connection."""
        return await asyncio.to_thread(self.indexer.stats)

    async def reindex(
        self, paths: list[Path], *, prune: bool, progress: Progress | None = None
    ) -> tuple[IndexReport, dict]:
        """Index `paths` (the corpus folders) under the writer lock; (report, stats after)."""
        return await asyncio.to_thread(self.reindex_now, paths, prune, progress)

    def reindex_now(
        self, paths: list[Path], prune: bool, progress: Progress | None = None
    ) -> tuple[IndexReport, dict]:
        """`reindex`, from the calling thread (the corpus watcher's): in a niced child process when the
        embedder can be built there and KABAR_DISCORD_REINDEX_IN_CHILD allows (bot/discordbot/child.py),
        else here through the model gate."""
        factory = self.kabar.embedder_factory if self.kabar.settings.discord.reindex_in_child else None
        if factory is not None:
            k = self.kabar
            try:
                return reindex_in_child(k.settings, k.data_dir, factory, paths, prune, progress)
            except IndexLockedError as e:
                raise IndexBusy(str(e)) from None
        with self._writer() as w:
            return w.sync(paths, prune=prune, progress=progress), w.stats()

    async def add_file(self, folder: Path, filename: str, data: bytes) -> AddResult:
        """Store an uploaded article file in `folder` under a safe unique name and index it."""
        return await asyncio.to_thread(self._add_file, folder, filename, data)

    def _add_file(self, folder: Path, filename: str, data: bytes) -> AddResult:
        t0 = time.perf_counter()
        with self._writer() as w:  # held from placing the file to indexing it: no run sees it half-done
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / safe_filename(filename, data)
            existed = path.exists()  # the same bytes under the same name: already in the corpus
            if not existed:
                write_atomically(path, data)
            report, added = w.add(path)
            if not added:
                if not existed:
                    path.unlink(missing_ok=True)
                reasons = "; ".join(r for _, r in report.skipped) or "no article text found"
                raise UploadRejected(f"`{filename}` holds no usable article: {reasons}")
            keep = existed or any(a.status != "unchanged" for a in added)
            if not keep:
                path.unlink(missing_ok=True)  # a copy of indexed articles would only load as duplicates
            return AddResult(added, path.name if keep else None, time.perf_counter() - t0, report.skipped)

    @contextmanager
    def _writer(self) -> Iterator[Any]:
        try:
            with self.indexer.writer() as w:
                yield w
        except IndexLockedError as e:
            raise IndexBusy(str(e)) from None


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
