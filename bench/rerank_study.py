"""How deep to rerank English questions by their best sentence, chosen on NTREX sentences the eval never asks.

    .venv/bin/python bench/rerank_study.py --data-dir DIR --ntrex ../shared/data/corpus/ntrex_en_id.jsonl.gz

DIR is an index `kabar eval --data-dir DIR --ntrex FILE` has prepared (its NTREX documents are indexed).
`kabar eval` asks each document's first two English sentences of >= 8 words; this study's **dev** questions
are the next three of each document (never asked by the eval), so the depth is chosen on them and the eval's
own questions are only reported beside. Each question is searched once, 10 deep, and every passage's best
sentence scored (the support scorer the answerer reranks by); each depth is then its reordering of the
same lists (as in the answerer, only for questions detected as English). Prints one JSON object: recall@1
per split and depth, with the fused order as the baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import build  # noqa: E402
from bot.evaluate.datasets import read_jsonl  # noqa: E402
from bot.settings import Settings  # noqa: E402
from index.clean import sanitize_id  # noqa: E402
from index.lang import detect_language  # noqa: E402

DEPTHS = (1, 3, 5, 10)  # 1: the fused order, no rerank


def questions(path: Path, indexed: set[str]) -> list[tuple[str, str, str]]:
    """(split, gold article id, English sentence) for each indexed NTREX document: test = the eval's two."""
    out = []
    for n, r in read_jsonl(path):
        doc = sanitize_id(str(r.get("doc_id", f"ntrex-{n}")))
        if doc not in indexed:  # held out by the eval as an "absent" document
            continue
        long = [s for s in r["sentences_en"] if len(s.split()) >= 8]
        out += [("test" if i < 2 else "dev", doc, s) for i, s in enumerate(long[:5])]
    return out


def top_after_rerank(passages: list, best: dict[str, float], depth: int) -> str | None:
    """The article ranked first once the fused top `depth` are reordered by their best sentence."""
    if not passages:
        return None
    head = passages[:depth]
    return max(head, key=lambda p: best.get(p.chunk_id, float("-inf"))).article_id


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--ntrex", type=Path, required=True)
    args = ap.parse_args()
    kabar = build(Settings.load(None, home=args.data_dir), args.data_dir)
    searcher, scorer = kabar.engine.searcher, kabar.engine.extractive.scorer
    hits: dict[str, dict[int, int]] = {"dev": dict.fromkeys(DEPTHS, 0), "test": dict.fromkeys(DEPTHS, 0)}
    counts = {"dev": 0, "test": 0}
    for split, doc, q in questions(args.ntrex, set(kabar.store.article_hashes())):
        res = searcher.search(q, max(DEPTHS))
        best: dict[str, float] = {}
        for c in scorer.score(q, res.query_vector, res.passages, max(DEPTHS)):
            best[c.passage.chunk_id] = max(best.get(c.passage.chunk_id, c.score), c.score)
        counts[split] += 1
        english = detect_language(q) == "en"  # as the answerer: only questions read as English are reranked
        for d in DEPTHS:
            hits[split][d] += top_after_rerank(res.passages, best, d if english else 1) == doc
    out = {
        split: {
            "questions": counts[split],
            **{f"recall@1_depth_{d}": round(h / counts[split], 3) for d, h in hs.items()},
        }
        for split, hs in hits.items()
        if counts[split]
    }
    out["index"] = kabar.store.stats()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
