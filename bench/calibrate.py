"""Calibrate the extractive refusal on real data: half the gold passages indexed, questions on both halves.

A question whose gold passage is indexed should be answered; one whose passage is not should be refused.
Fits a logistic model on the best sentence's support features and prints weights for SupportWeights.

    .venv/bin/python bench/calibrate.py [--limit N] [--out bench/results/calibration.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qa_data import DATA, half, ntrex_questions, read_jsonl  # noqa: E402

from bot.answer.extractive import FEATURES, SupportWeights  # noqa: E402
from bot.app import build, embedder_for  # noqa: E402
from bot.settings import Settings  # noqa: E402
from index.clean import sanitize_id  # noqa: E402
from index.ingest import index_paths  # noqa: E402


def questions(limit: int) -> list[dict]:
    """Answerable questions of FacQA, IDK-MRC, TyDi QA and NTREX (English)."""
    out: list[dict] = []
    for name in ("facqa_valid.jsonl", "idk_mrc_valid.jsonl", "tydiqa_id_valid.jsonl"):
        recs = [r for r in read_jsonl(DATA / "qa" / name) if not r["is_impossible"]]
        out += recs[:limit]
    out += list(ntrex_questions(DATA / "corpus" / "ntrex_en_id.jsonl.gz"))[:limit]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=400, help="questions per set")
    ap.add_argument("--out", type=Path, default=Path("bench/results/calibration.json"))
    args = ap.parse_args()
    qs = questions(args.limit)
    work = Path(tempfile.mkdtemp(prefix="kabar-calib-"))
    corpus = work / "corpus.jsonl"
    seen = set()
    with corpus.open("w", encoding="utf-8") as fh:
        for q in qs:
            if q["passage_id"] in seen or half(q["passage_id"]):
                continue
            seen.add(q["passage_id"])
            fh.write(json.dumps({"doc_id": q["passage_id"], "text": q["passage"]}, ensure_ascii=False) + "\n")
    settings = Settings.load(None, home=work / "data")
    kabar = build(settings)
    t = time.time()
    report = index_paths([corpus, Path("seeds")], kabar.store, embedder_for(settings))
    print(f"indexed {report.added} passages in {time.time() - t:.0f}s", file=sys.stderr)
    rows = []
    for i, q in enumerate(qs):
        res = kabar.engine.searcher.search(q["question"], kabar.settings.answer.top_k)
        cands = kabar.engine.extractive.scorer.score(q["question"], res.query_vector, res.passages)
        best = cands[0]
        rows.append(
            {
                "qid": q["qid"],
                "dataset": q["dataset"],
                "indexed": not half(q["passage_id"]),
                "best_is_gold": best.passage.article_id == sanitize_id(q["passage_id"]),
                "features": best.features,
            }
        )
        if i % 200 == 0:
            print(f"{i}/{len(qs)}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows))
    fit(rows)


def fit(rows: list[dict]) -> SupportWeights:
    """Logistic regression of 'gold passage indexed' on the best sentence's features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    X = np.array([[r["features"][f] for f in FEATURES] for r in rows])
    y = np.array([r["indexed"] for r in rows])
    for j, f in enumerate(FEATURES):
        print(f"AUC {f:12s} {roc_auc_score(y, X[:, j]):.3f}")
    model = LogisticRegression(C=10.0, max_iter=2000).fit(X, y)
    logit = model.decision_function(X)
    print(f"AUC combined     {roc_auc_score(y, logit):.3f}")
    weights = SupportWeights(
        **dict(zip(FEATURES, map(float, model.coef_[0]), strict=True)), bias=float(model.intercept_[0])
    )
    # threshold: refuse at most 10% of answerable questions
    thr = float(np.quantile(logit[y], 0.10))
    weights.min_support = thr
    for ds in sorted({r["dataset"] for r in rows}):
        m = np.array([r["dataset"] == ds for r in rows])
        ans, una = m & y, m & ~y
        print(
            f"{ds:10s} answered(indexed) {np.mean(logit[ans] >= thr):.3f}  refused(absent) "
            f"{np.mean(logit[una] < thr):.3f}  n={m.sum()}"
        )
    print(weights)
    return weights


if __name__ == "__main__":
    main()
