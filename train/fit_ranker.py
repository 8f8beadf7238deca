"""Fit the sentence ranker (bot/answer/ranker.py) on train/sentence_data.py rows and report it.

    PYTHONPATH=. .venv/bin/python train/fit_ranker.py DIR [--calibrate idk_mrc_train] [--write]

Fits the rank model on DIR/{facqa_train,tydiqa_id_train,ntrex_train}.rows.jsonl (Apache-2.0, CC BY-SA
4.0) and reports every rows file beside today's support scorer on the same candidates (refusing by the
support logit, as the answer path does). It also fits an answerability model (the best sentence's
features -> "answerable" against the made-up unanswerable variants), its threshold calibrated on
DIR/idk_mrc_train.rows.jsonl (IDK-MRC: calibration only), and reports it as "+answer model": it did not
refuse better than the support logit, so it is not shipped. `--write` stores the rank model in
bot/answer/ranker.json (+ .sha256). Deterministic: lbfgs on fixed data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.answer.extractive import SupportWeights  # noqa: E402
from bot.answer.ranker import MODEL  # noqa: E402

RANK = (
    "dense", "passage", "lexical", "answer_type", "peak", "entities", "english", "rank", "context", "bigram",
    "ent_sentence", "span", "no_span", "first", "gap", "lex_gap", "novel", "length", "en_dense", "en_lexical",
    "prev_lexical", "defines",
)  # fmt: skip
ANSWER = (
    "top",
    "lead",
    "dense",
    "passage",
    "lexical",
    "entities",
    "ent_sentence",
    "span",
    "no_span",
    "english",
)
TRAIN = ("facqa_train", "tydiqa_id_train", "ntrex_train")
MARGIN = 0.5  # select(): runners-up within this of the best are quoted too (max 3 sentences); --margin
REFUSE_ANSWERABLE = 0.08  # threshold: this share of the calibration set's answerable questions refused


def load(path: Path) -> dict[tuple[str, str], list[dict]]:
    """Rows grouped by (question, variant), in file order."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    with path.open() as fh:
        for line in fh:
            r = json.loads(line)
            groups[(r["qid"], r["kind"])].append(r)
    return groups


def matrix(rows: list[dict], names: tuple[str, ...]) -> np.ndarray:
    """Feature rows as a matrix."""
    return np.array([[r["features"][n] for n in names] for r in rows], dtype=np.float64)


def fit(X: np.ndarray, y: np.ndarray, C: float = 1.0) -> tuple[np.ndarray, float]:
    """Weights and bias of an L2 logistic regression."""
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=C, max_iter=5000).fit(X, y)
    return m.coef_[0], float(m.intercept_[0])


def scored(groups: dict, w: np.ndarray, b: float) -> dict:
    """Each group's rows with "score" set by the rank model, best first."""
    out = {}
    for key, rows in groups.items():
        s = matrix(rows, RANK) @ w + b
        out[key] = sorted(
            ({**r, "score": float(v)} for r, v in zip(rows, s, strict=True)), key=lambda r: -r["score"]
        )
    return out


def support_scored(groups: dict) -> dict:
    """Each group's rows scored by today's support logit, best first."""
    sw = SupportWeights()
    return {
        k: sorted(({**r, "score": sw.score(r["features"])} for r in rows), key=lambda r: -r["score"])
        for k, rows in groups.items()
    }


def answer_row(rows: list[dict]) -> dict[str, float]:
    """The answerability features of a scored group (as ranker.answer_features computes them)."""
    best = rows[0]
    second = rows[1]["score"] if len(rows) > 1 else best["score"] - 5.0
    return {**best["features"], "top": best["score"], "lead": min(best["score"] - second, 5.0)}


def chosen(rows: list[dict], margin: float, other: float | None = None) -> list[dict]:
    """select()'s quote: the best sentence and runners-up within `margin` (`other`: from another article)."""
    best = rows[0]
    other = margin if other is None else other
    same = [
        r
        for r in rows
        if r["score"] >= best["score"] - (margin if r.get("passage") == best.get("passage") else other)
    ]
    return same[:3]


def report(
    name: str, groups: dict, answer_score, threshold: float, margin: float, other: float | None = None
) -> dict:
    """Pick@1, quoted-contains, citation precision and refusal rates of one scored file."""
    ans = [rows for (_, kind), rows in groups.items() if kind == "answerable"]
    quotes = [chosen(rows, margin, other) for rows in ans]
    # citation precision: quoted sentences from the gold passage or holding the answer
    cites = [r["label"] or r["gold_passage"] for q in quotes for r in q]
    out = {
        "n": len(ans),
        "pick1": float(np.mean([rows[0]["label"] for rows in ans])) if ans else None,
        "quoted": float(np.mean([any(r["label"] for r in q) for q in quotes])) if ans else None,
        "quoted_sentences": float(np.mean([len(q) for q in quotes])) if ans else None,
        "cite_prec": float(np.mean(cites)) if cites else None,
    }
    for kind in ("answerable", "impossible", "cut", "absent"):
        g = [rows for (_, k), rows in groups.items() if k == kind]
        if g:
            out[f"refused_{kind}"] = float(np.mean([answer_score(rows) < threshold for rows in g]))
    # answered and right: the quote holds the answer and it was not refused
    if ans:
        out["contains"] = float(
            np.mean(
                [
                    any(r["label"] for r in q) and answer_score(rows) >= threshold
                    for q, rows in zip(quotes, ans, strict=True)
                ]
            )
        )
    print(
        f"{name:22s} "
        + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in out.items())
    )
    return out


def _compared(name: str, groups: dict, path: Path, support, min_support: float) -> dict:
    """The report of a saved rank model (e.g. the shipped one, before a refit) on the same rows."""
    saved = json.loads(path.read_text(encoding="utf-8"))
    if tuple(saved["rank"]["features"]) != RANK:
        raise SystemExit(f"{path}: its features differ from this script's")
    w, b = np.array(saved["rank"]["weights"]), float(saved["rank"]["bias"])
    margins = saved["margin"], saved["other_margin"]
    return {"saved": report(name + " saved", scored(groups, w, b), support, min_support, *margins)}


def main() -> None:
    """Fit, calibrate, report, optionally write."""
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", type=Path)
    ap.add_argument("--calibrate", default="idk_mrc_train")
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--margin", type=float, default=0.5, help="runners-up within this are quoted too")
    ap.add_argument("--other-margin", type=float, default=None, help="the same, from another article")
    ap.add_argument("--refuse", type=float, default=REFUSE_ANSWERABLE, help="calibration answerable refused")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--compare", type=Path, help="also report this saved ranker.json on the same rows")
    args = ap.parse_args()
    train = {}
    for name in TRAIN:
        train.update({(f"{name}:{q}", k): v for (q, k), v in load(args.dir / f"{name}.rows.jsonl").items()})
    ans_rows = [r for (_, k), rows in train.items() if k == "answerable" for r in rows]
    w, b = fit(matrix(ans_rows, RANK), np.array([r["label"] for r in ans_rows]), args.C)
    print("rank weights:", dict(zip(RANK, np.round(w, 3), strict=True)), "bias", round(b, 3))
    ts = scored(train, w, b)
    A = [answer_row(rows) for rows in ts.values()]
    ya = np.array([k == "answerable" for (_, k) in ts])
    aw, ab = fit(np.array([[a[n] for n in ANSWER] for a in A]), ya, args.C)
    print("answer weights:", dict(zip(ANSWER, np.round(aw, 3), strict=True)), "bias", round(ab, 3))

    def answer_score(rows: list[dict]) -> float:
        a = answer_row(rows)
        return float(ab + sum(wi * a[n] for n, wi in zip(ANSWER, aw, strict=True)))

    calib = scored(load(args.dir / f"{args.calibrate}.rows.jsonl"), w, b)
    cal_ans = [answer_score(rows) for (_, k), rows in calib.items() if k == "answerable"]
    threshold = float(np.quantile(cal_ans, args.refuse))
    print(f"threshold {threshold:.3f} ({args.refuse:.0%} of {args.calibrate} answerable refused)")
    sw = SupportWeights()

    def support(rows: list[dict]) -> float:  # what the answer path refuses by: the best support logit
        return max(sw.score(r["features"]) for r in rows)

    results = {}
    for path in sorted(args.dir.glob("*.rows.jsonl")):
        name = path.name.split(".")[0]
        g = load(path)
        ranked = scored(g, w, b)
        results[name] = {
            "ranker": report(
                name + " ranker", ranked, support, sw.min_support, args.margin, args.other_margin
            ),
            "support": report(name + " support", support_scored(g), support, sw.min_support, MARGIN),
            **(_compared(name, g, args.compare, support, sw.min_support) if args.compare else {}),
            # tried, not shipped: refusing by the answerability model instead of the support logit
            "ranker_answer_model": report(
                name + " +answer model", ranked, answer_score, threshold, args.margin, args.other_margin
            ),
        }
    if args.write:
        MODEL.write_text(
            json.dumps(
                {
                    "rank": {
                        "features": RANK,
                        "weights": [round(float(x), 5) for x in w],
                        "bias": round(b, 5),
                    },
                    "margin": args.margin,
                    "other_margin": args.margin if args.other_margin is None else args.other_margin,
                    "info": {"trained_on": list(TRAIN), "C": args.C, "results": results},
                },
                indent=1,
            )
            + "\n"
        )
        digest = hashlib.sha256(MODEL.read_bytes()).hexdigest()
        MODEL.with_name(MODEL.name + ".sha256").write_text(f"{digest}  {MODEL.name}\n")
        print(f"wrote {MODEL} (sha256 {digest[:12]})")


if __name__ == "__main__":
    main()
