"""Refusal study on IDK-MRC: can the best sentence's features tell answerable from unanswerable questions?

    .venv/bin/python bench/refusal_study.py dump --data-dir D --qa idk_mrc_valid.jsonl --out X.jsonl
    .venv/bin/python bench/refusal_study.py fit X.jsonl

`dump` asks every question (answerable and `is_impossible`, gold passage indexed) of the file against an
eval index built by `kabar eval --data-dir D` and writes the engine's support features of the best
sentence, plus candidate features. `fit` fits a logistic model on one half of the questions (split by a
hash of the passage, so no passage is in both halves) and reports, on the other half, the share of
unanswerable questions refused while refusing at most 10% of the answerable ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def dump(args: argparse.Namespace) -> None:
    from bot.answer.extractive import question_type
    from bot.app import build
    from bot.evaluate import datasets as ev
    from bot.settings import Settings
    from index.keyword import tokenize

    items = [it for f in args.qa for it in ev.read_qa(f)]
    ev.gold_corpus(items, args.absent)
    kabar = build(Settings.load(None, home=args.data_dir))
    engine = kabar.engine
    with args.out.open("w", encoding="utf-8") as fh:
        for n, it in enumerate(items):
            if it.kind == "absent":
                continue
            res = engine.searcher.search(it.question, engine.top_k)
            cands = engine.extractive.scorer.score(it.question, res.query_vector, res.passages)
            if not cands:
                continue
            best = cands[0]
            q = set(tokenize(it.question))
            passage = set(tokenize(best.passage.text))
            sentence = set(tokenize(best.text))
            top3 = cands[:3]
            feats = dict(best.features)
            feats.update(
                support=best.score,
                q_in_passage=len(q & passage) / len(q) if q else 1.0,
                q_in_sentence=len(q & sentence) / len(q) if q else 1.0,
                q_missing=float(len(q - passage)),
                second_gap=best.score - (cands[1].score if len(cands) > 1 else best.score - 5),
                type_any3=float(any(c.features["answer_type"] for c in top3)),
                typed=float(question_type(it.question) is not None),
            )
            line = {
                "qid": it.qid,
                "passage_id": it.passage_id,
                "impossible": it.is_impossible,
                "gold_is_best": best.passage.article_id == it.gold_id,
                "features": feats,
            }
            fh.write(json.dumps(line) + "\n")
            if n % 100 == 0:
                print(n, len(items), file=sys.stderr, flush=True)
    kabar.close()


def half(key: str) -> bool:
    return hashlib.sha256(key.encode()).digest()[0] % 2 == 0


def fit(args: argparse.Namespace) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    rows = [json.loads(line) for line in args.dump.open(encoding="utf-8")]
    names = sorted(rows[0]["features"])
    X = np.array([[r["features"][f] for f in names] for r in rows])
    y = np.array([not r["impossible"] for r in rows])  # 1: should answer
    train = np.array([half(r["passage_id"] or r["qid"]) for r in rows])
    print(f"{len(rows)} questions, {int((~y).sum())} unanswerable; train {int(train.sum())}")
    for j, f in enumerate(names):
        print(f"AUC {f:14s} {roc_auc_score(y, X[:, j]):.3f}")

    def report(label: str, score: np.ndarray) -> None:
        test = ~train
        thr = float(np.quantile(score[train & y], 0.10))  # refuse <= 10% of answerable (train half)
        refused_ans = np.mean(score[test & y] < thr)
        refused_imp = np.mean(score[test & ~y] < thr)
        auc = roc_auc_score(y[test], score[test])
        print(f"{label:28s} test AUC {auc:.3f}  refused: answerable {refused_ans:.3f}, not {refused_imp:.3f}")

    report("current support", X[:, names.index("support")])
    for subset in (
        ["support"],
        ["support", "q_in_passage", "q_missing"],
        ["support", "q_in_passage", "q_in_sentence", "q_missing", "type_any3", "typed"],
        names,
    ):
        cols = [names.index(f) for f in subset]
        model = LogisticRegression(C=1.0, max_iter=5000).fit(X[train][:, cols], y[train])
        report("+".join(subset)[:28], model.decision_function(X[:, cols]))
        print(
            "   ", dict(zip(subset, np.round(model.coef_[0], 3), strict=True)), round(model.intercept_[0], 3)
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--data-dir", type=Path, required=True)
    d.add_argument("--qa", type=Path, action="append", default=[])
    d.add_argument("--absent", type=float, default=0.1)
    d.add_argument("--out", type=Path, required=True)
    f = sub.add_parser("fit")
    f.add_argument("dump", type=Path)
    args = ap.parse_args()
    dump(args) if args.cmd == "dump" else fit(args)


if __name__ == "__main__":
    main()
