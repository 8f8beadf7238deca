"""Server mode, the writer's side: the collection's identity and generation, and the registry rebuilt from
the collection (a fresh machine, or a lost registry).

Every server record carries its article's metadata, content hash, chunk id, sentence spans and text hash,
so the registry can be recovered from the server alone. Raw file hashes are not kept on the server: the
next run parses every file once and re-points what is unchanged (nothing is re-embedded).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from index import chroma
from index.errors import ModelMismatchError

if TYPE_CHECKING:
    from index.store import Store

log = logging.getLogger(__name__)

PAGE = 1000  # records per request while reading a whole collection
_FIELDS = ("title", "publisher", "source", "date", "url", "path")


def collection_meta(store: Store) -> dict[str, Any]:
    """The collection's metadata as the server has it now (not as it was when it was opened)."""
    assert store.target is not None
    _ = store.collection  # opening it opens the client
    with chroma.guard(store.target):
        fresh = store._client.get_collection(store.target.collection, embedding_function=None)
    return dict(fresh.metadata or {})


def attach(store: Store) -> None:
    """Check the collection's identity against the store's settings, claim a new collection, and rebuild the
    registry from the collection when it does not describe it (a fresh machine, a recreated collection)."""
    meta = collection_meta(store)
    built, dim = meta.get(chroma.MODEL), meta.get(chroma.DIM)
    if built is not None and store.embed_model and (built != store.embed_model or dim != store.dim):
        raise ModelMismatchError(
            f"The index at {store.where} was built with the embedding model '{built}', but "
            f"'{store.embed_model}' is configured: set KABAR_EMBED_MODEL={built}, or re-index from "
            "scratch with `kabar index --rebuild` (it deletes the collection)."
        )
    claim: dict[str, Any] = {}
    if built is None and store.embed_model:  # a new collection: this writer's settings become its identity
        claim = {chroma.MODEL: store.embed_model, chroma.DIM: store.dim}
    if store.chunking is not None and meta.get(chroma.CHUNK_TOKENS) is None:
        claim |= {
            chroma.CHUNK_TOKENS: store.chunking.target_tokens,
            chroma.CHUNK_OVERLAP: store.chunking.overlap,
        }
    if claim:
        store.collection.modify(metadata={**meta, **claim})
    if store.meta("collection_id") != str(store.collection.id):
        if store.db.execute("SELECT 1 FROM chunks LIMIT 1").fetchone():
            log.warning(
                "the registry in %s describes another collection: rebuilt from %s",
                store.data_dir,
                store.where,
            )
        rebuild_registry(store)


def publish(store: Store) -> None:
    """Bump the collection's generation (readers re-sync) and record its counts and last index time."""
    info = store.stats()
    meta = collection_meta(store)
    meta |= {
        chroma.GENERATION: int(meta.get(chroma.GENERATION, 0)) + 1,
        chroma.ARTICLES: info["articles"],
        chroma.CHUNKS: info["chunks"],
        chroma.LAST_INDEXED: _now(),
    }
    store.collection.modify(metadata=meta)


def records(collection: Any, include: list[str], page: int = PAGE) -> Any:
    """Every record of a collection, page by page: (ids, documents, metadatas) per page."""
    offset = 0
    while True:
        got = collection.get(include=include, limit=page, offset=offset)
        ids = got["ids"]
        if not ids:
            return
        yield ids, got.get("documents") or [None] * len(ids), got.get("metadatas") or [None] * len(ids)
        offset += len(ids)


def rebuild_registry(store: Store) -> int:
    """Replace the registry with what the server collection holds; the number of articles recovered.

    A killed run can leave two versions of an article, or of a chunk, on the server: the newest write of
    each article wins and the rest are left as orphans for the next run's `reconcile` (the registry is
    marked dirty).
    """
    meta = collection_meta(store)
    versions: dict[str, dict[str, list[tuple]]] = {}  # article id -> content hash -> its chunk rows
    newest: dict[tuple[str, str], int] = {}
    info: dict[tuple[str, str], dict[str, Any]] = {}
    expected: dict[tuple[str, str], int] = {}  # chunks a version has
    dropped = 0
    for ids, docs, metas in records(store.collection, ["documents", "metadatas"]):
        for vid, doc, m in zip(ids, docs, metas, strict=True):
            m = m or {}
            if "spans" not in m or "article_id" not in m:  # written but not finished (killed between calls)
                dropped += 1
                continue
            key = (str(m["article_id"]), str(m["content_hash"]))
            row = (m["chunk_id"], key[0], int(m["chunk_no"]), doc or "", m["text_hash"], m["spans"], vid)
            versions.setdefault(key[0], {}).setdefault(key[1], []).append(row)
            newest[key] = max(newest.get(key, 0), int(m.get("written", 0)))
            expected[key] = int(m.get("n_chunks", -1))
            info.setdefault(key, {f: m.get(f) or None for f in _FIELDS} | {"origin": m.get("origin") or None})
    chunk_rows, article_rows = [], []
    for article_id, by_hash in versions.items():
        complete = {h: rows for h, rows in by_hash.items() if _complete(rows, expected[(article_id, h)])}
        dropped += sum(len(r) for h, r in by_hash.items() if h not in complete)
        if not complete:  # no whole version on the server: the next run indexes the article again
            continue
        best = max(complete, key=lambda h: newest[(article_id, h)])
        rows = complete[best]
        dropped += sum(len(r) for r in complete.values()) - len(rows)
        chunk_rows += sorted(rows, key=lambda r: r[2])
        a = info[(article_id, best)]
        article_rows.append(
            (
                article_id,
                best,
                a["path"],
                a["title"],
                a["publisher"],
                a["source"],
                a["date"],
                a["url"],
                len(rows),
                _now(),
                a["origin"],
                None,
            )
        )
    with store.db:
        store.db.execute("DELETE FROM chunks")
        store.db.execute("DELETE FROM articles")
        store.db.execute("DELETE FROM meta")
        store.db.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?)", chunk_rows)
        store.db.executemany("INSERT INTO articles VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", article_rows)
        for meta_key, name in (
            (chroma.MODEL, "embed_model"),
            (chroma.DIM, "dim"),
            (chroma.CHUNK_TOKENS, "chunk_tokens"),
            (chroma.CHUNK_OVERLAP, "chunk_overlap"),
        ):
            if meta.get(meta_key) is not None:
                store.set_meta(name, str(meta[meta_key]))
        generation = int(meta.get(chroma.GENERATION, 0))
        store.set_meta("registry_version", str(generation))
        store.set_meta("keyword_registry_version", str(generation))  # readers keep their own keywords
        store.set_meta("collection_id", str(store.collection.id))
        if dropped:
            store.set_meta("dirty", "1")
    log.info(
        "registry rebuilt from %s: %d article(s), %d chunk(s)",
        store.where,
        len(article_rows),
        len(chunk_rows),
    )
    return len(article_rows)


def _complete(rows: list[tuple], n_chunks: int) -> bool:
    """Whether these rows are every chunk of one article version, each once (0 .. n-1)."""
    return sorted(r[2] for r in rows) == list(range(n_chunks))


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")
