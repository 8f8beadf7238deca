"""One look at a (possibly damaged) index, in its own process (Chroma's native code may crash on damage).

`python tests/damage_probe.py DATA CORPUS` answers three questions (search + extractive engine), reads the
stats and runs an index pass, with the fake embedder; prints {"answers", "stats", "index"} as JSON, each
"ok:<result>" or "corrupt:<message>" or "error:<type>: <message>".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import FakeEmbedder  # noqa: E402

from bot.app import engine_for  # noqa: E402
from index.errors import IndexCorrupt  # noqa: E402
from index.indexer import Indexer  # noqa: E402
from index.search import Searcher  # noqa: E402
from index.store import Store  # noqa: E402

QUESTIONS = ["harga beras di Jakarta", "banjir di Medan", "bandara nomor 2"]


def attempt(fn) -> str:
    try:
        return "ok:" + json.dumps(fn(), sort_keys=True)
    except IndexCorrupt as e:
        return f"corrupt:{e}"
    except Exception as e:  # noqa: BLE001 - what the test must never see
        return f"error:{type(e).__name__}: {e}"


def answers(data: Path) -> list:
    embedder = FakeEmbedder()
    store = Store(data, embedder.name, embedder.dim)
    try:
        engine = engine_for(Searcher(store, embedder))
        out = []
        for q in QUESTIONS:
            a = engine.answer(q)
            out.append([a.answer, [c.quote for c in a.citations], a.retrieved])
        return out
    finally:
        store.close()


def main() -> None:
    data, corpus = Path(sys.argv[1]), Path(sys.argv[2])
    result = {"answers": attempt(lambda: answers(data))}
    result["stats"] = attempt(
        lambda: {k: v for k, v in Indexer(data).stats().items() if k not in ("last_indexed", "data_dir")}
    )
    result["index"] = attempt(lambda: Indexer(data, FakeEmbedder()).sync([corpus])[1]["chunks"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
