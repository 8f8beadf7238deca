"""Sync the index with a corpus: embed what is new or changed, replace edited articles, drop deleted ones.

Articles are compared by the content hash of their cleaned text, never by timestamps; bytes unchanged since
they were indexed (the raw hash of a file or JSON Lines record) are not even parsed. Each source file is
recorded (its resolved path, the article's `origin`): an article that a file no longer yields is replaced
or removed, a file that moved is only re-pointed, and chunk vectors are reused by the hash of the text they
embed, so a typo fix re-embeds the one or two chunks that hold it. Writes happen in batches, each one
registry transaction (see `Store`); a killed run leaves the index consistent and the next run finishes it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index.chunk import chunk_article
from index.embed import Embedder
from index.errors import LoadError
from index.keyword import KeywordIndex
from index.layout import DataDir
from index.load import Unchanged, corpus_files, load_file
from index.store import Store
from index.types import Article, Chunk, ChunkParams, ChunkVectors, content_hash

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
    moved: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    sentences_embedded: int = 0  # sentence vectors stored with their chunks (each distinct text once)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0

    @property
    def changed(self) -> bool:
        """Whether the run changed the index."""
        return bool(self.added or self.updated or self.removed)

    def to_json(self) -> dict:
        """Plain dict for `--json`."""
        return {**self.__dict__, "skipped": [{"path": p, "reason": r} for p, r in self.skipped]}


@dataclass
class _Work:
    """What one source file asks for: articles to (re-)embed and indexed articles to drop."""

    origin: str
    articles: list[Article] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    chunks: list[list[Chunk]] = field(default_factory=list)

    @property
    def n_chunks(self) -> int:
        return sum(len(c) for c in self.chunks)


def index_paths(
    paths: Iterable[Path],
    store: Store,
    embedder: Embedder,
    *,
    chunking: ChunkParams | None = None,
    prune: bool = False,
    progress: Progress | None = None,
    batch_chunks: int = 256,
) -> IndexReport:
    """Bring the index in line with the articles under `paths`; returns what changed.

    Articles of a file that was read without errors but no longer yields them are removed (an edited
    article replaces its old version); with `prune`, so are the articles of files that are gone.
    """
    t0 = time.perf_counter()
    report = IndexReport()
    chunking = chunking or ChunkParams()
    tick = progress or (lambda phase, done, total: None)

    if store.meta("dirty"):  # the last run was killed: drop the vectors it wrote but never registered
        store.reconcile()
    indexed = store.indexed()
    by_origin: dict[str, set[str]] = {}
    by_raw: dict[str, dict[str, list[str]]] = {}  # origin -> raw hash -> article ids read from those bytes
    for article_id, (_, origin, _, raw) in indexed.items():
        by_origin.setdefault(origin or "", set()).add(article_id)
        if raw:
            by_raw.setdefault(origin or "", {}).setdefault(raw, []).append(article_id)

    seen: dict[str, str] = {}  # article id -> the file it was read from this run
    clean_files: list[str] = []  # files read without errors: what they no longer yield is gone
    work: dict[str, _Work] = {}
    moves: list[tuple[str, str, str | None, str | None]] = []
    for path in corpus_files(paths, lambda p, r: report.skipped.append((p, r))):
        origin = str(path.resolve())
        errors = False
        known = by_raw.get(origin, {})
        for item in load_file(path, lambda p, r: report.skipped.append((p, r)), known):
            if isinstance(item, LoadError):
                report.skipped.append((item.path, item.reason))
                errors = True
                continue
            if isinstance(item, Unchanged):  # the same bytes as when indexed: not parsed again
                for article_id in known[item.raw_hash]:
                    if article_id in seen:
                        report.skipped.append((str(path), f"duplicate of {seen[article_id]}"))
                    else:
                        seen[article_id] = indexed[article_id][2] or str(path)
                        report.unchanged += 1
                continue
            if item.article_id in seen:
                report.skipped.append((item.path or str(path), f"duplicate of {seen[item.article_id]}"))
                continue
            seen[item.article_id] = item.path or str(path)
            old = indexed.get(item.article_id)
            if old is not None and old[0] == item.content_hash:
                report.unchanged += 1
                if (old[1], old[2], old[3]) != (origin, item.path, item.raw_hash):
                    moves.append((item.article_id, origin, item.path, item.raw_hash))
            else:
                work.setdefault(origin, _Work(origin)).articles.append(item)
                if old is None:
                    report.added += 1
                else:
                    report.updated += 1
            tick("load", len(seen), 0)
        if not errors:
            clean_files.append(origin)

    for origin in clean_files:
        gone = sorted(by_origin.get(origin, set()) - seen.keys())
        if gone:
            item_work = work.setdefault(origin, _Work(origin))
            item_work.remove += gone
            # an edited file yields a new article id (ids are content-derived): a replacement, not an addition
            pairs = min(len(gone), sum(a.article_id not in indexed for a in item_work.articles))
            report.added -= pairs
            report.updated += pairs
            report.removed += len(gone) - pairs
    if prune:
        gone = sorted(
            aid
            for aid, (_, origin, _, _) in indexed.items()
            if aid not in seen and not (origin and Path(origin).exists())
        )
        if gone:
            work.setdefault("", _Work("")).remove += gone
            report.removed += len(gone)

    store.move(moves)
    report.moved = len(moves)
    _write(list(work.values()), store, embedder, chunking, report, tick, batch_chunks)

    if store.keyword_stale() or not (store.remote or KeywordIndex.exists(DataDir(store.data_dir).keyword)):
        tick("keywords", 0, 1)
        sync_keywords(store)
        tick("keywords", 1, 1)
    else:
        store.mark_indexed(int(store.meta("keyword_version") or 0))
    store.mark_clean()
    report.seconds = time.perf_counter() - t0
    return report


def remove_paths(targets: Iterable[str], store: Store) -> list[str]:
    """Remove the articles named by ids or paths (vectors, registry, keyword index); returns their ids."""
    ids = sorted({aid for target in targets for aid in store.find(target)})
    _remove(ids, store)
    return ids


def _remove(ids: list[str], store: Store) -> None:
    if ids:
        if store.meta("dirty"):  # orphans of a killed run: dropped before this run can call itself clean
            store.reconcile()
        store.write([], remove=ids)
        sync_keywords(store)
        store.mark_clean()


def sync_keywords(store: Store) -> int:
    """Bring the keyword index in line with the registry (index new chunks, drop gone ones); its version.

    Works from the difference, not from what the run meant to do, so it also catches up after a run
    that was killed between writing the registry and the keyword index. In server mode readers keep
    their own keyword caches: the run's end is published instead (the collection's generation moves).
    """
    registry_version = store.registry_version()
    if store.remote:
        store.publish()
        store.mark_indexed(0, registry_version)
        return 0
    root = DataDir(store.data_dir).keyword
    keywords, version = KeywordIndex.load(root)
    wanted, have = store.keyword_keys(), keywords.keys()
    added, removed = sorted(wanted - have), have - wanted
    if added or removed or version is None:
        version = (KeywordIndex.current_version(root) or 0) + 1
        keywords.updated(f"s{version:06d}", store.keyword_texts(added), removed).save(root, version)
    store.mark_indexed(version, registry_version)
    return version


def _write(
    work: list[_Work],
    store: Store,
    embedder: Embedder,
    chunking: ChunkParams,
    report: IndexReport,
    tick: Progress,
    batch_chunks: int,
) -> None:
    if not work:
        return
    total = 0
    for w in work:
        w.chunks = [
            chunk_article(
                article,
                embedder.count_tokens,
                max_tokens=embedder.max_tokens,
                target_tokens=chunking.target_tokens,
                overlap=chunking.overlap,
            )
            for article in w.articles
        ]
        total += w.n_chunks
    done = 0
    tick("embed", 0, total)
    batch: list[_Work] = []
    for w in (part for unit in work for part in _split(unit, batch_chunks)):
        batch.append(w)
        if sum(b.n_chunks for b in batch) >= batch_chunks:
            done += _write_batch(batch, store, embedder, report)
            tick("embed", done, total)
            batch = []
    if batch:
        done += _write_batch(batch, store, embedder, report)
        tick("embed", done, total)


def _split(w: _Work, batch_chunks: int) -> Iterator[_Work]:
    """A file of many articles (a JSON Lines corpus) is written in batches too, not in one go: the
    articles it no longer yields are dropped with its first part."""
    part = _Work(w.origin, remove=w.remove)
    for article, chunks in zip(w.articles, w.chunks, strict=True):
        if part.articles and part.n_chunks + len(chunks) > batch_chunks:
            yield part
            part = _Work(w.origin)
        part.articles.append(article)
        part.chunks.append(chunks)
    if part.articles or part.remove:
        yield part


def _write_batch(batch: list[_Work], store: Store, embedder: Embedder, report: IndexReport) -> int:
    """Embed what no stored vector covers (chunks and their sentences, in one call), then write the batch
    as one registry transaction."""
    chunks = [c for w in batch for cs in w.chunks for c in cs]
    hashes = [content_hash(c.embed_text) for c in chunks]
    known = store.reusable_vectors(sorted(set(hashes)))
    todo: dict[str, str] = {}  # text hash -> embed text, each distinct text embedded once
    for c, h in zip(chunks, hashes, strict=True):
        if h not in known:
            todo.setdefault(h, c.embed_text)
    reuse = _stored_sentences(batch, store, [(c, known.get(h)) for c, h in zip(chunks, hashes, strict=True)])
    sentence_texts = list(dict.fromkeys(s.text for c in chunks for s in c.sentences if s.text not in reuse))
    t = time.perf_counter()
    texts = list(todo.values())
    fresh = embedder.embed_passages(texts + sentence_texts) if texts or sentence_texts else None
    report.embed_seconds += time.perf_counter() - t
    report.chunks_embedded += len(texts)
    report.chunks_reused += len(chunks) - len(texts)
    report.sentences_embedded += len(sentence_texts)
    vectors = {h: v.vector for h, v in known.items()}
    if fresh is not None:
        vectors.update(zip(todo, fresh[: len(texts)], strict=True))
        reuse.update(zip(sentence_texts, fresh[len(texts) :], strict=True))
    items = []
    origins: dict[str, str] = {}
    row = 0
    for w in batch:
        for article, cs in zip(w.articles, w.chunks, strict=True):
            rows = [vectors[h] for h in hashes[row : row + len(cs)]]
            items.append((article, cs, np.stack(rows) if rows else np.zeros((0, embedder.dim), np.float32)))
            origins[article.article_id] = w.origin
            row += len(cs)
    store.write(
        items,
        remove=[aid for w in batch for aid in w.remove],
        origins=origins,
        sentence_vectors={c.chunk_id: np.stack([reuse[s.text] for s in c.sentences]) for c in chunks},
    )
    return len(chunks)


def _stored_sentences(
    batch: list[_Work], store: Store, reused: list[tuple[Chunk, ChunkVectors | None]]
) -> dict[str, np.ndarray]:
    """sentence text -> its stored vector, from reused chunks and from the versions this batch replaces
    (so a typo fix embeds the one sentence it changed)."""
    out: dict[str, np.ndarray] = {}
    for chunk, stored_chunk in reused:
        if stored_chunk is not None and stored_chunk.sentences is not None:
            if len(stored_chunk.sentences) == len(chunk.sentences):
                out.update(zip((s.text for s in chunk.sentences), stored_chunk.sentences, strict=True))
    replaced = [aid for w in batch for aid in w.remove] + [a.article_id for w in batch for a in w.articles]
    old_ids = store.chunk_ids(replaced)
    if old_ids:
        stored = store.vectors(old_ids)
        for ps in store.passages([(cid, 0.0) for cid in old_ids]):
            rows = stored.get(ps.chunk_id)
            spans = ps.meta["sentences"]
            if rows is not None and rows.sentences is not None and len(rows.sentences) == len(spans):
                base = spans[0][2]
                for (_, _, start, end), vec in zip(spans, rows.sentences, strict=True):
                    out[ps.text[start - base : end - base]] = vec
    return out
