"""Re-indexing speed goals of issue 5: no-op re-index, adding 100 articles, removing one, typo fixes.

    .venv/bin/python bench/reindex_bench.py [--limit N] [--corpus FILE.jsonl.gz ...]

Builds an index of the corpus (default: IndoSum dev + CLICK-ID, ~25k articles) in a temporary folder, then
times: a no-op re-index (goal <= 3 s), adding 100 held-out articles against embedding those articles'
chunks alone (goal <= 1.1x), removing one article (goal <= 1 s), and how many chunks one-letter typo fixes
re-embed. Prints and writes a JSON report (bench/results/reindex_bench.json).

`--keep DIR` builds in DIR and keeps it; a second run with the same DIR reuses that build (it first
settles: the held-out articles are dropped, articles an earlier run removed come back).

`--fast-base` embeds the base corpus with a hashing stand-in for the model (same name, dimension and token
counts, so chunks and store sizes are real; its vectors mean nothing): the build then takes minutes instead
of hours, and every timed step after it (no-op, add, typo fixes, remove) still uses the real model.
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bot.app import build, embedder_for  # noqa: E402
from bot.settings import Settings  # noqa: E402
from index.chunk import chunk_article  # noqa: E402
from index.ingest import IndexReport, index_paths, remove_paths  # noqa: E402
from index.layout import DataDir  # noqa: E402
from index.load import load_articles  # noqa: E402
from index.types import ChunkParams  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "corpus"
DEFAULT_CORPUS = [DATA / "indosum_dev.jsonl.gz", DATA / "clickid.jsonl.gz"]
QUESTIONS = ROOT.parent / "shared" / "data" / "qa" / "facqa_valid.jsonl"


def read_lines(paths: list[Path], limit: int | None) -> list[str]:
    """Raw JSON Lines records of the corpus files, in order (at most `limit`)."""
    lines: list[str] = []
    for p in paths:
        with (
            gzip.open(p, "rt", encoding="utf-8") if p.name.endswith(".gz") else open(p, encoding="utf-8") as f
        ):
            lines += [line.rstrip("\n") for line in f if line.strip()]
    return lines[:limit] if limit else lines


def typo(line: str, rng: random.Random) -> str | None:
    """The record with two adjacent letters of one mid-text word swapped (None if no such word)."""
    record = json.loads(line)
    text = record.get("text") or ""
    words = [m for m in re.finditer(r"[A-Za-z]{6,}", text) if len(text) // 4 < m.start() < 3 * len(text) // 4]
    if not words:
        return None
    m = rng.choice(words)
    w = m.group()
    i = rng.randrange(1, len(w) - 2)
    swapped = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
    if swapped == w:
        return None
    record["text"] = text[: m.start()] + swapped + text[m.end() :]
    return json.dumps(record, ensure_ascii=False)


class HashEmbedder:
    """Stands in for `real` when building the base quickly: its name, dimension and token counts."""

    def __init__(self, real) -> None:
        self.real = real
        self.name, self.dim, self.max_tokens = real.name, real.dim, real.max_tokens
        self.count_tokens = real.count_tokens

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            v = np.random.default_rng(abs(hash(t))).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out

    embed_queries = embed_passages  # server_bench searches with it too


def summary(r: IndexReport) -> dict:
    keys = ("added", "updated", "unchanged", "removed", "chunks_embedded", "chunks_reused")
    return {k: getattr(r, k) for k in keys} | {"seconds": round(r.seconds, 3)}


def retrieval_latency(searcher, questions: Path, n: int = 200) -> dict:
    """Warm retrieval (query embedding, Chroma, BM25, fusion) per question: p50/p95 overall and by stage."""
    qs = [json.loads(line)["question"] for line in questions.open(encoding="utf-8")][: n + 10]
    for q in qs[:10]:  # warm-up: model, HNSW and keyword segments in memory
        searcher.search(q)
    totals, stages = [], {}
    for q in qs[10:]:
        t = time.perf_counter()
        res = searcher.search(q)
        totals.append((time.perf_counter() - t) * 1e3)
        for stage, ms in res.timings_ms.items():
            stages.setdefault(stage, []).append(ms)
    out = {"n": len(totals), "p50": round(float(np.percentile(totals, 50)), 1)}
    out["p95"] = round(float(np.percentile(totals, 95)), 1)
    return out | {f"{s}_p50": round(float(np.percentile(v, 50)), 1) for s, v in stages.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, nargs="+", default=DEFAULT_CORPUS)
    ap.add_argument("--limit", type=int, default=None, help="Use only the first N records.")
    ap.add_argument("--add", type=int, default=100, help="Held-out articles added after the build.")
    ap.add_argument("--repeats", type=int, default=3, help="Interleaved add measurements (median).")
    ap.add_argument("--typos", type=int, default=10, help="One-letter typo fixes to measure.")
    ap.add_argument("--fast-base", action="store_true", help="Embed the base with a hashing stand-in.")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "reindex_bench.json")
    ap.add_argument(
        "--keep", type=Path, default=None, help="Build here and keep it (reused if built before)."
    )
    ap.add_argument("--questions", type=Path, default=QUESTIONS, help="Questions to time retrieval with.")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="kabar-reindex-"))
    reuse = DataDir(work / "data").exists()
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    (corpus / "new.jsonl").unlink(missing_ok=True)  # a reused build: back to the base corpus
    lines = read_lines(args.corpus, args.limit)
    base, held = lines[: len(lines) - args.add], lines[len(lines) - args.add :]
    base_file = corpus / "base.jsonl"
    base_file.write_text("\n".join(base) + "\n", encoding="utf-8")
    settings = Settings.load(None, home=work / "data")
    kabar = build(settings)
    store, emb = kabar.store, embedder_for(settings)  # indexing runs on the bulk embedder
    chunking = ChunkParams(settings.index.chunk_tokens, settings.index.chunk_overlap)
    out: dict = {"platform": platform.platform(), "records": len(lines), "held_out": len(held)}

    def run(**kw) -> IndexReport:
        return index_paths([corpus], store, emb, chunking=chunking, **kw)

    if reuse:  # settle: drop the held-out articles, restore what an earlier run removed
        out["build"] = summary(run(prune=True)) | {"reused": True}
    elif args.fast_base:
        out["build"] = summary(index_paths([corpus], store, HashEmbedder(emb), chunking=chunking))  # type: ignore[arg-type]
        out["build"]["fast_base"] = True
    else:
        out["build"] = summary(run())
    noops = [run() for _ in range(3)]
    out["noop"] = summary(noops[0]) | {"runs_seconds": [round(r.seconds, 3) for r in noops]}
    print(json.dumps({"build": out["build"], "noop": out["noop"]}), flush=True)

    new_file = corpus / "new.jsonl"
    new_file.write_text("\n".join(held) + "\n", encoding="utf-8")
    texts = [
        c.embed_text
        for a in load_articles([new_file])
        for c in chunk_article(a, emb.count_tokens, emb.max_tokens, chunking.target_tokens, chunking.overlap)
    ]
    emb.embed_passages(texts[:8])  # warm-up: the base was built without the real model
    # Interleaved repeats (alone, then the pipeline adding them), medians compared: a shared machine's
    # load drifts by more than the difference being measured.
    adds: list[IndexReport] = []
    alone: list[float] = []
    for i in range(args.repeats):
        if i:
            remove_paths([str(new_file)], store)  # their vectors go too: the next add embeds them again
        t = time.perf_counter()
        emb.embed_passages(texts)
        alone.append(time.perf_counter() - t)
        adds.append(run())
    added = adds[0]
    pipeline = statistics.median(r.seconds for r in adds)
    out["add"] = summary(added) | {
        "pipeline_seconds": [round(r.seconds, 3) for r in adds],
        "embed_in_pipeline_seconds": [round(r.embed_seconds, 3) for r in adds],
        "embed_alone_seconds": [round(a, 3) for a in alone],
        "ratio": round(pipeline / statistics.median(alone), 3),
    }
    print(json.dumps({"add": out["add"]}), flush=True)

    rng = random.Random(5)
    embedded: list[int] = []
    for _ in range(args.typos):
        i = rng.randrange(len(base))
        edited = typo(base[i], rng)
        if edited is None:
            continue
        lines_now = list(base)
        lines_now[i] = edited
        base_file.write_text("\n".join(lines_now) + "\n", encoding="utf-8")
        embedded.append(run().chunks_embedded)
        base_file.write_text("\n".join(base) + "\n", encoding="utf-8")
        run()  # back to the original (its chunk vectors are reused, not re-embedded)
    out["typo_fix_chunks_embedded"] = {
        "runs": embedded,
        "mean": round(statistics.mean(embedded), 2) if embedded else None,
        "max": max(embedded, default=None),
    }

    out["retrieval_ms"] = retrieval_latency(kabar.engine.searcher, args.questions)
    print(json.dumps({"retrieval_ms": out["retrieval_ms"]}), flush=True)

    victims = sorted(store.article_hashes())
    seconds = []
    for victim in (victims[len(victims) // 4], victims[len(victims) // 2], victims[3 * len(victims) // 4]):
        t = time.perf_counter()
        remove_paths([victim], store)
        seconds.append(round(time.perf_counter() - t, 3))
    out["remove_one_seconds"] = statistics.median(seconds)
    out["remove_one_runs"] = seconds
    out["index"] = store.stats()
    kabar.close()
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
