"""Index a corpus: load, clean, chunk, embed and store what is new or changed, then rebuild keywords."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.chunk import chunk_article
from index.embed import Embedder
from index.keyword import KeywordIndex
from index.load import load_articles
from index.search import keyword_root
from index.store import Store
from index.types import Article, Chunk

log = logging.getLogger(__name__)

# progress(phase, done, total): phases "load", "embed", "keywords"
Progress = Callable[[str, int, int], None]


@dataclass
class IndexReport:
    """What one `kabar index` run did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks_embedded: int = 0
    tokens_embedded: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0

    def to_json(self) -> dict:
        """Plain dict for `--json`."""
        return {**self.__dict__, "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}


@dataclass
class ChunkParams:
    """How articles are cut into chunks."""

    target_tokens: int = 160
    overlap: int = 1


def index_paths(
    paths: Iterable[Path],
    store: Store,
    embedder: Embedder,
    *,
    chunking: ChunkParams | None = None,
    prune: bool = False,
    progress: Progress | None = None,
    batch_chunks: int = 64,
) -> IndexReport:
    """Bring the index in line with the articles under `paths`; returns what changed."""
    t0 = time.perf_counter()
    report = IndexReport()
    chunking = chunking or ChunkParams()
    tick = progress or (lambda phase, done, total: None)

    indexed = store.article_hashes()
    seen: set[str] = set()
    todo: list[Article] = []
    for article in load_articles(paths, on_skip=lambda p, r: report.skipped.append((p, r))):
        if article.article_id in seen:
            continue  # the same article twice in the corpus: index it once
        seen.add(article.article_id)
        old = indexed.get(article.article_id)
        if old == article.content_hash:
            report.unchanged += 1
        else:
            todo.append(article)
            if old is None:
                report.added += 1
            else:
                report.updated += 1
        tick("load", len(seen), 0)

    store.reconcile()
    pending: list[tuple[Article, list[Chunk]]] = []
    total = 0
    for article in todo:
        chunks = chunk_article(
            article,
            embedder.count_tokens,
            max_tokens=embedder.max_tokens,
            target_tokens=chunking.target_tokens,
            overlap=chunking.overlap,
        )
        pending.append((article, chunks))
        total += len(chunks)

    done = 0
    tick("embed", 0, total)
    batch: list[tuple[Article, list[Chunk]]] = []
    for item in pending:
        batch.append(item)
        if sum(len(c) for _, c in batch) >= batch_chunks:
            done += _write_batch(batch, store, embedder, report)
            tick("embed", done, total)
            batch = []
    if batch:
        done += _write_batch(batch, store, embedder, report)
        tick("embed", done, total)

    if prune:
        for article_id in sorted(set(indexed) - seen):
            store.remove_article(article_id)
            report.removed += 1

    if todo or report.removed or KeywordIndex.current_version(keyword_root(store.data_dir)) is None:
        tick("keywords", 0, 1)
        rebuild_keywords(store)
        tick("keywords", 1, 1)
    else:
        store.mark_indexed(int(store.meta("keyword_version") or 0))
    report.seconds = time.perf_counter() - t0
    return report


def rebuild_keywords(store: Store) -> int:
    """Rebuild the BM25 index from the registry and publish it as a new version."""
    root = keyword_root(store.data_dir)
    version = (KeywordIndex.current_version(root) or 0) + 1
    ids, texts = store.all_chunks()
    KeywordIndex.build(ids, texts).save(root, version)
    store.mark_indexed(version)
    return version


def _write_batch(
    batch: list[tuple[Article, list[Chunk]]], store: Store, embedder: Embedder, report: IndexReport
) -> int:
    texts = [c.embed_text for _, chunks in batch for c in chunks]
    t = time.perf_counter()
    vectors = embedder.embed_passages(texts) if texts else np.zeros((0, embedder.dim), np.float32)
    report.embed_seconds += time.perf_counter() - t
    report.chunks_embedded += len(texts)
    row = 0
    for article, chunks in batch:
        store.add_article(article, chunks, vectors[row : row + len(chunks)])
        row += len(chunks)
    return len(texts)
