"""The one way to change an index: sync a corpus, add a file, remove articles, rebuild, read stats.

Every change holds the data dir's writer lock and opens the store with the index's identity (model,
dimension, chunking), so a second writer gets a clear error and a changed setting is never mixed in.
With a `target` (server mode) the lock and registry are this machine's, kept per collection; the vectors
are the server's.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.chroma import ChromaTarget, guard
from index.embed import Embedder
from index.errors import IndexWriteError, KabarError
from index.ingest import IndexReport, Progress, index_paths, remove_paths
from index.keyword import KeywordIndex
from index.layout import DataDir, write_problem, writer_lock
from index.load import load_articles
from index.store import Store
from index.types import ChunkParams


@dataclass
class ArticleStatus:
    """One article of an added file and what indexing did with it."""

    article_id: str
    title: str | None
    chunks: int
    status: str  # "added", "updated" or "unchanged"


class IndexWriter:
    """The open index while the writer lock is held: what `Indexer.writer()` yields."""

    def __init__(self, store: Store, embedder: Embedder | None, chunking: ChunkParams, batch_chunks: int):
        self.store = store
        self._embedder = embedder
        self._chunking = chunking
        self._batch_chunks = batch_chunks

    @property
    def embedder(self) -> Embedder:
        """The embedder new chunks are embedded with."""
        if self._embedder is None:
            raise KabarError("this Indexer was made without an embedder: it can remove and read, not index")
        return self._embedder

    def sync(
        self, paths: Sequence[Path], *, prune: bool = False, progress: Progress | None = None
    ) -> IndexReport:
        """Bring the index in line with the articles under `paths` (see `index_paths`)."""
        return index_paths(
            paths,
            self.store,
            self.embedder,
            chunking=self._chunking,
            prune=prune,
            progress=progress,
            batch_chunks=self._batch_chunks,
        )

    def add(self, path: Path) -> tuple[IndexReport, list[ArticleStatus]]:
        """Index one file; what happened to each article it holds (empty when it holds none)."""
        skipped: list[tuple[str, str]] = []
        articles = list(load_articles([path], on_skip=lambda p, r: skipped.append((p, r))))
        if not articles:
            report = IndexReport(skipped=skipped)
            return report, []
        before = self.store.article_hashes()
        report = self.sync([path])
        report.skipped = skipped + report.skipped
        counts = self.store.chunk_counts([a.article_id for a in articles])
        statuses = []
        for a in articles:
            old = before.get(a.article_id)
            status = "added" if old is None else "unchanged" if old == a.content_hash else "updated"
            statuses.append(ArticleStatus(a.article_id, a.title, counts.get(a.article_id, 0), status))
        return report, statuses

    def remove(self, targets: Sequence[str]) -> list[str]:
        """Remove the articles named by ids or paths from every store; their ids."""
        return remove_paths(targets, self.store)

    def stats(self) -> dict[str, Any]:
        """Counts and provenance of the index."""
        return self.store.stats()


class Indexer:
    """Owns one data dir: every write goes through `writer()`, which holds the lock."""

    def __init__(
        self,
        data_dir: Path,
        embedder: Embedder | None = None,
        chunking: ChunkParams | None = None,
        *,
        batch_chunks: int = 256,
        target: ChromaTarget | None = None,
    ):
        self.target = target
        self.home = data_dir
        self.layout = DataDir(target.local_root(data_dir) if target else data_dir)
        self.embedder = embedder
        self.chunking = chunking or ChunkParams()
        self.batch_chunks = batch_chunks

    @property
    def data_dir(self) -> Path:
        """The data directory (in server mode: this machine's folder for the collection)."""
        return self.layout.root

    def exists(self) -> bool:
        """Whether anything was ever indexed here (in server mode: the server decides, so assume so)."""
        return self.target is not None or self.layout.exists()

    @contextmanager
    def writer(self, *, rebuild: bool = False, rebuild_registry: bool = False) -> Iterator[IndexWriter]:
        """The index, opened for writing under the writer lock; `rebuild` wipes it first (in server mode the
        collection too), `rebuild_registry` recovers the registry from the server collection.

        A full disk or a read-only data dir ends the run with IndexWriteError; the steps committed before
        stay, as after a kill, and the next run continues from them.
        """
        try:
            with self._writer(rebuild, rebuild_registry) as w:
                yield w
        except KabarError:
            raise
        except Exception as e:
            problem = write_problem(self.data_dir, e)
            if problem is None:
                raise
            raise IndexWriteError(problem) from e

    @contextmanager
    def _writer(self, rebuild: bool, rebuild_registry: bool) -> Iterator[IndexWriter]:
        with writer_lock(self.data_dir):
            if rebuild:
                self.layout.wipe()
                if self.target is not None:
                    _drop_collection(self.target)
            e = self.embedder
            existed = self.layout.exists()
            store = Store(
                self.home,
                e.name if e else None,
                e.dim if e else 0,
                chunking=self.chunking,
                target=self.target,
            )
            try:
                if rebuild_registry and self.target is not None:
                    from index.collection import rebuild_registry as recover

                    recover(store)
                # a run with nothing to do must not call a damaged index fine (server mode: no keywords here)
                if existed and self.target is None:
                    store.check_vectors()
                    KeywordIndex.load(self.layout.keyword)
                yield IndexWriter(store, e, self.chunking, self.batch_chunks)
            finally:
                store.close()

    def repair(self) -> None:
        """Rebuild what needs no re-embedding: the keyword index (from the registry), orphan vectors dropped.

        A damaged registry or vector store still raises IndexCorrupt: only `--rebuild` restores those.
        """
        from index.ingest import sync_keywords

        with writer_lock(self.data_dir):
            shutil.rmtree(self.layout.keyword, ignore_errors=True)  # rebuilt below from the registry
            store = Store(self.data_dir)
            try:
                store.reconcile()  # opening the vectors checks their files
                sync_keywords(store)
                store.mark_clean()
            finally:
                store.close()

    def sync(
        self,
        paths: Sequence[Path],
        *,
        prune: bool = False,
        rebuild: bool = False,
        rebuild_registry: bool = False,
        progress: Progress | None = None,
    ) -> tuple[IndexReport, dict[str, Any]]:
        """One locked indexing run over `paths`; (what it did, stats after)."""
        with self.writer(rebuild=rebuild, rebuild_registry=rebuild_registry) as w:
            return w.sync(paths, prune=prune, progress=progress), w.stats()

    def remove(self, targets: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
        """Remove articles by id or path; (their ids, stats after)."""
        with self.writer() as w:
            return w.remove(targets), w.stats()

    def stats(self, configured_model: str | None = None) -> dict[str, Any]:
        """Counts and provenance; an index never written reads as empty (nothing is created)."""
        if self.target is not None:  # what the server holds, as its last writer recorded it
            from index.remote import RemoteStore

            remote = RemoteStore(self.home, self.target)
            info = remote.stats()
            info["embed_model"] = info["embed_model"] or (
                self.embedder.name if self.embedder else configured_model
            )
            return info
        if not self.exists():
            return {
                "articles": 0,
                "chunks": 0,
                "embed_model": self.embedder.name if self.embedder else configured_model,
                "data_dir": str(self.data_dir),
                "last_indexed": None,
            }
        store = Store(self.data_dir)
        try:
            return store.stats()
        finally:
            store.close()


def _drop_collection(target: ChromaTarget) -> None:
    """Delete a server collection (for a rebuild); a missing one is fine."""
    from chromadb.errors import NotFoundError

    client = target.client()
    try:
        with guard(target):
            client.delete_collection(target.collection)
    except NotFoundError:
        pass
