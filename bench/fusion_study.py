"""Fusion study: dump each question's dense and BM25 rankings once, then score fusion rules offline.

    .venv/bin/python bench/fusion_study.py dump --data-dir D --qa F [--qa F ...] [--ntrex F] --out X.jsonl
    .venv/bin/python bench/fusion_study.py score X.jsonl

`dump` reads the question files as `kabar eval` does (same gold ids and held-out passages; give the same
files and --absent) over an eval index `kabar eval --data-dir D` already built, and writes per answerable
question: language, gold article, dense top-50 (chunk, cosine) and BM25 top-50 (chunk, score).
`score` prints recall@1/@5 per file for each rule, so a rule is kept only when it wins on every set.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from index.lang import detect_language  # noqa: E402

Ranked = list[tuple[str, float]]


def dump(args: argparse.Namespace) -> None:
    from bot.app import build
    from bot.evaluate import datasets as ev
    from bot.settings import Settings

    items = [it for f in args.qa for it in ev.read_qa(f)]
    items += [it for f in args.ntrex for it in ev.read_ntrex(f)]
    ev.gold_corpus(items, args.absent)
    kabar = build(Settings.load(None, home=args.data_dir))
    searcher = kabar.engine.searcher
    scorer = kabar.engine.extractive.scorer
    with args.out.open("w", encoding="utf-8") as fh:
        for n, it in enumerate(items):
            if it.kind != "answerable":
                continue
            qv = kabar.embedder.embed_queries([it.question])[0]
            dense = kabar.store.dense_search(qv, 50)
            bm25 = searcher.keyword.search(it.question, 50)
            line = {
                "sentences": sentence_features(scorer, kabar.store, it.question, qv, dense, bm25, args.top),
                "qid": it.qid,
                "source": it.source,
                "lang": detect_language(it.question),
                "gold": it.gold_id,
                "dense": [(c, round(s, 5)) for c, s in dense],
                "bm25": [(c, round(s, 4)) for c, s in bm25],
            }
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            if n % 200 == 0:
                print(n, len(items), file=sys.stderr, flush=True)
    kabar.close()


def sentence_features(scorer, store, question, qv, dense: Ranked, bm25: Ranked, depth: int) -> dict:
    """Per chunk of the dense and BM25 top `depth`: its best sentence's support, and best sentence cosine."""
    if depth <= 0:
        return {}
    ids = list(dict.fromkeys([c for c, _ in dense[:depth]] + [c for c, _ in bm25[:depth]]))
    passages = store.passages([(c, 0.0) for c in ids])
    vectors = store.vectors(ids)
    for ps in passages:
        ps.dense = float(vectors[ps.chunk_id] @ qv)
    out: dict[str, dict[str, float]] = {}
    for c in scorer.score(question, qv, passages, sentence_passages=len(passages)):
        best = out.setdefault(c.passage.chunk_id, {"support": c.score, "sent_cos": c.features["dense"]})
        best["sent_cos"] = max(best["sent_cos"], c.features["dense"])
    return {c: {k: round(v, 4) for k, v in f.items()} for c, f in out.items()}


def article(chunk_id: str) -> str:
    return chunk_id.rsplit(":", 1)[0]


def rrf(wd: float, wk: float, k: int = 60) -> Callable[[dict], list[str]]:
    def rank(q: dict) -> list[str]:
        s: dict[str, float] = defaultdict(float)
        for r, (c, _) in enumerate(q["dense"]):
            s[c] += wd / (k + r + 1)
        for r, (c, _) in enumerate(q["bm25"]):
            s[c] += wk / (k + r + 1)
        return sorted(s, key=lambda c: (-s[c], c))

    return rank


def by_lang(rule_id: Callable, rule_en: Callable) -> Callable[[dict], list[str]]:
    return lambda q: (rule_en if q["lang"] == "en" else rule_id)(q)


def convex(alpha: float, floor: float = 0.0) -> Callable[[dict], list[str]]:
    """alpha * min-max dense + (1 - alpha) * BM25 / max BM25 over the union (missing: the list's floor)."""

    def rank(q: dict) -> list[str]:
        d = dict(q["dense"])
        b = dict(q["bm25"])
        dmin = min(d.values()) if d else 0.0
        dmax = max(d.values()) if d else 1.0
        bmax = max(b.values()) if b else 1.0
        s = {}
        for c in set(d) | set(b):
            dn = (d.get(c, dmin) - dmin) / (dmax - dmin or 1.0)
            bn = b.get(c, floor * bmax) / (bmax or 1.0)
            s[c] = alpha * dn + (1 - alpha) * bn
        return sorted(s, key=lambda c: (-s[c], c))

    return rank


def rerank(rule: Callable, n: int, feature: str = "support", bonus: float = 0.0) -> Callable:
    """The rule's top n reordered by the best sentence's `feature` (+ bonus for a higher fused rank)."""

    def rank(q: dict) -> list[str]:
        ranked = rule(q)
        top, rest = ranked[:n], ranked[n:]
        feats = q.get("sentences", {})

        def key(i_c: tuple[int, str]) -> float:
            i, c = i_c
            f = feats.get(c)
            return -(f[feature] if f else -99.0) - bonus * (n - i)

        return [c for _, c in sorted(enumerate(top), key=key)] + rest

    return rank


def zfuse(alpha: float) -> Callable[[dict], list[str]]:
    """alpha * z-score of cosine + (1 - alpha) * z-score of BM25, each over its own top-50 list."""

    def z(pairs: Ranked) -> dict[str, float]:
        if not pairs:
            return {}
        v = [x for _, x in pairs]
        mu = sum(v) / len(v)
        sd = (sum((x - mu) ** 2 for x in v) / len(v)) ** 0.5 or 1.0
        return {c: (x - mu) / sd for c, x in pairs}

    def rank(q: dict) -> list[str]:
        d, b = z(q["dense"]), z(q["bm25"])
        dlow, blow = min(d.values(), default=0.0), min(b.values(), default=0.0)
        s = {c: alpha * d.get(c, dlow) + (1 - alpha) * b.get(c, blow) for c in set(d) | set(b)}
        return sorted(s, key=lambda c: (-s[c], c))

    return rank


def only(name: str) -> Callable[[dict], list[str]]:
    return lambda q: [c for c, _ in q[name]]


def score(args: argparse.Namespace) -> None:
    qs = [json.loads(line) for line in args.dump.open(encoding="utf-8")]
    rules: dict[str, Callable[[dict], list[str]]] = {
        "dense": only("dense"),
        "bm25": only("bm25"),
        "rrf 1/1": rrf(1, 1),
    }
    for wk in (0.5, 0.7, 1.5, 2.0):
        rules[f"rrf 1/{wk}"] = rrf(1, wk)
    for k in (10, 20, 30):
        rules[f"rrf 1/1 k{k}"] = rrf(1, 1, k)
    for a in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        rules[f"convex {a}"] = convex(a)
    for a in (0.4, 0.5, 0.6, 0.7):
        rules[f"z {a}"] = zfuse(a)
    for a_id, a_en in ((0.5, 0.8), (0.5, 0.9), (0.4, 0.8), (0.6, 0.9), (0.5, 1.0)):
        rules[f"convex id{a_id}/en{a_en}"] = by_lang(convex(a_id), convex(a_en))
    for wk_id, wk_en in ((1, 0.3), (1.5, 0.3), (1, 0.5), (1.5, 0.5)):
        rules[f"rrf id1/{wk_id} en1/{wk_en}"] = by_lang(rrf(1, wk_id), rrf(1, wk_en))
    for a_id, a_en in ((0.5, 0.8), (0.6, 0.8), (0.6, 0.9), (0.5, 0.9), (0.6, 1.0), (0.55, 0.85)):
        rules[f"z id{a_id}/en{a_en}"] = by_lang(zfuse(a_id), zfuse(a_en))
    for base in ("rrf 1/1", "convex id0.5/en0.8", "z id0.6/en0.8"):
        for n in (2, 3, 5):
            rules[f"{base} +rerank{n}"] = rerank(rules[base], n)
            rules[f"{base} +rerank{n} cos"] = rerank(rules[base], n, "sent_cos")
        for bonus in (0.3, 1.0):
            rules[f"{base} +rerank3 b{bonus}"] = rerank(rules[base], 3, bonus=bonus)
    sources = sorted({q["source"] for q in qs})
    header = f"{'rule':28}" + "".join(f"{s[:14]:>16}" for s in sources)
    print(header)
    for name, rule in rules.items():
        cells = []
        for src in sources:
            sub = [q for q in qs if q["source"] == src]
            r1 = r5 = 0
            for q in sub:
                arts = [article(c) for c in rule(q)[:5]]  # chunk ranks, as `kabar eval` scores them
                r1 += arts[:1] == [q["gold"]]
                r5 += q["gold"] in arts[:5]
            cells.append(f"{r1 / len(sub):.3f}/{r5 / len(sub):.3f}")
        print(f"{name:28}" + "".join(f"{c:>16}" for c in cells))


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--data-dir", type=Path, required=True)
    d.add_argument("--qa", type=Path, action="append", default=[])
    d.add_argument("--ntrex", type=Path, action="append", default=[])
    d.add_argument("--absent", type=float, default=0.1)
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--top", type=int, default=3, help="Score sentences of dense/BM25 top N (0: none).")
    s = sub.add_parser("score")
    s.add_argument("dump", type=Path)
    args = ap.parse_args()
    dump(args) if args.cmd == "dump" else score(args)


if __name__ == "__main__":
    main()
