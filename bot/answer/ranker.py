"""The trained sentence ranker: which retrieved sentence answers the question.

A logistic model over features of the candidate sentences (`SentenceScorer`'s, plus the ones below) that
scores each for holding the answer, fitted by train/fit_ranker.py on FacQA and TyDi QA train (Apache-2.0)
and NTREX (CC BY-SA 4.0) and stored in ranker.json with a checksum beside it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.answer.evidence import COMMON_CAPS, coverage, question_entities
from bot.answer.span import answer_kind, scored_spans
from index.errors import KabarError
from index.keyword import tokenize

if TYPE_CHECKING:
    from bot.answer.extractive import Support
    from bot.answer.reader import Reader

MODEL = Path(__file__).with_name("ranker.json")
# the same model with three of the span reader's features of each sentence (train/reader_feature_study.py)
READER_MODEL = Path(__file__).with_name("ranker_reader.json")
READER_FEATURES = ("reader", "reader_best", "reader_passage", "reader_rel")
READ_PASSAGES = 2  # the reader reads this many passages, in retrieval order; the rest get the floor
READER_FLOOR = -20.0  # a sentence no span starts in, or a passage not read
# "Apa itu X?" / "What is X?" is answered by the sentence that says what X is
_DEFINITION_Q = re.compile(
    r"^\W*(apa (itu|yang dimaksud|pengertian)|apakah (itu|yang dimaksud)|what (is|are) )", re.I
)
_COPULA = re.compile(r"\b(adalah|merupakan|ialah|yaitu|yakni)\b", re.I)


def add_features(question: str, cands: list[Support]) -> None:
    """Features of each candidate beyond `SentenceScorer`'s, in place (they compare it with the others)."""
    if not cands:
        return
    qtoks = tokenize(question)
    qset = set(qtoks)
    qbigrams = set(zip(qtoks, qtoks[1:], strict=False))
    entities = question_entities(question) - COMMON_CAPS
    kind = answer_kind(question)
    dense = {(c.passage.article_id, c.sentence_index): c.features["dense"] for c in cands}
    lexical = {(c.passage.article_id, c.sentence_index): c.features["lexical"] for c in cands}
    defining = bool(_DEFINITION_Q.search(question))
    top_dense = max(c.features["dense"] for c in cands)
    top_lexical = max(c.features["lexical"] for c in cands)
    for c in cands:
        f = c.features
        toks = c.tokens  # tokenized once, by the scorer
        tset = set(toks)
        near = [
            d
            for k in (c.sentence_index - 1, c.sentence_index + 1)
            if (d := dense.get((c.passage.article_id, k))) is not None
        ]
        spans = scored_spans(question, c.text) if kind else []
        f["rank"] = float(c.passage_rank)
        f["context"] = max(near) if near else f["dense"]
        # "Letaknya di kaki Gunung Meja." answers where the sentence before it names what is asked about
        f["prev_lexical"] = lexical.get((c.passage.article_id, c.sentence_index - 1), 0.0)
        f["defines"] = float(defining and bool(_COPULA.search(c.text)))
        f["bigram"] = (
            len(qbigrams & set(zip(toks, toks[1:], strict=False))) / len(qbigrams) if qbigrams else 0.0
        )
        f["ent_sentence"] = coverage(entities, c.text)
        f["span"] = min(spans[0][0], 16.0) / 16.0 if spans else 0.0
        f["no_span"] = float(kind is not None and not spans)
        f["first"] = float(c.sentence_index == 0)
        f["gap"] = f["dense"] - top_dense
        f["lex_gap"] = f["lexical"] - top_lexical
        f["novel"] = len(tset - qset) / len(tset) if tset else 0.0
        f["length"] = min(len(toks) / 30.0, 2.0)
        f["en_dense"] = f["english"] * f["dense"]
        f["en_lexical"] = f["english"] * f["lexical"]


def add_reader_features(reader: Reader, question: str, cands: list[Support]) -> float | None:
    """The span reader's view of each candidate, in place (READER_FEATURES, via `reader_values`); only the
    first READ_PASSAGES passages are read, the others' sentences keep the floor. Returns the best
    answerability logit of the passages read (None when the reader has no answerability head)."""
    for c in cands:
        c.features.update(reader_values(READER_FLOOR, False, READER_FLOOR))
    passages = {c.passage.chunk_id: c.passage for c in sorted(cands, key=lambda c: c.passage_rank)}
    read = list(passages)[:READ_PASSAGES]
    located: dict[str, list[Support]] = {pid: [] for pid in read}
    for c in cands:
        if c.passage.chunk_id in located:
            located[c.passage.chunk_id].append(c)
    ids = [pid for pid in read if located[pid]]
    for pid in ids:
        located[pid].sort(key=lambda c: c.start)
    texts = [(passages[pid].text, [(c.start, c.end) for c in located[pid]]) for pid in ids]
    readings = reader.read(question, texts) if ids else []
    for pid, r in zip(ids, readings, strict=True):
        for k, c in enumerate(located[pid]):
            score = r.sentence_scores[k]
            margin = max(READER_FLOOR, score - r.null_score) if score > -1e30 else READER_FLOOR
            c.features.update(reader_values(margin, k == r.sentence, r.margin))
    return max((r.answer for r in readings if r.answer is not None), default=None)


def reader_values(margin: float, best: bool, passage_margin: float) -> dict[str, float]:
    """The reader features of one sentence from its margin, whether it holds its passage's best span, and
    the passage's margin; `reader_rel` (its score under the passage's best) compares only within a passage,
    since the no-answer score does not compare across passages."""
    rel = max(READER_FLOOR, margin - passage_margin) if margin > READER_FLOOR else READER_FLOOR
    return {"reader": margin, "reader_best": float(best), "reader_passage": passage_margin, "reader_rel": rel}


@dataclass
class Logistic:
    """w . features + bias over named features."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float

    def __call__(self, features: dict[str, float]) -> float:
        return self.bias + sum(w * features[n] for n, w in zip(self.features, self.weights, strict=True))


class SentenceRanker:
    """Rescores `SentenceScorer`'s candidates by how likely each holds the answer."""

    def __init__(
        self, rank: Logistic, margin: float = 0.5, other_margin: float | None = None, info: dict | None = None
    ):
        self.rank = rank
        # runners-up within `margin` of the best sentence are quoted too; from another article, within
        # `other_margin` (tighter: a second article's sentence is more often a distractor)
        self.margin = margin
        self.other_margin = margin if other_margin is None else other_margin
        self.info = info or {}

    @property
    def reads(self) -> bool:
        """Whether the model scores the span reader's features (add_reader_features first)."""
        return any(n in READER_FEATURES for n in self.rank.features)

    @classmethod
    def load(cls, path: Path = MODEL) -> SentenceRanker:
        """The ranker stored at `path` (ranker.json beside this module by default), checksum-verified."""
        try:
            raw = path.read_bytes()
            want = path.with_name(path.name + ".sha256").read_text().split()[0]
        except OSError as e:
            raise KabarError(f"cannot read the sentence ranker {path}: {e.strerror or e}") from None
        if hashlib.sha256(raw).hexdigest() != want:
            raise KabarError(
                f"the sentence ranker {path} does not match its checksum: reinstall Kabar, or answer with "
                "KABAR_SCORER=support"
            )
        d = json.loads(raw)
        return cls(
            _logistic(d["rank"]), float(d["margin"]), float(d.get("other_margin", d["margin"])), d.get("info")
        )

    def rescore(self, question: str, cands: list[Support]) -> list[Support]:
        """The candidates scored by the rank model, best first."""
        add_features(question, cands)
        for c in cands:
            c.score = self.rank(c.features)
        cands.sort(key=lambda c: -c.score)
        return cands


def _logistic(d: dict) -> Logistic:
    return Logistic(tuple(d["features"]), tuple(float(w) for w in d["weights"]), float(d["bias"]))
