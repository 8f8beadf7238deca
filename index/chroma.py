"""Where the vectors live: Chroma embedded in the data dir, or a Chroma server (`KABAR_CHROMA_URL`).

A server is reached with `chromadb.HttpClient`; every call on its collection goes through `Guarded`, so a
server that is down, restarting or refusing the token surfaces as one `IndexUnavailable` naming the URL
(never a traceback), and the next call simply tries again.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from index.errors import IndexUnavailable, KabarError

COLLECTION = "kabar_chunks"
# Exact-enough HNSW: Chroma's defaults (ef_search 100, M 16) lose ~2 points of recall against brute force
# even at a few thousand chunks; a wider search costs well under a millisecond at our sizes.
HNSW: dict[str, Any] = {"space": "cosine", "ef_construction": 200, "max_neighbors": 32, "ef_search": 256}

# Collection metadata a writer records: what built the index (readers check it) and how far it has got.
MODEL, DIM, CHUNK_TOKENS, CHUNK_OVERLAP = (
    "kabar_embed_model",
    "kabar_dim",
    "kabar_chunk_tokens",
    "kabar_overlap",
)
GENERATION = "kabar_generation"  # bumped at the end of every run that changed something: readers re-sync
ARTICLES, CHUNKS, LAST_INDEXED = "kabar_articles", "kabar_chunks", "kabar_last_indexed"


def quiet_chroma() -> Any:
    """Chroma client settings with telemetry off (it would phone home otherwise)."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    from chromadb.config import Settings as ChromaSettings

    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


@dataclass(frozen=True)
class ChromaTarget:
    """A collection on a Chroma server: URL, request headers (a proxy's token), tenant, database, name."""

    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)  # may hold a token: never shown
    tenant: str = "default_tenant"
    database: str = "default_database"
    collection: str = COLLECTION
    timeout: float = 30.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
            # chromadb's client puts its API at the server's root: a proxy must serve it there too
            raise KabarError(f"KABAR_CHROMA_URL must look like http(s)://host:port, not {self.url!r}")

    @property
    def label(self) -> str:
        """What messages name: the URL and the collection (no headers)."""
        return f"{self.url.rstrip('/')} (collection {self.collection})"

    def key(self) -> str:
        """A short stable name for this collection: the folder of its local registry and caches."""
        raw = "|".join([self.url.rstrip("/"), self.tenant, self.database, self.collection])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def local_root(self, data_dir: Path) -> Path:
        """Where this machine keeps what is its own for this collection (registry, keyword cache)."""
        return data_dir / "server" / self.key()

    def client(self) -> Any:
        """An HttpClient for the server (raises IndexUnavailable when it cannot be reached)."""
        import chromadb
        from chromadb.errors import NotFoundError

        parts = urlsplit(self.url)
        https = parts.scheme == "https"
        try:
            with guard(self):
                client = chromadb.HttpClient(
                    host=parts.hostname or "localhost",
                    port=parts.port or (443 if https else 80),
                    ssl=https,
                    headers=dict(self.headers),
                    settings=quiet_chroma(),
                    tenant=self.tenant,
                    database=self.database,
                )
        except NotFoundError as e:  # the server is there, the tenant or database is not
            where = f"KABAR_CHROMA_TENANT={self.tenant}, KABAR_CHROMA_DATABASE={self.database}"
            raise KabarError(f"{self.label}: {e} ({where})") from None
        session = getattr(getattr(client, "_server", None), "_session", None)
        if session is not None:  # chromadb waits forever by default: a hung server would hang every reader
            import httpx

            session.timeout = httpx.Timeout(self.timeout)
        return client


@contextmanager
def guard(target: ChromaTarget | None) -> Iterator[None]:
    """Turn a lost or refused connection to the server into IndexUnavailable; embedded mode passes through."""
    if target is None:
        yield
        return
    import httpx

    try:
        yield
    except httpx.HTTPStatusError as e:
        status = e.response.status_code
        hint = " (check KABAR_CHROMA_TOKEN / KABAR_CHROMA_HEADERS)" if status in (401, 403) else ""
        raise IndexUnavailable(f"the Chroma server at {target.label} answered HTTP {status}{hint}") from None
    except (httpx.HTTPError, ConnectionError) as e:
        raise IndexUnavailable(f"the Chroma server at {target.label} is unreachable: {_reason(e)}") from None
    except ValueError as e:  # what HttpClient() makes of the first failure
        if "could not connect" in str(e).lower():  # no server, or no such tenant or database on it
            raise IndexUnavailable(
                f"the Chroma server at {target.label} is unreachable: {_reason(e)}"
            ) from None
        if "<html" not in str(e).lower():
            raise
        raise _answered(target, str(e)) from None
    except Exception as e:
        if type(e) is not Exception:  # a ChromaError (bad argument, not found, ...) is not an outage
            raise
        raise _answered(target, str(e)) from None  # a bare Exception(body): an error page not Chroma's


def _answered(target: ChromaTarget, page: str) -> IndexUnavailable:
    """The outage of an error page from a proxy (nginx's 401, 502) as one line."""
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    text = (title.group(1) if title else page).strip()
    status = text.splitlines()[0][:120] if text else "an error"
    hint = " (check KABAR_CHROMA_TOKEN / KABAR_CHROMA_HEADERS)" if status[:3] in ("401", "403") else ""
    return IndexUnavailable(f"the Chroma server at {target.label} answered {status}{hint}")


def _reason(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:200]


class Guarded:
    """A collection whose every call raises IndexUnavailable when the server is unreachable."""

    def __init__(self, collection: Any, target: ChromaTarget):
        self._inner = collection
        self._target = target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            with guard(self._target):
                return value(*args, **kwargs)

        return call


def dense_search(
    collection: Any, query_vec: np.ndarray, k: int, count: int | None = None
) -> list[tuple[str, float]]:
    """Top-k (vector id, cosine similarity) of a collection (`count`: its size if known, saving a call)."""
    count = collection.count() if count is None else count
    if count == 0 or k <= 0:
        return []
    res = collection.query(
        query_embeddings=[query_vec.tolist()], n_results=min(k, count), include=["distances"]
    )
    ids, distances = res["ids"][0], res["distances"][0]
    return [(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]  # 1 - cosine distance
