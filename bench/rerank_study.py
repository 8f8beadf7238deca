"""How deep to rerank English questions by their best sentence, chosen on NTREX sentences the eval never asks.

    .venv/bin/python bench/rerank_study.py --data-dir DIR --ntrex ../shared/data/corpus/ntrex_en_id.jsonl.gz

DIR is an index `kabar eval --data-dir DIR --ntrex FILE` has prepared (its NTREX documents are indexed).
`kabar eval` asks each document's first two English sentences of >= 8 words; this study's **dev** questions
are the next three of each document (never asked by the eval), so the depth is chosen on them and the eval's
own questions are only reported beside. Each question is searched once, 10 deep, and every passage's best
sentence scored (the support scorer the answerer reranks by); each depth is then its reordering of the
same lists (as in the answerer, only for questions detected as English). Prints one JSON object: recall@1
per split and depth, with the fused order as the baseline.

`--by ranker` also reranks by the trained sentence ranker's score (bot/answer/ranker.py). The ranker was fit
on each document's sentences 3-6 (train/sentence_data.py), which overlap the dev split, so it is judged on
the **fresh** split: sentences 7-10, which neither the ranker's fit, this study's dev split nor the eval uses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.answer.ranker import SentenceRanker  # noqa: E402
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
        out += [(_split(i), doc, s) for i, s in enumerate(long[:10]) if _split(i)]
    return out


def _split(i: int) -> str:
    """The eval's two sentences, the depth study's three, then four neither the ranker nor the eval saw."""
    return "test" if i < 2 else "dev" if i < 5 else "fresh" if i >= 6 else ""


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
    ap.add_argument("--by", default="support", help="support, or support,ranker to compare both")
    ap.add_argument("--dump", type=Path, help="write each question's passages and scores here (JSON Lines)")
    args = ap.parse_args()
    modes = args.by.split(",")
    kabar = build(Settings.load(None, home=args.data_dir), args.data_dir)
    searcher, scorer = kabar.engine.searcher, kabar.engine.extractive.scorer
    ranker = SentenceRanker.load() if "ranker" in modes else None
    splits = ("dev", "fresh", "test")
    dump = args.dump.open("w", encoding="utf-8") if args.dump else None
    hits = {(s, m): dict.fromkeys(DEPTHS, 0) for s in splits for m in modes}
    counts = dict.fromkeys(splits, 0)
    for split, doc, q in questions(args.ntrex, set(kabar.store.article_hashes())):
        res = searcher.search(q, max(DEPTHS))
        cands = scorer.score(q, res.query_vector, res.passages, max(DEPTHS))
        counts[split] += 1
        english = detect_language(q) == "en"  # as the answerer: only questions read as English are reranked
        row: dict = {"split": split, "doc": doc, "english": english, "question": q, "passages": []}
        scores: dict[str, dict[str, float]] = {}
        for mode in modes:
            if mode == "ranker" and ranker is not None:
                cands = ranker.rescore(q, cands)  # after the support pass: rescore overwrites c.score
            best: dict[str, float] = {}
            for c in cands:
                best[c.passage.chunk_id] = max(best.get(c.passage.chunk_id, c.score), c.score)
            scores[mode] = best
            for d in DEPTHS:
                hits[split, mode][d] += top_after_rerank(res.passages, best, d if english else 1) == doc
        if dump is not None:
            for p in res.passages:
                row["passages"].append(
                    {"article": p.article_id, "fused": p.score, "dense": p.dense, "keyword": p.keyword}
                    | {m: scores[m].get(p.chunk_id) for m in modes}
                )
            dump.write(json.dumps(row) + "\n")
    out: dict = {
        f"{split}/{mode}": {
            "questions": counts[split],
            **{f"recall@1_depth_{d}": round(h / counts[split], 3) for d, h in hs.items()},
        }
        for (split, mode), hs in hits.items()
        if counts[split]
    }
    out["index"] = kabar.store.stats()
    if dump is not None:
        dump.close()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
