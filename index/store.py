"""Persistent store: Chroma vectors (written via llama-index) and a SQLite registry of articles and chunks.

The vectors live in the data dir (embedded Chroma) or in a collection on a Chroma server (`ChromaTarget`);
either way the registry is this writer's own SQLite file (docs/deploy.md: where things live).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index import chroma, sentvec
from index.chroma import COLLECTION, HNSW, ChromaTarget, Guarded, guard, quiet_chroma
from index.errors import (
    IndexCorrupt,
    IndexEmptyError,
    IndexIdentityError,
    IndexWriteError,
    ModelMismatchError,
    is_corruption,
)
from index.layout import DataDir, write_problem
from index.types import Article, Chunk, ChunkParams, ChunkVectors, Passage, content_hash

log = logging.getLogger(__name__)

__all__ = ["COLLECTION", "HNSW", "Store", "chunk_of", "quiet_chroma", "vector_id"]

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

# Columns added after the first release: (table, column, type, how to fill it in an older index).
_MIGRATIONS = [
    ("articles", "origin", "TEXT", "UPDATE articles SET origin = path WHERE origin IS NULL"),
    ("chunks", "vector_id", "TEXT", "UPDATE chunks SET vector_id = chunk_id WHERE vector_id IS NULL"),
    ("articles", "raw_hash", "TEXT", "SELECT 1"),  # unknown in an older index: such articles are parsed
]
_INDEXES = """
CREATE INDEX IF NOT EXISTS chunks_by_hash ON chunks (text_hash);
CREATE INDEX IF NOT EXISTS articles_by_origin ON articles (origin);
"""

_SQL_BATCH = 900  # bound variables per statement
# Chroma keeps one system per path per process and creates, counts and stops it without a lock: a reader
# reopening (refresh) while the bot's writer opens the same path got a stopped system. Opening and closing
# a client here hold this lock.
_SYSTEMS = threading.RLock()
_VECTOR_BATCH = 1000
_ARTICLE_FIELDS = ("title", "publisher", "source", "date", "url", "path")


class Store:
    """One Kabar index in a data directory; `open` checks it was built with the same embedding model.

    Write order (what makes a kill -9 harmless): vectors are added to Chroma first, then the registry
    changes in one SQLite transaction, then replaced vectors are deleted. Vector ids carry the hash of the
    text they embed (`chunk_id#hash`), so a vector is never overwritten with another text's; whatever a crash
    leaves in Chroma that the registry does not name is an orphan that `reconcile` drops.

    With a `target` (a server collection) the registry lives in `target.local_root(data_dir)`, and every
    record also carries what a reader needs without it (chunk id, sentence spans, hashes); a writer whose
    registry does not describe that collection (a fresh machine, a recreated collection) rebuilds it from
    the server first (`index.collection`).
    """

    def __init__(
        self,
        data_dir: Path,
        embed_model: str | None = None,
        dim: int = 0,
        chunking: ChunkParams | None = None,
        target: ChromaTarget | None = None,
    ):
        self.target = target
        self.home = data_dir  # the data dir given (in server mode the registry is in a folder below it)
        self.data_dir = target.local_root(data_dir) if target else data_dir
        self.where = target.label if target else str(data_dir)  # what messages name
        self.layout = DataDir(self.data_dir)
        self.embed_model: str = embed_model or ""
        self.dim = dim
        self.chunking = chunking  # given by writers: what they will cut articles with
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # a read-only data dir (a read-only mount, a shared copy) is read as it is, never written
        self.read_only = self.layout.registry.exists() and not os.access(self.data_dir, os.W_OK)
        self._client: Any = None
        self._collection: Any = None
        self._vector_store: Any = None
        self._wrote_vectors = False
        self._scratch: Path | None = None  # a read-only index's vectors, copied where Chroma may write
        try:
            if self.read_only:
                uri = f"file:{self.layout.registry}?mode=ro&immutable=1"  # WAL needs no -shm file then
                self.db = sqlite3.connect(uri, uri=True, check_same_thread=False)
            else:
                self.db = sqlite3.connect(self.layout.registry, timeout=30, check_same_thread=False)
                self.db.execute("PRAGMA journal_mode=WAL")
            # a damaged registry is said at open, not half-way through an answer (~20 ms for 7 MB)
            check = self.db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if check != "ok":
                raise IndexCorrupt(f"The index registry {self.layout.registry}", detail=check)
            if not self.read_only:
                self.db.executescript(_SCHEMA)
                self._migrate()
            if target is not None:  # the registry must describe this collection
                self._attach()
            if not embed_model:  # a reader that only looks (stats): take the index as it is
                self.embed_model = self.meta("embed_model") or ""
                self.dim = int(self.meta("dim") or 0)
        except sqlite3.DatabaseError as e:
            if not is_corruption(e):
                raise
            raise IndexCorrupt(f"The index registry {self.layout.registry}", detail=str(e)) from None
        self._check_identity()

    @property
    def remote(self) -> bool:
        """Whether the vectors are on a Chroma server."""
        return self.target is not None

    def _migrate(self) -> None:
        with self.db:
            for table, column, kind, fill in _MIGRATIONS:
                names = {r[1] for r in self.db.execute(f"PRAGMA table_info({table})")}
                if column not in names:
                    self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
                    self.db.execute(fill)
            self.db.executescript(_INDEXES)

    # --- model bookkeeping -------------------------------------------------------------------------
    def _check_identity(self) -> None:
        """The configured model, dimension and (for a writer) chunking must be the index's own."""
        built_with = self.meta("embed_model")
        if built_with is not None and self.embed_model:
            if built_with != self.embed_model or self.meta("dim") != str(self.dim):
                raise ModelMismatchError(
                    f"The index in {self.where} was built with the embedding model '{built_with}', "
                    f"but '{self.embed_model}' is configured. Mixing models gives meaningless results: "
                    f"set KABAR_EMBED_MODEL={built_with}, or re-index from scratch with "
                    "`kabar index --rebuild`."
                )
        recorded = self.recorded_chunking()
        if self.chunking is not None and recorded is not None and recorded != self.chunking:
            changed = [
                f"{name}={now} (the index has {then})"
                for name, now, then in (
                    ("KABAR_CHUNK_TOKENS", self.chunking.target_tokens, recorded.target_tokens),
                    ("KABAR_CHUNK_OVERLAP", self.chunking.overlap, recorded.overlap),
                )
                if now != then
            ]
            raise IndexIdentityError(
                f"The index in {self.where} was chunked differently: {', '.join(changed)}. Adding "
                "articles now would mix two chunkings: set the setting back, or re-index from scratch "
                "with `kabar index --rebuild`."
            )

    def recorded_chunking(self) -> ChunkParams | None:
        """The chunking the index was built with (None for an empty index or one that predates recording)."""
        tokens, overlap = self.meta("chunk_tokens"), self.meta("chunk_overlap")
        if tokens is None or overlap is None:
            return None
        return ChunkParams(int(tokens), int(overlap))

    def meta(self, key: str) -> str | None:
        """A value from the meta table."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Set a meta value (caller commits)."""
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def registry_version(self) -> int:
        """Counter bumped by every registry change: the keyword index records the one it was built from."""
        return int(self.meta("registry_version") or 0)

    # --- vectors -----------------------------------------------------------------------------------
    @property
    def vector_store(self) -> Any:
        """llama-index's ChromaVectorStore over our collection (opened lazily)."""
        if self._vector_store is None:
            from llama_index.vector_stores.chroma import ChromaVectorStore

            self._vector_store = ChromaVectorStore(chroma_collection=self.collection)
        return self._vector_store

    @property
    def collection(self) -> Any:
        """The Chroma collection of chunk vectors (opened lazily)."""
        if self._collection is None:
            if self.target is not None:
                client = self.target.client()
                # embedding_function=None: we embed ourselves; Chroma's default would download an ONNX model
                with guard(self.target):
                    collection = client.get_or_create_collection(
                        self.target.collection,
                        configuration={"hnsw": HNSW},  # type: ignore[arg-type]
                        embedding_function=None,
                    )
                self._client = client
                self._collection = Guarded(collection, self.target)
                return self._collection
            import chromadb

            self._check_vector_files()  # Chroma's native code would crash or answer wrongly on damaged files
            path = str(self.layout.chroma if not self.read_only else self._scratch_copy())
            try:
                with _SYSTEMS, self._vectors_guard():
                    self._client = chromadb.PersistentClient(path=path, settings=quiet_chroma())
                    self._collection = self._client.get_or_create_collection(
                        COLLECTION,
                        configuration={"hnsw": HNSW},  # type: ignore[arg-type]
                        embedding_function=None,
                    )
            except BaseException:
                self._client = self._collection = None
                with _SYSTEMS:
                    _forget_system(path)  # a half-started Chroma must not be reused by the next open here
                raise
        return self._collection

    def _scratch_copy(self) -> Path:
        """A private copy of a read-only index's vector store: Chroma writes even to read (its log, locks)."""
        import shutil
        import tempfile

        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="kabar-ro-"))
            log.info("the data dir %s is read-only: reading a copy of its vectors", self.data_dir)
            shutil.copytree(self.layout.chroma, self._scratch / "chroma")
        return self._scratch / "chroma"

    @contextmanager
    def _vectors_guard(self) -> Iterator[None]:
        """Chroma's own reports of a damaged store (its SQLite file, its HNSW files) as IndexCorrupt."""
        try:
            yield
        except IndexCorrupt:
            raise
        except BaseException as e:  # pyo3's PanicException derives from BaseException
            if isinstance(e, KeyboardInterrupt | SystemExit):
                raise
            writable = isinstance(e, Exception) and not self.read_only  # a read-only one is read from a copy
            problem = write_problem(self.data_dir, e) if writable else None
            if problem is not None:  # Chroma writes even to read (it applies its log): a full disk fails it
                raise IndexWriteError(problem) from None
            if not _chroma_damage(e):
                raise
            raise IndexCorrupt(f"The vector store {self.layout.chroma}", detail=str(e)) from None

    def _vector_files(self) -> dict[str, int]:
        """Chroma's segment files (everything but its SQLite database): relative path -> size."""
        root = self.layout.chroma
        if not root.is_dir():
            return {}
        return {
            str(p.relative_to(root)): p.stat().st_size
            for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith("chroma.sqlite3")
        }

    def _record_vector_files(self) -> None:
        """After a completed run: the sizes of Chroma's segment files, to catch truncation later."""
        with self.db:
            self.set_meta("vector_files", json.dumps(self._vector_files()))

    def _check_vector_files(self) -> None:
        """Segment files at least as large as the last completed run left them (Chroma's native code reads a
        truncated HNSW file without complaint, or crashes on it).

        Only sizes: a reader's Chroma may legitimately grow them later (it applies its log), and contents
        damaged in place are not caught here. Skipped while a run is unfinished (`dirty`).
        """
        recorded = self.meta("vector_files")
        if recorded is None or self.meta("dirty") is not None:
            return
        now = self._vector_files()
        for name, size in json.loads(recorded).items():
            if name not in now:
                problem = f"{name} is missing"
            elif now[name] < size:
                problem = f"{name} has {now[name]} bytes, {size} were written"
            else:
                continue
            raise IndexCorrupt(f"The vector store {self.layout.chroma}", detail=problem)

    def check_vectors(self) -> int:
        """Open the vector store and count its vectors: a damaged one raises IndexCorrupt here."""
        with self._vectors_guard():
            return int(self.collection.count())

    def max_batch_size(self) -> int:
        """The most records Chroma takes in one call."""
        _ = self.collection  # opening it opens the client
        with guard(self.target):
            return int(self._client.get_max_batch_size())

    def _attach(self) -> None:
        """Server mode: check the collection's identity, claim a new one, adopt its registry."""
        from index.collection import attach

        attach(self)

    def publish(self) -> None:
        """Server mode: bump the collection's generation (readers re-sync) and record its counts."""
        if self.target is not None:
            from index.collection import publish

            publish(self)

    def refresh(self) -> None:
        """Reopen the vector store, to see what another process wrote.

        Chroma shares one system per path within a process, and its in-memory HNSW index does not see
        other processes' additions. Closing our client releases the system; when no other client of this
        process uses it (a writer here would, and sees its own writes), the next use loads it afresh.
        """
        if self.target is not None:
            return  # a server sees every client's writes
        if self._client is not None:
            _close(self._client)
        self._client = self._collection = self._vector_store = None

    def dense_search(self, query_vec: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Top-k (chunk_id, cosine similarity), straight from the collection (no llama-index on reads)."""
        if self.target is not None:
            return [(chunk_of(i), s) for i, s in chroma.dense_search(self.collection, query_vec, k)]
        with self._vectors_guard():
            return [(chunk_of(i), s) for i, s in chroma.dense_search(self.collection, query_vec, k)]

    def keyword_source(self) -> Any:
        """The keyword index readers of this data dir search (the writer keeps it beside the registry)."""
        from index.keyword_sync import LocalKeywords

        return LocalKeywords(self.layout.keyword, on_change=self.refresh)

    def vectors(self, chunk_ids: Sequence[str]) -> dict[str, ChunkVectors]:
        """Stored vectors of some chunks and of their sentences (answers never re-embed what was indexed)."""
        rows = self._select("SELECT vector_id FROM chunks WHERE chunk_id IN ({})", list(chunk_ids))
        return {chunk_of(v): vec for v, vec in self._fetch_vectors([r[0] for r in rows]).items()}

    def reusable_vectors(self, text_hashes: Sequence[str]) -> dict[str, ChunkVectors]:
        """text hash -> the stored vectors of a chunk with that very embed text (reused, not re-embedded)."""
        rows = self._select(
            "SELECT text_hash, vector_id FROM chunks WHERE text_hash IN ({})", list(text_hashes)
        )
        by_vector = {vid: h for h, vid in rows}
        return {by_vector[v]: vec for v, vec in self._fetch_vectors(list(by_vector)).items()}

    def _fetch_vectors(self, vector_ids: list[str]) -> dict[str, ChunkVectors]:
        if not vector_ids:
            return {}
        with self._vectors_guard():
            got = self.collection.get(ids=vector_ids, include=["embeddings", "metadatas"])
        out = {}
        for i, v, meta in zip(got["ids"], got["embeddings"], got["metadatas"], strict=True):
            packed = (meta or {}).get(sentvec.KEY)
            sentences = sentvec.unpack(packed, len(v)) if isinstance(packed, str) else None
            out[i] = ChunkVectors(np.asarray(v, dtype=np.float32), sentences)
        return out

    def _select(self, sql: str, values: list[str]) -> list[tuple]:
        rows: list[tuple] = []
        for i in range(0, len(values), _SQL_BATCH):
            part = values[i : i + _SQL_BATCH]
            rows += self.db.execute(sql.format(",".join("?" * len(part))), part).fetchall()
        return rows

    # --- writing -----------------------------------------------------------------------------------
    def add_article(self, article: Article, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        """Store one article's chunks and vectors, replacing any earlier version of it."""
        self.write([(article, chunks, vectors)])

    def write(
        self,
        items: Sequence[tuple[Article, Sequence[Chunk], np.ndarray]],
        remove: Sequence[str] = (),
        origins: dict[str, str] | None = None,
        sentence_vectors: dict[str, np.ndarray] | None = None,
    ) -> int:
        """Store articles (replacing earlier versions) and remove others, as one registry transaction.

        `origins` maps article ids to the source file they were read from (default: `article.path`);
        `sentence_vectors` maps chunk ids to their sentences' vectors, kept on the chunk's record.
        Returns the number of chunks removed or replaced.
        """
        from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

        origins = origins or {}
        sentence_vectors = sentence_vectors or {}
        replaced = sorted({a.article_id for a, _, _ in items} | set(remove))
        old = {r[0] for r in self._select("SELECT vector_id FROM chunks WHERE article_id IN ({})", replaced)}
        rows, nodes, packed = [], [], []
        written = self.registry_version() + 1  # the registry version this write commits as
        for article, chunks, vectors in items:
            for i, c in enumerate(chunks):
                text_hash = content_hash(c.embed_text)
                vid = vector_id(c.chunk_id, text_hash)
                rows.append((c.chunk_id, article.article_id, c.chunk_no, c.text, text_hash, _spans(c), vid))
                extra: dict[str, Any] = {}
                if self.target is not None:  # what a reader (or a rebuilt registry) needs from the record
                    extra = _node_meta(article, c) | {
                        "chunk_id": c.chunk_id,
                        "spans": rows[-1][5],
                        "text_hash": text_hash,
                        "content_hash": article.content_hash,
                        "n_chunks": len(chunks),
                        "origin": origins.get(article.article_id, article.path) or "",
                        "written": written,
                    }
                if vid in old:  # the same chunk with the same text is stored already
                    if extra:  # its article changed around it: the record describes the new version
                        packed.append((vid, extra))
                    continue
                if c.chunk_id in sentence_vectors:
                    extra[sentvec.KEY] = sentvec.pack(sentence_vectors[c.chunk_id])
                if extra:
                    packed.append((vid, extra))
                nodes.append(
                    TextNode(
                        id_=vid,
                        text=c.text,
                        embedding=vectors[i].tolist(),
                        metadata=_node_meta(article, c),
                        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=article.article_id)},
                    )
                )
        if self.meta("dirty") is None:  # until a run completes, a crash may leave unregistered vectors
            with self.db:
                self.set_meta("dirty", "1")
                self.db.execute("DELETE FROM meta WHERE key = 'vector_files'")  # recorded again at close
        self._wrote_vectors = True
        if nodes:
            # delete first: a vector left by a crashed run under the same id must not be duplicated
            for i in range(0, len(nodes), _VECTOR_BATCH):  # Chroma rejects calls over its max batch size
                some = nodes[i : i + _VECTOR_BATCH]
                self.vector_store.delete_nodes(node_ids=[n.node_id for n in some])
                self.vector_store.add(some)
            # Attached after llama-index's add, which would also copy them into each node's JSON.
            for i in range(0, len(packed), _VECTOR_BATCH):
                ids, values = zip(*packed[i : i + _VECTOR_BATCH], strict=True)
                self.collection.update(ids=list(ids), metadatas=list(values))
        with self.db:
            if self.meta("embed_model") is None:
                self.set_meta("embed_model", self.embed_model)
                self.set_meta("dim", str(self.dim))
            if self.chunking is not None and self.recorded_chunking() is None:
                self.set_meta("chunk_tokens", str(self.chunking.target_tokens))
                self.set_meta("chunk_overlap", str(self.chunking.overlap))
            for i in range(0, len(replaced), _SQL_BATCH):
                part = replaced[i : i + _SQL_BATCH]
                marks = ",".join("?" * len(part))
                self.db.execute(f"DELETE FROM chunks WHERE article_id IN ({marks})", part)
                self.db.execute(f"DELETE FROM articles WHERE article_id IN ({marks})", part)
            self.db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self.db.executemany(
                "INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        a.article_id,
                        a.content_hash,
                        a.path,
                        a.title,
                        a.publisher,
                        a.source,
                        a.date,
                        a.url,
                        len(chunks),
                        _now(),
                        origins.get(a.article_id, a.path),
                        a.raw_hash,
                    )
                    for a, chunks, _ in items
                ],
            )
            self.set_meta("registry_version", str(self.registry_version() + 1))
        stale = sorted(old - {r[-1] for r in rows})
        if stale:
            for i in range(0, len(stale), _VECTOR_BATCH):
                self.vector_store.delete_nodes(node_ids=stale[i : i + _VECTOR_BATCH])
        return len(old)

    def remove_article(self, article_id: str) -> int:
        """Remove an article from vectors and registry; returns the chunks removed."""
        return self.write([], remove=[article_id])

    def move(self, moves: Sequence[tuple[str, str, str | None, str | None]]) -> None:
        """Record new (article_id, origin, path, raw hash) of articles whose file moved or was re-saved."""
        if moves:
            with self.db:
                self.db.executemany(
                    "UPDATE articles SET origin = ?, path = ?, raw_hash = ? WHERE article_id = ?",
                    [(origin, path, raw, aid) for aid, origin, path, raw in moves],
                )
            if self.target is not None:  # readers cite the path from the record
                where = {aid: (origin, path) for aid, origin, path, _ in moves}
                rows = self._select(
                    "SELECT vector_id, article_id FROM chunks WHERE article_id IN ({})", list(where)
                )
                for i in range(0, len(rows), _VECTOR_BATCH):
                    part = rows[i : i + _VECTOR_BATCH]
                    self.collection.update(
                        ids=[v for v, _ in part],
                        metadatas=[{"origin": where[a][0], "path": where[a][1] or ""} for _, a in part],
                    )

    def find(self, target: str) -> list[str]:
        """Ids of the articles named by an article id, a file path or `path#doc_id`."""
        candidates = {target, str(Path(target).expanduser().resolve())}
        marks = ",".join("?" * len(candidates))
        rows = self.db.execute(
            "SELECT article_id FROM articles "
            f"WHERE article_id = ? OR origin IN ({marks}) OR path IN ({marks})",
            [target, *candidates, *candidates],
        ).fetchall()
        return sorted({r[0] for r in rows})

    def mark_indexed(self, keyword_version: int, registry_version: int | None = None) -> None:
        """Record the finished run: its time and the keyword index version that matches it."""
        with self.db:
            self.set_meta("last_indexed", _now())
            self.set_meta("keyword_version", str(keyword_version))
            if registry_version is not None:
                self.set_meta("keyword_registry_version", str(registry_version))

    def mark_clean(self) -> None:
        """Record that every vector is registered (a run completed); `reconcile` is then not needed."""
        if self.meta("dirty") is not None:
            with self.db:
                self.db.execute("DELETE FROM meta WHERE key = 'dirty'")

    def keyword_stale(self) -> bool:
        """Whether the registry changed since the keyword index was built (e.g. a run was killed)."""
        return self.meta("keyword_registry_version") != str(self.registry_version())

    def reconcile(self) -> int:
        """Drop vectors that the registry does not know (left by a crash between the two writes)."""
        known = {r[0] for r in self.db.execute("SELECT vector_id FROM chunks")}
        stored = set(self.collection.get(include=[])["ids"])
        orphans = sorted(stored - known)
        if orphans:
            log.info("removing %d orphan vectors", len(orphans))
            with self.db:  # Chroma's files change: recorded again at close
                self.db.execute("DELETE FROM meta WHERE key = 'vector_files'")
            self._wrote_vectors = True
            for i in range(0, len(orphans), 5000):
                self.vector_store.delete_nodes(node_ids=orphans[i : i + 5000])
        return len(orphans)

    # --- reading -----------------------------------------------------------------------------------
    def article_hashes(self) -> dict[str, str]:
        """article_id -> content hash of what is indexed."""
        return dict(self.db.execute("SELECT article_id, content_hash FROM articles"))

    def indexed(self) -> dict[str, tuple[str, str | None, str | None, str | None]]:
        """article_id -> (content hash, origin file, path, raw hash) of what is indexed."""
        return {
            r[0]: (r[1], r[2], r[3], r[4])
            for r in self.db.execute("SELECT article_id, content_hash, origin, path, raw_hash FROM articles")
        }

    def chunk_counts(self, article_ids: Sequence[str]) -> dict[str, int]:
        """article_id -> number of chunks, for the indexed ones of `article_ids`."""
        rows = self._select(
            "SELECT article_id, n_chunks FROM articles WHERE article_id IN ({})", list(article_ids)
        )
        return {r[0]: int(r[1]) for r in rows}

    def chunk_ids(self, article_ids: Sequence[str]) -> list[str]:
        """Ids of the chunks of some articles."""
        return [
            r[0]
            for r in self._select("SELECT chunk_id FROM chunks WHERE article_id IN ({})", list(article_ids))
        ]

    def all_chunks(self) -> tuple[list[str], list[str]]:
        """(chunk ids, title + text) of every chunk, in a stable order."""
        rows = self.db.execute(
            "SELECT c.chunk_id, COALESCE(a.title, '') || char(10) || c.text FROM chunks c "
            "JOIN articles a USING (article_id) ORDER BY c.article_id, c.chunk_no"
        ).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def keyword_keys(self) -> set[str]:
        """Vector ids of every chunk: what the keyword index must hold (a changed text is a new id)."""
        return {r[0] for r in self.db.execute("SELECT vector_id FROM chunks")}

    def keyword_texts(self, vector_ids: Sequence[str]) -> dict[str, str]:
        """vector id -> title + text of those chunks: what the keyword index reads."""
        return dict(
            self._select(
                "SELECT c.vector_id, COALESCE(a.title, '') || char(10) || c.text FROM chunks c "
                "JOIN articles a USING (article_id) WHERE c.vector_id IN ({})",
                list(vector_ids),
            )
        )

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
            "data_dir": self.where,
            "last_indexed": self.meta("last_indexed"),
        }

    def require_nonempty(self) -> None:
        """Raise a clear error when nothing is indexed yet."""
        if self.db.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is None:
            raise IndexEmptyError(f"Nothing is indexed in {self.where} yet: run `kabar index` first.")

    def close(self) -> None:
        """Close the registry connection and release Chroma (recording its files after a completed run)."""
        released = False
        if self._client is not None:
            if self.target is None:
                released = _close(self._client)
            self._client = self._collection = self._vector_store = None
        if self._scratch is not None:
            import shutil

            shutil.rmtree(self._scratch, ignore_errors=True)
        if self._wrote_vectors and self.meta("dirty") is None:
            if released:  # the last client of this path in the process: Chroma has flushed its files
                self._record_vector_files()
            else:  # another client here may still flush them: nothing recorded, nothing checked
                with self.db:
                    self.db.execute("DELETE FROM meta WHERE key = 'vector_files'")
        self.db.close()


def _close(client: Any) -> bool:
    """Close a local Chroma client under the systems lock; whether that stopped the path's system."""
    with _SYSTEMS:
        client.close()
        return _released(client)


def _forget_system(path: str) -> None:
    """Drop Chroma's shared system for `path` from its per-process cache (after it failed to start)."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient._identifier_to_system.pop(path, None)
        SharedSystemClient._identifier_to_refcount.pop(path, None)
    except (ImportError, AttributeError):
        pass


def _released(client: Any) -> bool:
    """Whether closing `client` stopped Chroma's shared system for its path (no other client holds it)."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        return client._identifier not in SharedSystemClient._identifier_to_system
    except (ImportError, AttributeError):  # another Chroma version: assume not, and record nothing
        return False


def _chroma_damage(e: BaseException) -> bool:
    """Whether a Chroma failure reports a damaged store (its SQLite file or HNSW segment), by its text."""
    text = f"{type(e).__name__}: {e}".lower()
    return type(e).__name__ == "PanicException" or any(
        s in text
        for s in ("malformed", "not a database", "corrupt", "hnsw", "deserializ", "pickle", "compactor")
    )


def vector_id(chunk_id: str, text_hash: str) -> str:
    """Chroma id of a chunk's vector: the chunk id plus the hash of the text it embeds."""
    return f"{chunk_id}#{text_hash[:16]}"


def chunk_of(vector_id: str) -> str:
    """The chunk id in a vector id (an index built before vector ids carried hashes used bare chunk ids)."""
    return vector_id.split("#", 1)[0]


def _spans(chunk: Chunk) -> str:
    return json.dumps([[s.paragraph, s.index, s.start, s.end] for s in chunk.sentences])


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
