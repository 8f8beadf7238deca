"""Can the reader tell "this passage does not answer" from its own states? A no-answer head, measured.

The span reader's SQuAD-style null score does not separate IDK-MRC's unanswerable questions (AUC 0.515,
train/README.md). This reads examples with the shipped reader, keeps each passage's last-layer states
(`Reading.state`: the <s> state and the passage tokens' mean) and its margins, and fits logistic heads on
the Apache-2.0 train split (FacQA + TyDi QA, with made-up unanswerables: answer sentence cut, another
passage, and the question twisted by one word). IDK-MRC train (no licence) only picks the threshold; IDK-MRC
valid is the report. Features are cached in DIR, so refits take seconds.

    PYTHONPATH=. .venv/bin/python train/noanswer_study.py DIR [--train 6000] [--C 0.1]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.answer.reader import Reader  # noqa: E402
from index.sentences import split_sentences  # noqa: E402
from train.reader_data import DATA, load_split, read_jsonl  # noqa: E402

REFUSE_ANSWERABLE = 0.08  # the share of IDK-MRC train's answerable questions the threshold may refuse


def features(reader: Reader, question: str, passage: str) -> np.ndarray:
    """The reader's view of one passage: its states, then margin, span score and null score."""
    sents = [(s.start, s.end) for s in split_sentences(passage)]
    (r,) = reader.read(question, [(passage, sents)])
    assert r.state is not None
    return np.concatenate([r.state, [r.margin, r.span_score, r.null_score]]).astype(np.float32)


def featurise(reader: Reader, items: list[tuple[str, str]], label: str) -> np.ndarray:
    """Features of (question, passage) pairs, with a progress line every 500."""
    out, t0 = [], time.perf_counter()
    for i, (q, p) in enumerate(items):
        out.append(features(reader, q, p))
        if (i + 1) % 500 == 0:
            print(f"  {label}: {i + 1}/{len(items)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return np.stack(out)


def build(cache: Path, reader: Reader, n_train: int, seed: int) -> dict[str, np.ndarray]:
    """Read the train sample, IDK-MRC train (calibration) and IDK-MRC valid; cached in cache/features.npz."""
    path = cache / "features.npz"
    if path.exists():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    rng = random.Random(seed)
    train, dev = load_split(twist_share=0.5)
    sample = rng.sample(train, min(n_train, len(train)))
    idk_train = rng.sample(read_jsonl(DATA / "idk_mrc_train.jsonl.gz"), 1000)
    idk_valid = read_jsonl(DATA / "idk_mrc_valid.jsonl")
    data = {
        "train_x": featurise(reader, [(e.question, e.passage) for e in sample], "train"),
        "train_y": np.array([not e.answerable for e in sample]),
        "train_kind": np.array([e.kind for e in sample]),
        "dev_x": featurise(reader, [(e.question, e.passage) for e in dev], "dev"),
        "dev_y": np.array([not e.answerable for e in dev]),
        "dev_kind": np.array([e.kind for e in dev]),
        "calib_x": featurise(reader, [(r["question"], r["passage"]) for r in idk_train], "idk train"),
        "calib_y": np.array([bool(r["is_impossible"]) for r in idk_train]),
        "valid_x": featurise(reader, [(r["question"], r["passage"]) for r in idk_valid], "idk valid"),
        "valid_y": np.array([bool(r["is_impossible"]) for r in idk_valid]),
    }
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **data)
    return data


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve of score for the positives y (ties count half)."""
    from scipy.stats import rankdata

    r = rankdata(score)
    pos = y.sum()
    return float((r[y].sum() - pos * (pos + 1) / 2) / (pos * (len(y) - pos)))


def refusal(score: np.ndarray, y: np.ndarray, threshold: float) -> tuple[float, float]:
    """(share of unanswerable refused, share of answerable refused) when score >= threshold refuses."""
    refused = score >= threshold
    return float(refused[y].mean()), float(refused[~y].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "kabar")
    ap.add_argument("--train", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--C", type=float, default=0.1)
    args = ap.parse_args()
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    reader = Reader.load(args.cache_dir)
    d = build(args.dir, reader, args.train, args.seed)
    dim = d["train_x"].shape[1]
    state, margins = np.arange(dim - 3), np.arange(dim - 3, dim)
    variants = {
        "margin only": (margins, ("cut", "other", "twisted")),
        "states, no twisted questions": (np.arange(dim), ("cut", "other")),
        "states + margins": (np.arange(dim), ("cut", "other", "twisted")),
        "states only": (state, ("cut", "other", "twisted")),
    }
    report = {}
    for name, (cols, kinds) in variants.items():
        keep = (d["train_kind"] == "answer") | np.isin(d["train_kind"], kinds)
        scaler = StandardScaler().fit(d["train_x"][keep][:, cols])
        model = LogisticRegression(C=args.C, max_iter=2000).fit(
            scaler.transform(d["train_x"][keep][:, cols]), d["train_y"][keep]
        )

        def score(x: np.ndarray, cols: np.ndarray = cols, scaler=scaler, model=model) -> np.ndarray:
            return model.decision_function(scaler.transform(x[:, cols]))

        calib = score(d["calib_x"])
        threshold = float(np.quantile(calib[~d["calib_y"]], 1 - REFUSE_ANSWERABLE))
        valid = score(d["valid_x"])
        row = {
            "auc_idk_valid": auc(valid, d["valid_y"]),
            "auc_idk_train": auc(calib, d["calib_y"]),
            "auc_dev": auc(score(d["dev_x"]), d["dev_y"]),
            "threshold": threshold,
            "idk_valid_refused_unanswerable_answerable": refusal(valid, d["valid_y"], threshold),
        }
        for kind in ("cut", "other", "twisted"):
            sel = (d["dev_kind"] == "answer") | (d["dev_kind"] == kind)
            row[f"auc_dev_{kind}"] = auc(score(d["dev_x"][sel]), d["dev_y"][sel])
        report[name] = row
        print(name, json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}))
    (args.dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
