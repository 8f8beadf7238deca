"""Hybrid retrieval: dense (Chroma) and keyword (BM25) rankings fused by reciprocal rank."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.embed import Embedder
from index.keyword import KeywordIndex
from index.store import Store
from index.types import Passage

log = logging.getLogger(__name__)


@dataclass
class SearchParams:
    """Knobs of the fusion; tuned with `kabar eval`."""

    depth: int = 50  # candidates taken from each ranking
    rrf_k: int = 60  # reciprocal-rank constant
    dense_weight: float = 1.0
    keyword_weight: float = 1.0


@dataclass
class SearchResult:
    """Fused passages plus what produced them."""

    passages: list[Passage]
    query_vector: np.ndarray
    timings_ms: dict[str, float]


class Searcher:
    """Answers `search(query)` over one store; picks up a newer keyword index when a re-index finishes."""

    def __init__(self, store: Store, embedder: Embedder, params: SearchParams | None = None):
        self.store = store
        self.embedder = embedder
        self.params = params or SearchParams()
        self._kw_root = store.data_dir / "keyword"
        self._keyword: KeywordIndex | None = None
        self._kw_version: int | None = None

    @property
    def keyword(self) -> KeywordIndex:
        """The current keyword index, reloaded if a writer published a new version."""
        self.refresh()
        assert self._keyword is not None
        return self._keyword

    def refresh(self) -> bool:
        """Pick up a finished re-index (a new keyword version): reload keywords, reopen the vectors."""
        version = KeywordIndex.current_version(self._kw_root)
        if self._keyword is not None and version == self._kw_version:
            return False
        if self._keyword is not None:
            # another process may have written the vectors: Chroma only sees them when reopened
            self.store.refresh()
        try:  # segments already loaded are immutable: only the new ones are read
            self._keyword, self._kw_version = KeywordIndex.load(self._kw_root, reuse=self._keyword)
        except FileNotFoundError:  # two newer versions were published while loading: take the newest
            self._keyword, self._kw_version = KeywordIndex.load(self._kw_root, reuse=self._keyword)
        return True

    def search(self, query: str, top_k: int = 5, query_vector: np.ndarray | None = None) -> SearchResult:
        """The top_k passages for a query, best first."""
        t0 = time.perf_counter()
        qv = query_vector if query_vector is not None else self.embedder.embed_queries([query])[0]
        t1 = time.perf_counter()
        p = self.params
        self.refresh()
        dense = self.store.dense_search(qv, p.depth)
        t2 = time.perf_counter()
        keyword = self.keyword.search(query, p.depth)
        t3 = time.perf_counter()
        fused = fuse([dense, keyword], [p.dense_weight, p.keyword_weight], p.rrf_k)[:top_k]
        passages = self.store.passages(fused)
        kw_of = dict(keyword)
        vectors = self.store.vectors([ps.chunk_id for ps in passages])
        for ps in passages:
            ps.vector = vectors.get(ps.chunk_id)
            ps.dense = float(ps.vector @ qv) if ps.vector is not None else None
            ps.keyword = kw_of.get(ps.chunk_id)
        t4 = time.perf_counter()
        timings = {
            "embed": (t1 - t0) * 1e3,
            "dense": (t2 - t1) * 1e3,
            "keyword": (t3 - t2) * 1e3,
            "fuse": (t4 - t3) * 1e3,
        }
        return SearchResult(passages, qv, timings)


def fuse(rankings: list[list[tuple[str, float]]], weights: list[float], k: int) -> list[tuple[str, float]]:
    """Weighted reciprocal rank fusion of several rankings of ids."""
    scores: dict[str, float] = {}
    for ranking, w in zip(rankings, weights, strict=True):
        for rank, (cid, _) in enumerate(ranking):
            scores[cid] = scores.get(cid, 0.0) + w / (k + rank + 1)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def keyword_root(data_dir: Path) -> Path:
    """Where the keyword index of a data dir lives."""
    return data_dir / "keyword"
