"""Persistent store: Chroma vectors (through llama-index) plus a SQLite registry of articles and chunks."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import IndexEmptyError, KabarError, ModelMismatchError
from index.types import Article, Chunk, Passage, content_hash

log = logging.getLogger(__name__)

COLLECTION = "kabar_chunks"
# Exact-enough HNSW: Chroma's defaults (ef_search 100, M 16) lose ~2 points of recall against brute force
# even at a few thousand chunks; a wider search costs well under a millisecond at our sizes.
HNSW = {"space": "cosine", "ef_construction": 200, "max_neighbors": 32, "ef_search": 256}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS articles (
    article_id TEXT PRIMARY KEY, content_hash TEXT NOT NULL, path TEXT, title TEXT, publisher TEXT,
    source TEXT, date TEXT, url TEXT, n_chunks INTEGER NOT NULL, indexed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, article_id TEXT NOT NULL, chunk_no INTEGER NOT NULL, text TEXT NOT NULL,
    text_hash TEXT NOT NULL, sentences TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_article ON chunks (article_id, chunk_no);
"""

_ARTICLE_FIELDS = ("title", "publisher", "source", "date", "url", "path")


def quiet_chroma() -> Any:
    """Chroma client settings with telemetry off (it would phone home otherwise)."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


class Store:
    """One Kabar index in a data directory; `open` checks it was built with the same embedding model."""

    def __init__(self, data_dir: Path, embed_model: str | None = None, dim: int = 0):
        self.data_dir = data_dir
        self.embed_model = embed_model
        self.dim = dim
        data_dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(data_dir / "kabar.sqlite", timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(_SCHEMA)
        if embed_model is None:  # a reader that only looks (stats): take the index as it is
            self.embed_model = self.meta("embed_model") or ""
            self.dim = int(self.meta("dim") or 0)
        self._check_model()
        self._vector_store: Any = None

    # --- model bookkeeping -------------------------------------------------------------------------
    def _check_model(self) -> None:
        built_with = self.meta("embed_model")
        if built_with is None or not self.embed_model:
            return
        if built_with != self.embed_model or self.meta("dim") != str(self.dim):
            raise ModelMismatchError(
                f"The index in {self.data_dir} was built with the embedding model '{built_with}', "
                f"but '{self.embed_model}' is configured. Mixing models gives meaningless results: "
                f"set KABAR_EMBED_MODEL={built_with}, or re-index from scratch with `kabar index --rebuild`."
            )

    def meta(self, key: str) -> str | None:
        """A value from the meta table."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value (caller commits)."""
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # --- vectors -----------------------------------------------------------------------------------
    @property
    def vector_store(self) -> Any:
        """llama-index's ChromaVectorStore over our collection (opened lazily)."""
        if self._vector_store is None:
            import chromadb
            from llama_index.vector_stores.chroma import ChromaVectorStore

            client = chromadb.PersistentClient(path=str(self.data_dir / "chroma"), settings=quiet_chroma())
            # embedding_function=None: we embed ourselves; Chroma's default would download an ONNX model.
            collection = client.get_or_create_collection(
                COLLECTION, configuration={"hnsw": HNSW}, embedding_function=None
            )
            self._vector_store = ChromaVectorStore(chroma_collection=collection)
        return self._vector_store

    def dense_search(self, query_vec: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Top-k (chunk_id, cosine similarity) by the vector store."""
        from llama_index.core.vector_stores.types import VectorStoreQuery

        count = self.vector_store._collection.count()
        if count == 0 or k <= 0:
            return []
        q = VectorStoreQuery(query_embedding=query_vec.tolist(), similarity_top_k=min(k, count))
        res = self.vector_store.query(q)
        # llama-index reports exp(-distance); Chroma's cosine distance is 1 - cos.
        return [
            (i, 1.0 + float(np.log(s))) for i, s in zip(res.ids or [], res.similarities or [], strict=True)
        ]

    def vectors(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of some chunks (so answers never re-embed what was indexed)."""
        if not chunk_ids:
            return {}
        got = self.vector_store._collection.get(ids=list(chunk_ids), include=["embeddings"])
        return {
            i: np.asarray(v, dtype=np.float32) for i, v in zip(got["ids"], got["embeddings"], strict=True)
        }

    # --- writing -----------------------------------------------------------------------------------
    def add_article(self, article: Article, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Store one article's chunks and vectors, replacing any earlier version of it."""
        from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

        if self.meta("embed_model") is None:
            self.set_meta("embed_model", self.embed_model)
            self.set_meta("dim", str(self.dim))
        old = [
            r[0]
            for r in self.db.execute(
                "SELECT chunk_id FROM chunks WHERE article_id = ?", (article.article_id,)
            )
        ]
        stale = sorted(set(old) - {c.chunk_id for c in chunks})
        if stale:
            self.vector_store.delete_nodes(node_ids=stale)
        nodes = [
            TextNode(
                id_=c.chunk_id,
                text=c.text,
                embedding=vectors[i].tolist(),
                metadata=_node_meta(article, c),
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=article.article_id)},
            )
            for i, c in enumerate(chunks)
        ]
        if nodes:
            # upsert semantics: delete then add, so a re-run after a crash never duplicates ids
            self.vector_store.delete_nodes(node_ids=[n.node_id for n in nodes])
            self.vector_store.add(nodes)
        with self.db:
            self.db.execute("DELETE FROM chunks WHERE article_id = ?", (article.article_id,))
            self.db.executemany(
                "INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.chunk_id,
                        article.article_id,
                        c.chunk_no,
                        c.text,
                        content_hash(c.embed_text),
                        json.dumps([[s.paragraph, s.index, s.start, s.end] for s in c.sentences]),
                    )
                    for c in chunks
                ],
            )
            self.db.execute(
                "INSERT OR REPLACE INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    article.article_id,
                    article.content_hash,
                    article.path,
                    article.title,
                    article.publisher,
                    article.source,
                    article.date,
                    article.url,
                    len(chunks),
                    _now(),
                ),
            )

    def remove_article(self, article_id: str) -> int:
        """Remove an article from vectors and registry; returns the chunks removed."""
        ids = [
            r[0] for r in self.db.execute("SELECT chunk_id FROM chunks WHERE article_id = ?", (article_id,))
        ]
        if ids:
            self.vector_store.delete_nodes(node_ids=ids)
        with self.db:
            self.db.execute("DELETE FROM chunks WHERE article_id = ?", (article_id,))
            self.db.execute("DELETE FROM articles WHERE article_id = ?", (article_id,))
        return len(ids)

    def mark_indexed(self, keyword_version: int) -> None:
        """Record the finished run: its time and the keyword index version that matches it."""
        with self.db:
            self.set_meta("last_indexed", _now())
            self.set_meta("keyword_version", str(keyword_version))

    def reconcile(self) -> int:
        """Drop vectors that the registry does not know (left by a crash between the two writes)."""
        known = {r[0] for r in self.db.execute("SELECT chunk_id FROM chunks")}
        stored = set(self.vector_store._collection.get(include=[])["ids"])
        orphans = sorted(stored - known)
        if orphans:
            log.info("removing %d orphan vectors", len(orphans))
            self.vector_store.delete_nodes(node_ids=orphans)
        return len(orphans)

    # --- reading -----------------------------------------------------------------------------------
    def article_hashes(self) -> dict[str, str]:
        """article_id -> content hash of what is indexed."""
        return dict(self.db.execute("SELECT article_id, content_hash FROM articles"))

    def all_chunks(self) -> tuple[list[str], list[str]]:
        """(chunk ids, title + text) of every chunk, in a stable order: what the keyword index reads."""
        rows = self.db.execute(
            "SELECT c.chunk_id, COALESCE(a.title, '') || char(10) || c.text FROM chunks c "
            "JOIN articles a USING (article_id) ORDER BY c.article_id, c.chunk_no"
        ).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def passages(self, scored: Sequence[tuple[str, float]]) -> list[Passage]:
        """Passages (text and article metadata) for (chunk_id, score) pairs, in the given order."""
        if not scored:
            return []
        ids = [cid for cid, _ in scored]
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            "SELECT c.chunk_id, c.article_id, c.chunk_no, c.text, c.sentences, a.title, a.publisher, "
            "a.source, a.date, a.url, a.path FROM chunks c JOIN articles a USING (article_id) "
            f"WHERE c.chunk_id IN ({marks})",
            ids,
        ).fetchall()
        by_id = {r[0]: r for r in rows}
        out = []
        for cid, score in scored:
            r = by_id.get(cid)
            if r is None:  # deleted since the keyword index was built
                continue
            meta = dict(zip(_ARTICLE_FIELDS, (r[5], r[6], r[7], r[8], r[9], r[10]), strict=True))
            meta["chunk_no"] = r[2]
            meta["sentences"] = json.loads(r[4])
            out.append(Passage(chunk_id=cid, article_id=r[1], text=r[3], score=score, meta=meta))
        return out

    def stats(self) -> dict[str, Any]:
        """Counts and provenance of the index."""
        articles = self.db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        chunks = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return {
            "articles": articles,
            "chunks": chunks,
            "embed_model": self.meta("embed_model") or self.embed_model,
            "data_dir": str(self.data_dir),
            "last_indexed": self.meta("last_indexed"),
        }

    def require_nonempty(self) -> None:
        """Raise a clear error when nothing is indexed yet."""
        if self.db.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None:
            raise IndexEmptyError(f"Nothing is indexed in {self.data_dir} yet: run `kabar index` first.")

    def close(self) -> None:
        """Close the registry connection."""
        self.db.close()


@contextmanager
def writer_lock(data_dir: Path) -> Iterator[None]:
    """One writer at a time per data directory; a second one gets a clear error instead of waiting."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "write.lock", "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KabarError(
                f"Another `kabar index` is writing to {data_dir}; wait for it to finish and try again."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _node_meta(article: Article, chunk: Chunk) -> dict[str, Any]:
    meta = {k: getattr(article, k) or "" for k in _ARTICLE_FIELDS}
    meta.update(
        article_id=article.article_id,
        chunk_no=chunk.chunk_no,
        first_sentence=chunk.first_sentence,
        last_sentence=chunk.last_sentence,
        paragraph=chunk.sentences[0].paragraph,
    )
    return meta


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
