"""Which step of the answer path grows resident memory: each step alone, N questions after a warm-up.

    .venv/bin/python bench/memory_probe.py DIR [--questions 500] [--warmup 100]

DIR is an index (`kabar index --data-dir DIR ...`); the questions are load_bench's (the opening words of each
article). Steps: the query embedding, the dense search, BM25, fetching the top passages and their vectors,
and the whole `Engine.answer`; for the whole answer also the Python heap's growth (tracemalloc) and what
`malloc_trim` gives back. Each step runs in a fresh process, so one step's caches do not hide another's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("embed", "dense", "keyword", "passages", "answer")

PROBE = """
import ctypes, json, sys, tracemalloc
from pathlib import Path
sys.path[:0] = [{root!r}, {bench!r}, {tests!r}]
from load_bench import questions_from, rss_mb
from bot.app import build
from bot.settings import Settings
data, step, n, warm = Path({data!r}), {step!r}, {n}, {warm}
kabar = build(Settings.load(None, home=data), data)
s = kabar.engine.searcher
qs = questions_from(data, warm + n)
vecs = s.embedder.embed_queries(qs)

def run(i):
    if step == "embed":
        s.embedder.embed_queries([qs[i]])
    elif step == "dense":
        s.store.dense_search(vecs[i], 30)
    elif step == "keyword":
        s._keywords.index.search(qs[i], 30)
    elif step == "passages":
        ids = [c for c, _ in s.store.dense_search(vecs[i], 30)][:5]
        s.store.passages([(c, 1.0) for c in ids])
        s.store.vectors(ids)
    else:
        kabar.engine.answer(qs[i])

for i in range(warm):
    run(i)
out = {{"step": step, "rss_mb_before": round(rss_mb(), 1)}}
if step == "answer":
    tracemalloc.start()
for i in range(warm, warm + n):
    run(i)
out["rss_mb_after"] = round(rss_mb(), 1)
if step == "answer":
    out["python_heap_growth_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 2)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    out["rss_mb_after_malloc_trim"] = round(rss_mb(), 1)
print(json.dumps(out))
"""


def main() -> None:
    """One JSON line per step."""
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path)
    ap.add_argument("--questions", type=int, default=500)
    ap.add_argument("--warmup", type=int, default=100)
    args = ap.parse_args()
    for step in STEPS:
        code = PROBE.format(
            root=str(ROOT),
            bench=str(ROOT / "bench"),
            tests=str(ROOT / "tests"),
            data=str(args.data.resolve()),
            step=step,
            n=args.questions,
            warm=args.warmup,
        )
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        print(json.dumps(json.loads(out.strip().splitlines()[-1])), flush=True)


if __name__ == "__main__":
    main()
