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

from bot.app import build, embedder_for  # noqa: E402
from bot.settings import Settings  # noqa: E402
from index.chunk import chunk_article  # noqa: E402
from index.ingest import index_paths  # noqa: E402
from index.load import load_articles  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def latencies(kabar, data_dir: Path, n_questions: int) -> dict:
    """Warm answer latency (first pass and repeat), cold `kabar ask`, and peak memory."""
    questions = [r["question"] for r in read_jsonl(DATA / "qa" / "facqa_valid.jsonl")][:n_questions]
    questions += ["What does Cheong Seong-chang expect Kim Jong Un to gain?", "Who won the 2022 World Cup?"]
    first = [kabar.engine.answer(q).timings_ms["total"] for q in questions]
    again = [kabar.engine.answer(q).timings_ms["total"] for q in questions]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cold: list[float] = []
    env = {**os.environ, "KABAR_HOME": str(data_dir)}
    for _ in range(3):
        t = time.perf_counter()
        cmd = [str(ROOT / ".venv" / "bin" / "kabar"), "ask", questions[-2], "--json"]
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        cold.append(time.perf_counter() - t)
    ask_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024

    def pct(values: list[float]) -> dict:
        return {"p50": round(percentile(values, 0.5), 1), "p95": round(percentile(values, 0.95), 1)}

    return {
        "questions": len(questions),
        "warm_answer_ms_first_pass": pct(first),
        "warm_answer_ms_repeat": pct(again),
        "cold_kabar_ask_s": {
            "median": round(statistics.median(cold), 2),
            "runs": [round(c, 2) for c in cold],
        },
        "peak_rss_mb": {"process": round(rss), "cold_kabar_ask": round(ask_rss)},
    }


def throughput(settings: Settings, corpus: Path, articles: int, slices: int, work: Path) -> dict:
    """The pipeline on each engine (a store of its own, so no vector is reused across them) and raw encode
    on the same chunks, interleaved slice by slice so that other load on the machine hits all alike."""
    from index.embed import load_embedder
    from index.types import ChunkParams

    records = [r for _, r in zip(range(articles), read_jsonl(corpus), strict=False)]
    raw = load_embedder(None, settings.index.cache_dir, engine="torch")  # sentence-transformers, as today
    runs = {}
    for engine in ("onnx", "onnx-int8", "torch"):
        s = Settings.load(None, home=work / f"data-{engine}", embed_engine=engine)
        runs[engine] = (build(s), embedder_for(s))
    pipe_s = dict.fromkeys(runs, 0.0)
    raw_s = 0.0
    chunks = tokens = 0
    for i in range(slices):
        part = work / f"slice{i}.jsonl"
        part.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records[i::slices]), encoding="utf-8"
        )
        for engine, (kabar, emb) in runs.items():
            t = time.perf_counter()
            report = index_paths(
                [part],
                kabar.store,
                emb,
                chunking=ChunkParams(settings.index.chunk_tokens, settings.index.chunk_overlap),
            )
            pipe_s[engine] += time.perf_counter() - t
        texts = [
            c.embed_text
            for a in load_articles([part])
            for c in chunk_article(
                a, raw.count_tokens, raw.max_tokens, settings.index.chunk_tokens, settings.index.chunk_overlap
            )
        ]
        assert len(texts) == report.chunks_embedded + report.chunks_reused, (len(texts), report)
        t = time.perf_counter()
        raw.model.encode([raw.passage_prefix + x for x in texts], batch_size=32, normalize_embeddings=True)
        raw_s += time.perf_counter() - t
        chunks += len(texts)
        tokens += sum(raw.count_tokens(x) for x in texts)
        times = " ".join(f"{e} {v:.0f}s" for e, v in pipe_s.items())
        print(f"slice {i + 1}/{slices}: pipeline {times}, raw {raw_s:.0f}s", file=sys.stderr)
    out: dict = {"articles": len(records), "chunks": chunks, "tokens": tokens}
    for engine, secs in pipe_s.items():
        out[f"pipeline_{engine}_s"] = round(secs, 1)
        out[f"pipeline_{engine}_tokens_per_s"] = round(tokens / secs)
        out[f"pipeline_{engine}_vs_raw"] = round(raw_s / secs, 3)
    out |= {
        "raw_encode_s": round(raw_s, 1),
        "raw_tokens_per_s": round(tokens / raw_s),
        "onnx_vs_torch_pipeline": round(pipe_s["torch"] / pipe_s["onnx"], 3),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=DATA / "corpus" / "indosum_dev.jsonl.gz")
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "index_bench.json")
    ap.add_argument(
        "--latency-only",
        type=Path,
        default=None,
        metavar="DATA_DIR",
        help="skip indexing and raw encode; time answers over an index built earlier",
    )
    ap.add_argument(
        "--throughput-only",
        type=int,
        default=None,
        metavar="ARTICLES",
        help="only compare pipeline and raw encode on the first ARTICLES articles, interleaved",
    )
    ap.add_argument("--slices", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kabar-bench-"))
    data_dir = args.latency_only or work / "data"
    settings = Settings.load(None, home=data_dir)
    corpus = [args.corpus, ROOT / "seeds"]

    if args.throughput_only:
        result = throughput(settings, args.corpus, args.throughput_only, args.slices, work)
        print(json.dumps(result, indent=2))
        return
    t = time.perf_counter()
    kabar = build(settings)
    load_s = time.perf_counter() - t
    if args.latency_only:
        result = {"model_load_s": round(load_s, 2), **latencies(kabar, data_dir, args.questions)}
        print(json.dumps(result, indent=2))
        return

    emb = embedder_for(settings)  # the bulk embedder `kabar index` runs
    t = time.perf_counter()
    report = index_paths(corpus, kabar.store, emb)
    index_s = time.perf_counter() - t

    # the same chunk texts, for the raw library (chunking again is not timed)
    texts = [
        c.embed_text
        for a in load_articles(corpus)
        for c in chunk_article(
            a, emb.count_tokens, emb.max_tokens, settings.index.chunk_tokens, settings.index.chunk_overlap
        )
    ]
    tokens = sum(emb.count_tokens(x) for x in texts)
    assert len(texts) == report.chunks_embedded + report.chunks_reused, (len(texts), report)
    from index.embed import load_embedder

    raw = load_embedder(None, settings.index.cache_dir, engine="torch")  # sentence-transformers
    t = time.perf_counter()
    raw.model.encode([raw.passage_prefix + x for x in texts], batch_size=32, normalize_embeddings=True)
    raw_s = time.perf_counter() - t

    timed = latencies(kabar, data_dir, args.questions)
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
        **timed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
