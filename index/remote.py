"""A reader of a server collection: everything an answer needs comes from the Chroma server.

Readers (`kabar ask`, `kabar chat`, each Discord bot process) need only the URL: passages, their article
metadata and sentence vectors are read from the records, and the keyword index is a local cache synced
from the collection by ids (`index.keyword_sync.SyncedKeywords`). Nothing here imports llama-index.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from index import chroma, sentvec
from index.chroma import ChromaTarget, Guarded, guard
from index.errors import IndexEmptyError, ModelMismatchError
from index.store import chunk_of
from index.types import ChunkVectors, Passage

log = logging.getLogger(__name__)

_FIELDS = ("title", "publisher", "source", "date", "url", "path")
_GET_BATCH = 1000  # ids per request
ID_PAGE = 50_000  # ids per page while listing a collection (one page is one consistent read)


class RemoteStore:
    """The read side of `Store` over a server collection (never creates or writes it)."""

    def __init__(
        self,
        data_dir: Path,
        target: ChromaTarget,
        embed_model: str = "",
        dim: int = 0,
        *,
        sync_seconds: float = 2.0,
    ):
        self.target = target
        self.data_dir = target.local_root(data_dir)  # this reader's keyword cache lives below it
        self.where = target.label
        self.embed_model = embed_model
        self.dim = dim
        self.sync_seconds = sync_seconds
        self._client: Any = None
        self._collection: Any = None
        self._recent: dict[str, ChunkVectors] = {}  # vectors of the last passages read (asked for next)
        self._count: int | None = None  # records at the last change check

    # --- the collection ----------------------------------------------------------------------------
    def open(self) -> Any:
        """The collection as the server has it now (None when no writer has created it yet)."""
        from chromadb.errors import NotFoundError

        if self._client is None:
            self._client = self.target.client()
        try:
            with guard(self.target):
                collection = self._client.get_collection(self.target.collection, embedding_function=None)
        except NotFoundError:
            self._collection = None
            return None
        self._check_identity(collection.metadata or {})
        self._collection = Guarded(collection, self.target)
        return self._collection

    @property
    def collection(self) -> Any:
        """The collection (opened on first use; reopened by `open`, e.g. at each change check)."""
        return self._collection if self._collection is not None else self.open()

    def _check_identity(self, meta: dict[str, Any]) -> None:
        built, dim = meta.get(chroma.MODEL), meta.get(chroma.DIM)
        if built is not None and self.embed_model and (built != self.embed_model or dim != self.dim):
            raise ModelMismatchError(
                f"The index at {self.where} was built with the embedding model '{built}', but "
                f"'{self.embed_model}' is configured. Mixing models gives meaningless results: set "
                f"KABAR_EMBED_MODEL={built}."
            )

    def change_token(self) -> tuple[str, int, int] | None:
        """(collection id, generation, count): when it moves, the keyword cache re-syncs."""
        collection = self.open()
        if collection is None:
            return None
        meta = collection.metadata or {}
        self._count = int(collection.count())
        return str(collection.id), int(meta.get(chroma.GENERATION, 0)), self._count

    def refresh(self) -> None:
        """Nothing to reopen: the server sees every writer's additions."""

    def close(self) -> None:
        """Forget the connection (the next use opens a new one)."""
        self._client = self._collection = None

    # --- reading -----------------------------------------------------------------------------------
    def dense_search(self, query_vec: np.ndarray, k: int) -> list[tuple[str, float]]:
        """Top-k (chunk_id, cosine similarity); a chunk found twice (a killed run's leftover) counts once."""
        collection = self.collection
        if collection is None:
            return []
        out: dict[str, float] = {}
        # the count of the last change check saves a call (a server gives fewer than k when it holds fewer)
        for vid, score in chroma.dense_search(collection, query_vec, k, self._count):
            out.setdefault(chunk_of(vid), score)
        return list(out.items())

    def _records(self, chunk_ids: Sequence[str]) -> dict[str, tuple[str, dict[str, Any], Any]]:
        """chunk id -> (text, metadata, embedding) of its newest complete record."""
        collection = self.collection
        ids = sorted(set(chunk_ids))
        out: dict[str, tuple[str, dict[str, Any], Any]] = {}
        if collection is None or not ids:
            return out
        for i in range(0, len(ids), _GET_BATCH):
            got = collection.get(
                where={"chunk_id": {"$in": ids[i : i + _GET_BATCH]}},
                include=["documents", "metadatas", "embeddings"],
            )
            for doc, meta, vec in zip(got["documents"], got["metadatas"], got["embeddings"], strict=True):
                meta = meta or {}
                if "spans" not in meta:  # added but not yet completed by its writer
                    continue
                cid = str(meta["chunk_id"])
                if cid not in out or int(meta.get("written", 0)) > int(out[cid][1].get("written", 0)):
                    out[cid] = (doc or "", meta, vec)
        return out

    def passages(self, scored: Sequence[tuple[str, float]]) -> list[Passage]:
        """Passages (text and article metadata) for (chunk_id, score) pairs, in the given order."""
        found = self._records([cid for cid, _ in scored])
        self._recent = {}
        out = []
        for cid, score in scored:
            if cid not in found:  # deleted since the keyword cache was synced
                continue
            text, meta, vec = found[cid]
            info: dict[str, Any] = {f: meta.get(f) or None for f in _FIELDS}
            info["chunk_no"] = int(meta["chunk_no"])
            info["sentences"] = json.loads(meta["spans"])
            out.append(
                Passage(chunk_id=cid, article_id=str(meta["article_id"]), text=text, score=score, meta=info)
            )
            self._recent[cid] = _vectors(vec, meta)
        return out

    def vectors(self, chunk_ids: Sequence[str]) -> dict[str, ChunkVectors]:
        """Stored vectors of some chunks and of their sentences (those of the last passages are at hand)."""
        out = {c: self._recent[c] for c in chunk_ids if c in self._recent}
        missing = [c for c in chunk_ids if c not in out]
        if missing:
            out |= {cid: _vectors(vec, meta) for cid, (_, meta, vec) in self._records(missing).items()}
        return out

    def all_ids(self) -> set[str]:
        """Every vector id in the collection."""
        collection = self.collection
        ids: set[str] = set()
        if collection is None:
            return ids
        offset = 0
        while True:
            page = collection.get(include=[], limit=ID_PAGE, offset=offset)["ids"]
            ids.update(page)
            if len(page) < ID_PAGE:
                return ids
            offset += len(page)

    def keyword_texts(self, vector_ids: Sequence[str]) -> dict[str, str]:
        """vector id -> title + text of those records (what the keyword index reads), as in embedded mode."""
        collection = self.collection
        out: dict[str, str] = {}
        if collection is None:
            return out
        ids = list(vector_ids)
        for i in range(0, len(ids), _GET_BATCH):
            got = collection.get(ids=ids[i : i + _GET_BATCH], include=["documents", "metadatas"])
            for vid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"], strict=True):
                if "spans" not in (meta or {}):  # its writer has not finished it: taken at the next sync
                    continue
                out[vid] = f"{(meta or {}).get('title') or ''}\n{doc or ''}"
        return out

    def keyword_source(self) -> Any:
        """This reader's keyword index: a local cache kept in step with the collection."""
        from index.keyword_sync import SyncedKeywords

        return SyncedKeywords(self, self.data_dir / "keyword", self.sync_seconds)

    def stats(self) -> dict[str, Any]:
        """Counts and provenance, as the last writer recorded them on the collection."""
        collection = self.open()
        meta = (collection.metadata or {}) if collection is not None else {}
        return {
            "articles": int(meta.get(chroma.ARTICLES, 0)),
            "chunks": int(collection.count()) if collection is not None else 0,
            "embed_model": meta.get(chroma.MODEL) or self.embed_model,
            "data_dir": self.where,
            "last_indexed": meta.get(chroma.LAST_INDEXED),
        }

    def require_nonempty(self) -> None:
        """Raise a clear error when nothing is indexed yet."""
        collection = self.open()
        if collection is None or collection.count() == 0:
            raise IndexEmptyError(
                f"Nothing is indexed in {self.where} yet: run `kabar index` with KABAR_CHROMA_URL set."
            )


def _vectors(vec: Any, meta: dict[str, Any]) -> ChunkVectors:
    v = np.asarray(vec, dtype=np.float32)
    packed = meta.get(sentvec.KEY)
    return ChunkVectors(v, sentvec.unpack(packed, len(v)) if isinstance(packed, str) else None)
