"""Does the span reader (bot/answer/reader.py) tell the ranker something its 22 features do not?

    PYTHONPATH=. .venv/bin/python train/reader_feature_study.py DIR [--limit-train 1500,700]

DIR holds train/sentence_data.py's rows (facqa_train, tydiqa_id_train, and the three valid files). Every
candidate passage of each answerable (and, in the valid files, impossible) question is read by the shipped
reader; each candidate sentence gets three more features: its best span's score minus the passage's
no-answer score ("reader"), whether it holds the passage's best span ("reader_best"), and the passage's
margin ("reader_passage"). Rank models are fitted on the Indonesian train rows (FacQA + TyDi QA,
Apache-2.0; the same C and data for each): the 22 features alone, with the first two reader features (the
ones within a passage), and with all three (the one `--write` stores, bot/answer/ranker_reader.json).
Reported on the valid rows: pick@1, the share of quotes holding the answer and their citation precision
(fit_ranker's margins), and, for refusal, the AUC of the best support logit and of the reader's best margin
(IDK-MRC valid impossible vs answerable). The readings are cached per adapter in
DIR/reader_features-<sha256>.jsonl. Deterministic.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "train"))

from fit_ranker import RANK, chosen, fit, load, matrix  # noqa: E402

from bot.answer.extractive import SupportWeights  # noqa: E402
from bot.answer.ranker import READER_FLOOR, READER_MODEL, reader_values  # noqa: E402
from bot.answer.reader import ADAPTER, Reader  # noqa: E402
from bot.evaluate.datasets import read_jsonl  # noqa: E402
from bot.settings import Settings  # noqa: E402
from index.sentences import split_sentences  # noqa: E402
from train.eval_reader import auc  # noqa: E402

QA = ROOT.parent / "shared" / "data" / "qa"
TRAIN = ("facqa_train", "tydiqa_id_train")
VALID = ("facqa_valid", "tydiqa_id_valid", "idk_mrc_valid")
FLOOR = READER_FLOOR  # a sentence where no span starts


def qa_path(name: str) -> Path:
    """Where a question file of ../shared/data/qa is (train files are compressed)."""
    return QA / (f"{name}.jsonl.gz" if name.endswith("_train") else f"{name}.jsonl")


def read_groups(reader: Reader, groups: dict, texts: dict[str, str], kinds: tuple[str, ...]) -> dict:
    """(qid, kind, passage, sentence text) -> the reader's three features, for the groups of `kinds`."""
    out: dict[tuple[str, str, str, str], list[float]] = {}
    for (qid, kind), rows in groups.items():
        if kind not in kinds:
            continue
        pids = list(dict.fromkeys(r["passage"] for r in rows))
        plain = [(texts[p], split_sentences(texts[p])) for p in pids]
        readings = reader.read(rows[0]["question"], [(t, [(s.start, s.end) for s in ss]) for t, ss in plain])
        for pid, (_, sents), rd in zip(pids, plain, readings, strict=True):
            for i, s in enumerate(sents):
                score = rd.sentence_scores[i] if i < len(rd.sentence_scores) else float("-inf")
                margin = max(FLOOR, score - rd.null_score) if np.isfinite(score) else FLOOR
                out[(qid, kind, pid, s.text)] = [margin, float(i == rd.sentence), rd.margin]
    return out


def _cached(feats: dict, key: tuple[str, str], rows: list[dict]) -> bool:
    return any((key[0], key[1], r["passage"], r["text"]) in feats for r in rows)


def with_reader(groups: dict, feats: dict) -> dict:
    """The groups that were read, each row's features extended by the reader's (missing sentences: floor)."""
    out = {}
    for (qid, kind), rows in groups.items():
        if not _cached(feats, (qid, kind), rows):
            continue
        new = []
        for r in rows:
            m, best, pm = feats.get((qid, kind, r["passage"], r["text"]), [FLOOR, 0.0, FLOOR])
            new.append({**r, "features": {**r["features"], **reader_values(m, bool(best), pm)}})
        out[(qid, kind)] = new
    return out


def main() -> None:
    """Read, fit both models, report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--limit", type=int, help="read only this many questions per file (a smoke run)")
    ap.add_argument("--margin", type=float, default=1.25)
    ap.add_argument("--other-margin", type=float, default=0.5)
    ap.add_argument("--write", action="store_true", help=f"store a model in {READER_MODEL.name}")
    ap.add_argument("--variant", default="22 + reader", help="which of the reported models --write stores")
    args = ap.parse_args()
    # keyed by the adapter: readings of another adapter's reader must not be reused
    adapter_sha = ADAPTER.with_suffix(ADAPTER.suffix + ".sha256").read_text().split()[0]
    cache = args.dir / f"reader_features-{adapter_sha[:12]}.jsonl"
    feats: dict = {}
    if cache.exists():
        for line in cache.open(encoding="utf-8"):
            k, v = json.loads(line)
            feats[tuple(k)] = v
    reader = Reader.load(Settings.load().index.cache_dir)
    groups: dict[str, dict] = {}
    for name in TRAIN + VALID:
        g = load(args.dir / f"{name}.rows.jsonl")
        recs = [r for _, r in read_jsonl(qa_path(name))]
        texts = {r["passage_id"]: r["passage"] for r in recs}
        questions = {r["qid"]: r["question"] for r in recs}
        for rows in g.values():
            for r in rows:
                r["question"] = questions[r["qid"]]
        kinds = ("answerable",) if name in TRAIN else ("answerable", "impossible")
        todo = {k: v for k, v in list(g.items())[: args.limit and 3 * args.limit] if k[1] in kinds}
        todo = {k: v for k, v in todo.items() if not _cached(feats, k, v)}
        t = time.perf_counter()
        new = read_groups(reader, todo, texts, kinds)
        print(f"{name}: read {len(todo)} questions in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        with cache.open("a", encoding="utf-8") as fh:
            for k, v in new.items():
                fh.write(json.dumps([list(k), v], ensure_ascii=False) + "\n")
        feats.update(new)
        groups[name] = with_reader(g, feats)
    report: dict = {}
    model: dict = {}
    variants = (
        ("22 features", RANK),
        ("22 + reader in passage", RANK + ("reader", "reader_best")),
        ("22 + reader relative", RANK + ("reader_rel", "reader_best")),
        ("22 + reader", RANK + ("reader", "reader_best", "reader_passage")),
    )
    for label, names in variants:
        rows = [r for n in TRAIN for (_, k), rs in groups[n].items() if k == "answerable" for r in rs]
        w, b = fit(matrix(rows, names), np.array([r["label"] for r in rows]))
        if label == args.variant:
            model = {"features": names, "weights": [round(float(x), 5) for x in w], "bias": round(b, 5)}
        for n in VALID:
            ans = [rs for (_, k), rs in groups[n].items() if k == "answerable"]
            ranked = []
            for rs in ans:
                scores = matrix(rs, names) @ w + b
                ranked.append(
                    sorted(
                        ({**r, "score": float(v)} for r, v in zip(rs, scores, strict=True)),
                        key=lambda r: -r["score"],
                    )
                )
            quotes = [chosen(rs, args.margin, args.other_margin) for rs in ranked]
            cites = [r["label"] or r["gold_passage"] for q in quotes for r in q]
            report[f"{n} {label}"] = {
                "n": len(ans),
                "pick1": round(float(np.mean([rs[0]["label"] for rs in ranked])), 3),
                "quoted": round(float(np.mean([any(r["label"] for r in q) for q in quotes])), 3),
                "cite_prec": round(float(np.mean(cites)), 3),
                "best_from_gold": round(float(np.mean([rs[0]["gold_passage"] for rs in ranked])), 3),
            }
    sw = SupportWeights()
    idk = groups["idk_mrc_valid"]
    best = {
        k: (max(sw.score(r["features"]) for r in rs), max(r["features"]["reader"] for r in rs))
        for k, rs in idk.items()
    }
    pos = [v for (_, kind), v in best.items() if kind == "impossible"]
    neg = [v for (_, kind), v in best.items() if kind == "answerable"]
    # refusal: a lower score should mean "impossible", so AUC of -score
    report["idk_mrc_valid refusal AUC"] = {
        "support": round(auc([-s for s, _ in pos], [-s for s, _ in neg]), 3),
        "reader margin": round(auc([-m for _, m in pos], [-m for _, m in neg]), 3),
        "n impossible / answerable": [len(pos), len(neg)],
    }
    for k, v in report.items():
        print(k, json.dumps(v))
    if args.write:
        saved = {
            "rank": model,
            "margin": args.margin,
            "other_margin": args.other_margin,
            "info": {"trained_on": list(TRAIN), "C": 1.0, "variant": args.variant, "results": report},
        }
        READER_MODEL.write_text(json.dumps(saved, indent=1) + "\n", encoding="utf-8")
        digest = hashlib.sha256(READER_MODEL.read_bytes()).hexdigest()
        READER_MODEL.with_name(READER_MODEL.name + ".sha256").write_text(f"{digest}  {READER_MODEL.name}\n")
        print(f"wrote {READER_MODEL} (sha256 {digest[:12]})")


if __name__ == "__main__":
    main()
