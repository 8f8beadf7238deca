"""Measure the assembled (torch-free) reader on the valid sets, the train-dev split and IDK-MRC train.

Reads each question against its GOLD passage. Reports sentence "contains", span EM/F1, and refusal at the
threshold chosen on the train-dev split and at the one calibrated on (a sample of) IDK-MRC train.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import string
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.answer.reader import ADAPTER, Reader  # noqa: E402
from index.sentences import split_sentences  # noqa: E402
from train.reader_data import DATA, load_split, read_jsonl  # noqa: E402

VALID = ("tydiqa_id_valid.jsonl", "idk_mrc_valid.jsonl", "facqa_valid.jsonl")
_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")


def norm(text: str) -> str:
    """SQuAD-style answer normalisation (lower case, no punctuation, single spaces)."""
    return " ".join(_PUNCT.sub(" ", text.casefold()).split())


def f1(pred: str, gold: str) -> float:
    """Token-overlap F1 of two normalised answers."""
    p, g = norm(pred).split(), norm(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if not common:
        return 0.0
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


def run(reader: Reader, rows: list[dict]) -> list[dict]:
    """Read every row's question against its passage; one result dict per row."""
    out = []
    for row in rows:
        text = row["passage"]
        sents = split_sentences(text)
        t0 = time.perf_counter()
        r = reader.read(row["question"], [(text, [(s.start, s.end) for s in sents])])[0]
        ms = 1000 * (time.perf_counter() - t0)
        pred = text[r.span[0] : r.span[1]]
        sent = sents[r.sentence].text if r.sentence >= 0 else ""
        golds = [a for a in row.get("answers") or [] if a.strip()]
        out.append(
            {
                "qid": row["qid"],
                "answerable": not row.get("is_impossible", False) and bool(golds),
                "margin": r.margin,
                "answer": r.answer,
                "pred": pred,
                "em": max((float(norm(pred) == norm(g)) for g in golds), default=0.0),
                "f1": max((f1(pred, g) for g in golds), default=0.0),
                "contains": any(norm(g) in norm(sent) for g in golds),
                "ms": ms,
            }
        )
    return out


def summary(res: list[dict], thresholds: dict[str, float], key: str = "margin") -> dict:
    """Aggregate scores of one set, refusal (by `key`: margin or answer head) at each named threshold."""
    ans = [r for r in res if r["answerable"]]
    una = [r for r in res if not r["answerable"]]
    out: dict = {"n": len(res), "answerable": len(ans), "unanswerable": len(una)}
    if ans:
        out |= {k: round(float(np.mean([r[k] for r in ans])), 3) for k in ("contains", "em", "f1")}
    for name, thr in thresholds.items():
        out[f"refused_answerable@{name}"] = (
            round(float(np.mean([r[key] < thr for r in ans])), 3) if ans else None
        )
        out[f"refused_unanswerable@{name}"] = (
            round(float(np.mean([r[key] < thr for r in una])), 3) if una else None
        )
    if ans and una:
        out["auc"] = round(auc([r[key] for r in ans], [r[key] for r in una]), 3)
    out["ms_p50"] = round(float(np.percentile([r["ms"] for r in res], 50)), 1)
    return out


def auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """Chance that an answerable question scores above an unanswerable one (ties count half); also
    train_reader's and reader_feature_study's."""
    p, n = np.array(pos)[:, None], np.array(neg)[None, :]
    return float(((p > n).sum() + 0.5 * (p == n).sum()) / (p.size * n.size))


def pick_threshold(res: list[dict], max_answerable_refused: float, key: str = "margin") -> float:
    """The highest threshold that refuses at most the given share of answerable questions."""
    m = np.array([r[key] for r in res if r["answerable"]])
    return float(np.quantile(m, max_answerable_refused))


def main() -> None:
    """Evaluate and print (and optionally save) a JSON report."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--adapter", type=Path, default=ADAPTER)
    ap.add_argument("--cache-dir", type=Path, default=Path("/work/cache/kabar"))
    ap.add_argument("--calib", type=int, default=1500, help="IDK-MRC train questions sampled for calibration")
    ap.add_argument("--limit", type=int, default=0, help="rows per set (debugging)")
    ap.add_argument("--target", type=float, default=0.08, help="answerable share refused at calibration")
    ap.add_argument("--out", type=Path)
    ap.add_argument(
        "--write-threshold",
        choices=("dev", "idk_train"),
        help="record this calibrated threshold in the adapter's meta (rewrites the .npz and its .sha256)",
    )
    ap.add_argument(
        "--write-answer-threshold",
        choices=("dev", "idk_train"),
        help="record this calibrated threshold of the answerability head in the adapter's meta",
    )
    args = ap.parse_args()
    reader = Reader.load(args.cache_dir, args.adapter)
    lim = (lambda rows: rows[: args.limit]) if args.limit else (lambda rows: rows)

    _, dev = load_split()
    dev_rows = [
        {
            "qid": e.qid,
            "question": e.question,
            "passage": e.passage,
            "is_impossible": not e.answerable,
            "answers": [e.passage[e.start : e.end]] if e.answerable else [],
        }
        for e in dev
    ]
    dev_res = run(reader, lim(dev_rows))
    idk_train = read_jsonl(DATA / "idk_mrc_train.jsonl.gz")
    calib_res = run(reader, lim(random.Random(13).sample(idk_train, args.calib)))
    thresholds = {
        "dev": pick_threshold(dev_res, args.target),
        "idk_train": pick_threshold(calib_res, args.target),
        "zero": 0.0,
    }
    report = {
        "thresholds": {k: round(v, 3) for k, v in thresholds.items()},
        "target": args.target,
        "sets": {},
    }
    head = calib_res[0]["answer"] is not None  # an adapter with an answerability head
    head_thr = (
        {
            "dev": pick_threshold(dev_res, args.target, "answer"),
            "idk_train": pick_threshold(calib_res, args.target, "answer"),
        }
        if head
        else {}
    )
    if head:
        report["answer_head_thresholds"] = {k: round(v, 3) for k, v in head_thr.items()}
    every = [("train_dev", dev_res), ("idk_mrc_train_sample", calib_res)]
    for name in VALID:
        every.append((name.split(".")[0], run(reader, lim(read_jsonl(DATA / name)))))
    for name, res in every:
        report["sets"][name] = summary(res, thresholds)
        if head:
            report["sets"][name]["answer_head"] = summary(res, head_thr, "answer")
    for name, res in every[2:]:
        if name.startswith("idk"):
            una = np.array([r["margin"] for r in res if not r["answerable"]])
            ans = np.array([r["margin"] for r in res if r["answerable"]])
            report["idk_valid_curve"] = [
                {
                    "thr": round(float(t), 2),
                    "refused_unans": round(float((una < t).mean()), 3),
                    "refused_ans": round(float((ans < t).mean()), 3),
                }
                for t in np.quantile(ans, [0.02, 0.05, 0.08, 0.10, 0.15, 0.2])
            ]
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.write_threshold:
        write_threshold(args.adapter, thresholds[args.write_threshold], args.write_threshold, args.target)
    if args.write_answer_threshold and head:
        name = args.write_answer_threshold
        write_threshold(args.adapter, head_thr[name], name, args.target, "answer_threshold")


def write_threshold(
    adapter: Path, threshold: float, source: str, target: float, key: str = "threshold"
) -> None:
    """Store a refusal threshold in the adapter's meta under `key`; the weights are copied unchanged."""
    with np.load(adapter) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(bytes(arrays["meta"]).decode())
    meta |= {key: round(threshold, 4), f"{key}_source": f"{source} @ {target:.0%} answerable refused"}
    arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    with open(adapter, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    digest = hashlib.sha256(adapter.read_bytes()).hexdigest()
    adapter.with_suffix(adapter.suffix + ".sha256").write_text(f"{digest}  {adapter.name}\n")


if __name__ == "__main__":
    main()
