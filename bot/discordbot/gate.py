"""The embedding model shared by questions and an in-process re-index: one user at a time, in small pieces."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


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


GATED_BATCH = 2  # texts per model call of a re-index: a waiting question gets in after at most this many


class GatedEmbedder:
    """The shared embedder as the indexer sees it: every call passes the model gate, in small pieces.

    The indexer embeds a whole step (KABAR_INDEX_BATCH chunks, and their sentences) in one call, which can
    take minutes on a busy machine; cut into pieces of GATED_BATCH texts, a question waits for one piece.
    """

    def __init__(self, inner: Any, gate: ModelGate):
        self._inner = inner
        self._gate = gate
        self.name = inner.name
        self.dim = inner.dim
        self.max_tokens = inner.max_tokens

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._pieces(self._inner.embed_queries, texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._pieces(self._inner.embed_passages, texts)

    def _pieces(self, embed: Any, texts: list[str]) -> np.ndarray:
        if len(texts) <= GATED_BATCH:
            with self._gate.indexing():
                return embed(texts)
        parts = []
        for i in range(0, len(texts), GATED_BATCH):
            with self._gate.indexing():
                parts.append(embed(texts[i : i + GATED_BATCH]))
        return np.concatenate(parts)

    def count_tokens(self, text: str) -> int:
        with self._gate.indexing():
            return self._inner.count_tokens(text)
