"""Server mode against embedded (issue 13): warm retrieval, a new reader's first sync, a reader's catch-up,
no-op re-index and removing an article, on the same corpus in both modes.

    .venv/bin/python bench/server_bench.py [--limit N] [--add N] [--corpus FILE.jsonl.gz ...]

Starts its own `chroma run` on a free loopback port (or uses `--url`), builds the corpus twice (embedded in
a temporary data dir, and into a server collection), then times the steps above. The base is embedded
with a hashing stand-in for the model (its name, dimension and token counts, so chunks, records and store
sizes are real; its vectors mean nothing), as `reindex_bench.py --fast-base` does: what is timed here is
the store, not the model. Writes bench/results/server_bench.json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
from chroma_server import ChromaServer  # noqa: E402
from reindex_bench import HashEmbedder  # noqa: E402  (the same stand-in builds both benches' bases)

from index.chroma import ChromaTarget  # noqa: E402
from index.embed import load_embedder  # noqa: E402
from index.ingest import index_paths, remove_paths  # noqa: E402
from index.remote import RemoteStore  # noqa: E402
from index.search import Searcher  # noqa: E402
from index.store import Store  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
QUESTIONS = DATA / "qa" / "facqa_valid.jsonl"


def lines_of(paths: list[Path], limit: int) -> list[str]:
    out: list[str] = []
    for p in paths:
        with gzip.open(p, "rt", encoding="utf-8") if p.suffix == ".gz" else open(p, encoding="utf-8") as f:
            out += [line.rstrip("\n") for line in f if line.strip()]
    return out[:limit]


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t, result


def latency(searcher: Searcher, queries: list[str], vectors: np.ndarray) -> dict:
    """Warm retrieval per question (the query vector given: what differs between the modes is the store)."""
    for q, v in zip(queries[:10], vectors[:10], strict=True):
        searcher.search(q, 5, query_vector=v)
    ms = []
    for q, v in zip(queries[10:], vectors[10:], strict=True):
        t = time.perf_counter()
        searcher.search(q, 5, query_vector=v)
        ms.append((time.perf_counter() - t) * 1e3)
    p50, p95 = (round(float(np.percentile(ms, q)), 1) for q in (50, 95))
    return {"n": len(ms), "p50_ms": p50, "p95_ms": p95}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, nargs="+", default=[DATA / "corpus" / "indosum_dev.jsonl.gz"])
    ap.add_argument("--limit", type=int, default=1000, help="Base articles (plus --add held out).")
    ap.add_argument("--add", type=int, default=100, help="Articles the writer adds after the build.")
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--url", default=None, help="Use this Chroma server instead of starting one.")
    ap.add_argument("--cache-dir", type=Path, default=Path("/work/cache/kabar"))
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "server_bench.json")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="kabar-server-bench-"))
    server = None
    if args.url is None:
        server = ChromaServer(tmp / "chroma").start()
    url = args.url or server.url  # type: ignore[union-attr]
    target = ChromaTarget(url, collection=f"bench-{int(time.time())}")
    embedder = HashEmbedder(load_embedder(None, args.cache_dir))
    records = lines_of(args.corpus, args.limit + args.add)
    base, extra = records[: args.limit], records[args.limit :]
    feed = tmp / "corpus" / "feed.jsonl"
    feed.parent.mkdir()
    feed.write_text("\n".join(base) + "\n", encoding="utf-8")
    out: dict = {"machine": {"python": platform.python_version(), "cpus": len(os.sched_getaffinity(0))}}

    stores = {"embedded": Store(tmp / "embedded", embedder.name, embedder.dim)}
    stores["server"] = Store(tmp / "writer", embedder.name, embedder.dim, target=target)
    for mode, store in stores.items():
        seconds, report = timed(index_paths, [feed.parent], store, embedder, batch_chunks=256)
        out.setdefault("build", {})[mode] = {"seconds": round(seconds, 1), "articles": report.added}
    out["chunks"] = stores["embedded"].stats()["chunks"]

    reader_home = tmp / "reader"
    first = RemoteStore(reader_home, target, embedder.name, embedder.dim, sync_seconds=0).keyword_source()
    seconds, _ = timed(first.refresh)
    out["new_reader_first_sync_s"] = round(seconds, 2)

    qs = [json.loads(line)["question"] for line in QUESTIONS.open(encoding="utf-8")][: args.questions + 10]
    qv = embedder.embed_queries(qs)
    readers = {
        "embedded": Store(tmp / "embedded"),
        "server": RemoteStore(reader_home, target, embedder.name, embedder.dim, sync_seconds=2),
    }
    out["warm_retrieval"] = {m: latency(Searcher(r, embedder), qs, qv) for m, r in readers.items()}

    for mode, store in stores.items():
        seconds, _ = timed(index_paths, [feed.parent], store, embedder)
        out.setdefault("noop_reindex_s", {})[mode] = round(seconds, 3)

    with feed.open("a", encoding="utf-8") as f:
        f.write("\n".join(extra) + "\n")
    reader = RemoteStore(reader_home, target, embedder.name, embedder.dim, sync_seconds=0)
    catching_up = reader.keyword_source()
    catching_up.refresh()
    for mode, store in stores.items():
        seconds, report = timed(index_paths, [feed.parent], store, embedder)
        out.setdefault("add", {})[mode] = {"seconds": round(seconds, 2), "articles": report.added}
    seconds, _ = timed(catching_up.refresh)
    sync = catching_up.last_sync
    out["reader_catch_up"] = {"refresh_s": round(seconds, 3), "chunks_added": sync.get("added", 0)}

    victim = sorted(stores["embedded"].article_hashes())[0]
    for mode, store in stores.items():
        seconds, _ = timed(remove_paths, [victim], store)
        out.setdefault("remove_one_s", {})[mode] = round(seconds, 3)

    print(json.dumps(out, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    if server is not None:
        server.stop()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
