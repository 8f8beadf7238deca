"""The light answer path against the old one and llama-index, in one run over one index.

    .venv/bin/python bench/answer_bench.py --data-dir DIR [--old-rev 8352079] [--runs 5] [--questions 100]

DIR is an index built by `kabar index` (e.g. IndoSum dev + seeds). Measured, each in new processes:
- cold `kabar ask` (process start to printed answer) and its peak RSS, for this checkout and for the
  code at --old-rev (a git worktree of it reads the same index: torch and the float32 model on its path);
- llama-index's cold query out of the box (VectorStoreIndex over the same Chroma collection);
- warm extractive answers of first-seen questions (FacQA valid) in one process: p50/p95 ms, with the
  sentence ranker (the default), with the support scorer it replaced and with the span reader
  (KABAR_SCORER=reader, whose cold `kabar ask` is measured too);
- `kabar discord`'s memory, idle and while answering, with Discord faked (the bot built, not connected),
  with the default scorer and with the reader.
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

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
QUESTION = "What does Cheong Seong-chang expect Kim Jong Un to gain?"
READER_QUESTION = "Siapa duta besar Rusia untuk Korea Selatan?"  # the reader reads Indonesian questions

# llama-index out of the box: its default HuggingFace embedding over the same model folder, its default
# retriever (top-2) over our Chroma collection; the process ends after the nodes are printed.
LLAMA_INDEX = """
import sys, chromadb
from chromadb.config import Settings as ChromaSettings
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.vector_stores.chroma import ChromaVectorStore
sys.path.insert(0, {root!r})
from index.embed import load_embedder
from index.llama_adapter import LlamaIndexEmbedding
Settings.llm = MockLLM()
client = chromadb.PersistentClient(path={chroma!r}, settings=ChromaSettings(anonymized_telemetry=False))
store = ChromaVectorStore(chroma_collection=client.get_collection("kabar_chunks"))
embed = LlamaIndexEmbedding(load_embedder(None, __import__("pathlib").Path({cache!r}), engine="torch"))
index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
print(index.as_retriever().retrieve({question!r})[0].node.get_content()[:80])
"""


def timed_run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one new process, measured by /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        t = time.perf_counter()
        subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd], env=env, check=True, capture_output=True
        )
        wall = time.perf_counter() - t
        return wall, int(rss.read().strip().splitlines()[-1]) / 1024


def cold(label: str, cmd: list[str], env: dict[str, str], runs: int) -> dict:
    """Median wall and peak RSS over `runs` runs (after one warm-up for the page cache)."""
    timed_run(cmd, env)
    results = [timed_run(cmd, env) for _ in range(runs)]
    walls = [w for w, _ in results]
    out = {
        "median_s": round(statistics.median(walls), 2),
        "runs_s": [round(w, 2) for w in walls],
        "peak_rss_mb": round(max(r for _, r in results)),
    }
    print(label, json.dumps(out), file=sys.stderr, flush=True)
    return out


def old_checkout(rev: str) -> Path:
    """A worktree of the code at `rev` (reused when present)."""
    path = Path(tempfile.gettempdir()) / f"kabar-old-{rev}"
    if not path.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev], check=True)
    return path


def warm(data_dir: Path, n: int, scorer: str = "ranker") -> dict:
    """First-seen questions in one process: the engine's own timings (KABAR_SCORER=`scorer`)."""
    code = f"""
import json, sys
sys.path.insert(0, {str(ROOT)!r})
sys.path.insert(0, {str(ROOT / "bench")!r})
from qa_data import DATA, read_jsonl
from bot.app import build
from bot.settings import Settings
kabar = build(Settings.load(None, home={str(data_dir)!r}))
qs = [r["question"] for r in read_jsonl(DATA / "qa" / "facqa_valid.jsonl")][:{n}]
kabar.engine.answer("pemanasan")  # opens Chroma and the keyword index
times = [kabar.engine.answer(q).timings_ms for q in qs]
print(json.dumps(times))
"""
    env = {**os.environ, "KABAR_SCORER": scorer}
    out = subprocess.run([PYTHON, "-c", code], check=True, capture_output=True, text=True, env=env).stdout
    times = json.loads(out.strip().splitlines()[-1])

    def pct(key: str) -> dict:
        values = sorted(t[key] for t in times)
        return {
            "p50": round(statistics.median(values), 1),
            "p95": round(values[min(len(values) - 1, round(0.95 * (len(values) - 1)))], 1),
        }

    return {
        "questions": len(times),
        "total_ms": pct("total"),
        "retrieve_ms": pct("retrieve"),
        "answer_ms": pct("answer"),
    }


def bot_memory(data_dir: Path, scorer: str = "ranker") -> dict:
    """`kabar discord`'s RSS: the bot built as the command builds it, idle, then after 50 questions."""
    code = f"""
import asyncio, json, resource, sys
sys.path.insert(0, {str(ROOT)!r})
sys.path.insert(0, {str(ROOT / "bench")!r})
from qa_data import DATA, read_jsonl
from bot.app import build
from bot.discordbot.client import build_bot
from bot.settings import Settings

def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024

settings = Settings.load(None, home={str(data_dir)!r})
kabar = build(settings)
bot = build_bot(kabar, settings)
idle = rss()
qs = [r["question"] for r in read_jsonl(DATA / "qa" / "facqa_valid.jsonl")][:50]
async def ask():
    for q in qs:
        await bot.worker.answer(q)
asyncio.run(ask())
print(json.dumps({{"idle_mb": round(idle), "answering_mb": round(rss()),
                  "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}}))
"""
    env = {**os.environ, "KABAR_SCORER": scorer}
    out = subprocess.run([PYTHON, "-c", code], check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--old-rev", default="8352079")
    ap.add_argument(
        "--cache-dir", type=Path, default=Path(os.environ.get("KABAR_CACHE_DIR", "~/.cache/kabar"))
    )
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--questions", type=int, default=100)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "answer_bench.json")
    args = ap.parse_args()
    data, cache = args.data_dir.resolve(), args.cache_dir.expanduser().resolve()
    env = {**os.environ, "KABAR_HOME": str(data), "KABAR_CACHE_DIR": str(cache)}
    env.pop("KABAR_LLM", None)
    old = old_checkout(args.old_rev)
    ask = ["ask", QUESTION, "--json"]
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
        "data_dir": str(data),
        "cold_kabar_ask": cold(
            "new", [PYTHON, "-c", "from bot.cli.main import main; main()", *ask], env, args.runs
        ),
        "cold_kabar_ask_reader": cold(
            "new, reader",
            [PYTHON, "-c", "from bot.cli.main import main; main()", "ask", READER_QUESTION, "--json"],
            {**env, "KABAR_SCORER": "reader"},
            args.runs,
        ),
        "cold_kabar_ask_ranker_same_question": cold(
            "new, ranker",
            [PYTHON, "-c", "from bot.cli.main import main; main()", "ask", READER_QUESTION, "--json"],
            {**env, "KABAR_SCORER": "ranker"},
            args.runs,
        ),
        "cold_kabar_ask_old": cold(
            f"old {args.old_rev}",
            [
                PYTHON,
                "-c",
                f"import sys; sys.path.insert(0, {str(old)!r}); from bot.cli import main; main()",
                *ask,
            ],
            {**env, "PYTHONPATH": str(old)},
            args.runs,
        ),
        "cold_llama_index_query": cold(
            "llama-index",
            [
                PYTHON,
                "-c",
                LLAMA_INDEX.format(
                    root=str(ROOT), chroma=str(data / "chroma"), cache=str(cache), question=QUESTION
                ),
            ],
            env,
            args.runs,
        ),
        "warm": warm(data, args.questions),
        "warm_support_scorer": warm(data, args.questions, "support"),  # the scorer the ranker replaced
        "warm_reader": warm(data, args.questions, "reader"),
        "discord_bot_rss": bot_memory(data),
        "discord_bot_rss_reader": bot_memory(data, "reader"),
        "self_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    new, old_s = result["cold_kabar_ask"]["median_s"], result["cold_kabar_ask_old"]["median_s"]
    result["cold_new_vs_old"] = round(new / old_s, 3)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
