"""Hybrid retrieval: dense (Chroma) and keyword (BM25) rankings fused by their standardised scores."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from index.embed import Embedder
from index.keyword import KeywordIndex
from index.lang import detect_language
from index.remote import RemoteStore
from index.store import Store
from index.types import Passage

log = logging.getLogger(__name__)


@dataclass
class SearchParams:
    """Knobs of the fusion; tuned with `kabar eval` and bench/fusion_study.py (docs/evaluation.md)."""

    depth: int = 50  # candidates taken from each ranking
    dense_weight: float = 0.6  # share of the dense z-score in the fused score, Indonesian questions
    # English questions over Indonesian articles: BM25 can only match names and numbers, so dense leads.
    dense_weight_en: float = 0.8

    def weight(self, query: str) -> float:
        """The dense share for this query's language."""
        return self.dense_weight_en if detect_language(query) == "en" else self.dense_weight


@dataclass
class SearchResult:
    """Fused passages plus what produced them."""

    passages: list[Passage]
    query_vector: np.ndarray
    timings_ms: dict[str, float]


class Searcher:
    """Answers `search(query)` over one store; picks up a newer keyword index when a re-index finishes.

    The store is a `Store` (embedded: the writer's keyword versions in the data dir) or a `RemoteStore`
    (server: a local keyword cache synced from the collection); both give the same reads.
    """

    def __init__(self, store: Store | RemoteStore, embedder: Embedder, params: SearchParams | None = None):
        self.store = store
        self.embedder = embedder
        self.params = params or SearchParams()
        self._keywords = store.keyword_source()

    @property
    def keyword(self) -> KeywordIndex:
        """The current keyword index, reloaded if a writer published a new version."""
        self.refresh()
        return self._keywords.index

    def refresh(self) -> bool:
        """Pick up a finished re-index (a new keyword version): reload keywords, reopen the vectors."""
        return bool(self._keywords.refresh())

    def search(self, query: str, top_k: int = 5, query_vector: np.ndarray | None = None) -> SearchResult:
        """The top_k passages for a query, best first."""
        t0 = time.perf_counter()
        qv = query_vector if query_vector is not None else self.embedder.embed_queries([query])[0]
        t1 = time.perf_counter()
        p = self.params
        self.refresh()
        dense = self.store.dense_search(qv, p.depth)
        t2 = time.perf_counter()
        keyword = self._keywords.index.search(query, p.depth)  # refreshed above
        t3 = time.perf_counter()
        fused = fuse(dense, keyword, p.weight(query))[:top_k]
        passages = self.store.passages(fused)
        kw_of = dict(keyword)
        vectors = self.store.vectors([ps.chunk_id for ps in passages])
        for ps in passages:
            stored = vectors.get(ps.chunk_id)
            if stored is not None:
                ps.vector, ps.sentence_vectors = stored.vector, stored.sentences
                ps.dense = float(ps.vector @ qv)
            ps.keyword = kw_of.get(ps.chunk_id)
        t4 = time.perf_counter()
        timings = {
            "embed": (t1 - t0) * 1e3,
            "dense": (t2 - t1) * 1e3,
            "keyword": (t3 - t2) * 1e3,
            "fuse": (t4 - t3) * 1e3,
        }
        return SearchResult(passages, qv, timings)


def fuse(
    dense: list[tuple[str, float]], keyword: list[tuple[str, float]], dense_weight: float
) -> list[tuple[str, float]]:
    """Candidates of both rankings by `w * z(cosine) + (1 - w) * z(BM25)`, best first.

    Each score is standardised over its own candidate list, so a ranking counts by how far a candidate
    stands out from the others: a BM25 hit that reuses the question's rare words outweighs a near-tie of
    cosines, and a clear dense winner outweighs a flat BM25 list. (Reciprocal-rank fusion sees only ranks,
    and on every question set here it scored below the better of its two inputs.) A candidate missing from
    one list gets that list's lowest z-score.
    """
    zd, zk = _zscores(dense), _zscores(keyword)
    floor_d, floor_k = min(zd.values(), default=0.0), min(zk.values(), default=0.0)
    w = dense_weight
    scores = {c: w * zd.get(c, floor_d) + (1 - w) * zk.get(c, floor_k) for c in zd.keys() | zk.keys()}
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def _zscores(ranking: list[tuple[str, float]]) -> dict[str, float]:
    if not ranking:
        return {}
    values = np.array([s for _, s in ranking], np.float64)
    sd = float(values.std()) or 1.0
    return {c: (s - float(values.mean())) / sd for c, s in ranking}
