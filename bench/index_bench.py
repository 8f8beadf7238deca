"""Indexing and answering speed on real data, against raw SentenceTransformer.encode in the same run.

    .venv/bin/python bench/index_bench.py [--corpus ../shared/data/corpus/indosum_dev.jsonl.gz]

Prints a JSON report (also written to bench/results/index_bench.json): pipeline chunks/s and tokens/s
next to raw encode of the very same chunk texts, warm `answer` latency p50/p95, cold `kabar ask` time,
and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qa_data import DATA, read_jsonl  # noqa: E402

from bot.app import build  # noqa: E402
from bot.settings import Settings  # noqa: E402
from index.chunk import chunk_article  # noqa: E402
from index.ingest import index_paths  # noqa: E402
from index.load import load_articles  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=DATA / "corpus" / "indosum_dev.jsonl.gz")
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "index_bench.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kabar-bench-"))
    settings = Settings(home=work / "data")
    corpus = [args.corpus, ROOT / "seeds"]

    t = time.perf_counter()
    kabar = build(settings)
    load_s = time.perf_counter() - t

    t = time.perf_counter()
    report = index_paths(corpus, kabar.store, kabar.embedder)
    index_s = time.perf_counter() - t

    # the same chunk texts, for the raw library (chunking again is not timed)
    emb = kabar.embedder
    texts = [
        c.embed_text
        for a in load_articles(corpus)
        for c in chunk_article(
            a, emb.count_tokens, emb.max_tokens, settings.chunk_tokens, settings.chunk_overlap
        )
    ]
    tokens = sum(emb.count_tokens(x) for x in texts)
    assert len(texts) == report.chunks_embedded, (len(texts), report.chunks_embedded)
    t = time.perf_counter()
    emb.model.encode([emb.passage_prefix + x for x in texts], batch_size=32, normalize_embeddings=True)
    raw_s = time.perf_counter() - t

    questions = [r["question"] for r in read_jsonl(DATA / "qa" / "facqa_valid.jsonl")][: args.questions]
    questions += ["What does Cheong Seong-chang expect Kim Jong Un to gain?", "Who won the 2022 World Cup?"]
    lat: list[float] = []
    for q in questions:
        a = kabar.engine.answer(q)
        lat.append(a.timings_ms["total"])
    warm_again = [kabar.engine.answer(q).timings_ms["total"] for q in questions]
    index_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    cold: list[float] = []
    env = {**os.environ, "KABAR_HOME": str(work / "data")}
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "kabar"), "ask", questions[-2], "--json"],
            env=env,
            check=True,
            capture_output=True,
        )
        cold.append(time.perf_counter() - t)
    ask_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "corpus": [str(p) for p in corpus],
        "articles": report.added,
        "chunks": report.chunks_embedded,
        "tokens": tokens,
        "model_load_s": round(load_s, 2),
        "index_s": round(index_s, 1),
        "index_embed_s": round(report.embed_seconds, 1),
        "pipeline_chunks_per_s": round(len(texts) / index_s, 1),
        "pipeline_tokens_per_s": round(tokens / index_s),
        "raw_encode_s": round(raw_s, 1),
        "raw_chunks_per_s": round(len(texts) / raw_s, 1),
        "raw_tokens_per_s": round(tokens / raw_s),
        "pipeline_vs_raw": round(raw_s / index_s, 3),
        "warm_answer_ms_first_pass": {
            "p50": round(percentile(lat, 0.5), 1),
            "p95": round(percentile(lat, 0.95), 1),
        },
        "warm_answer_ms_repeat": {
            "p50": round(percentile(warm_again, 0.5), 1),
            "p95": round(percentile(warm_again, 0.95), 1),
        },
        "questions": len(questions),
        "cold_kabar_ask_s": {
            "median": round(statistics.median(cold), 2),
            "runs": [round(c, 2) for c in cold],
        },
        "peak_rss_mb": {"index_and_answer": round(index_rss), "cold_kabar_ask": round(ask_rss)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
