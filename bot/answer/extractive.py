"""The LLM-free answer: the retrieved sentences that best support the question, each cited."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

import prompts
from bot.answer.evidence import COMMON_CAPS, coverage, question_entities
from bot.answer.ranker import SentenceRanker, add_reader_features
from bot.answer.span import scored_spans
from bot.answer.types import Answer, Citation
from index.embed import Embedder
from index.keyword import tokenize
from index.lang import detect_language
from index.search import SearchResult
from index.types import Passage

if TYPE_CHECKING:
    from bot.answer.reader import Reader

# A sentence opening with one of these leans on the sentence before it ("Ia menambahkan ..."):
# quote that one too, so the answer says who "Ia" is.
_ANAPHORA = re.compile(
    r"^(ia|dia|mereka|beliau|hal (ini|itu|tersebut)|ini|itu|namun|sementara itu|selain itu|"
    r"he|she|they|it|this|that|however)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d")
_DATE = re.compile(
    r"\b(\d{1,2}[/-]\d{1,2}[/-]\d{2,4}|\d{4}|senin|selasa|rabu|kamis|jumat|sabtu|minggu|januari|februari|maret|"
    r"april|mei|juni|juli|agustus|september|oktober|november|desember|pekan|bulan|tahun|hari|kemarin|pukul)\b",
    re.IGNORECASE,
)
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][a-zà-ÿ]+")
_QTYPE = [
    (
        "when",
        re.compile(
            r"\b(kapan|when|what (year|date|day|time)|tahun berapa|tanggal berapa|pukul berapa)\b", re.I
        ),
    ),
    ("number", re.compile(r"\b(berapa|how (many|much|long|old|far))\b", re.I)),
    ("who", re.compile(r"\b(siapa|siapakah|who|whom)\b", re.I)),
]


FEATURES = ("dense", "passage", "lexical", "answer_type", "peak", "entities", "english")


@dataclass
class SupportWeights:
    """A logistic model of "this sentence supports an answer", fitted by bench/calibrate.py.

    Fitted on 1,146 real questions (FacQA, IDK-MRC, TyDi QA, NTREX English) with half of their gold
    passages indexed: a question whose passage is indexed should be answered, one whose passage is absent
    refused. `min_support` refuses at most 10% of the answerable ones (see docs/benchmarks.md).
    """

    dense: float = 12.63  # cosine(question, sentence)
    passage: float = 9.14  # cosine(question, the sentence's chunk)
    lexical: float = 1.13  # share of the question's content words found in the sentence
    answer_type: float = -0.18  # a when/how-many/who question and a sentence with a date/number/name
    peak: float = 0.59  # how far the sentence stands out from the other candidate sentences
    entities: float = 1.34  # share of the question's names and numbers found in the sentence's passage
    english: float = 1.28  # English questions score lower against Indonesian text: their own offset
    bias: float = -20.62
    min_support: float = -0.63  # logit threshold: below it the best sentence does not support an answer

    def score(self, features: dict[str, float]) -> float:
        """The support logit of one sentence."""
        return self.bias + sum(getattr(self, name) * features[name] for name in FEATURES)


@dataclass
class Support:
    """One candidate sentence with its evidence."""

    passage: Passage
    passage_rank: int
    start: int  # offsets into passage.text
    end: int
    sentence_index: int
    score: float  # what orders the candidates: the ranker's logit when one rescored them, else `support`
    paragraph: int = 0
    features: dict[str, float] = field(default_factory=dict)
    support: float = 0.0  # the support logit: whether the sentence supports an answer at all (refusal)
    tokens: list[str] = field(default_factory=list)  # its content tokens (index.keyword.tokenize)

    @property
    def text(self) -> str:
        """The exact sentence text."""
        return self.passage.text[self.start : self.end]


def question_type(question: str) -> str | None:
    """'when', 'number', 'who' or None."""
    for name, pattern in _QTYPE:
        if pattern.search(question):
            return name
    return None


def _type_match(qtype: str | None, sentence: str) -> bool:
    if qtype == "when":
        return bool(_DATE.search(sentence))
    if qtype == "number":
        return bool(_NUMBER.search(sentence))
    if qtype == "who":
        return bool(_NAME.search(sentence))
    return False


class SentenceScorer:
    """Scores every sentence of the retrieved passages for how well it supports the question."""

    def __init__(self, embedder: Embedder, weights: SupportWeights | None = None, cache_size: int = 20000):
        self.embedder = embedder
        self.weights = weights or SupportWeights()
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def vectors(self, texts: list[str]) -> np.ndarray:
        """Passage vectors of texts, from an LRU cache (answers quote the same sentences again)."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for t, v in zip(missing, self.embedder.embed_passages(missing), strict=True):
                self._cache[t] = v
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        for t in texts:
            self._cache.move_to_end(t)
        return np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.embedder.dim))

    def score(
        self, question: str, query_vector: np.ndarray, passages: list[Passage], sentence_passages: int = 3
    ) -> list[Support]:
        """Distinct sentences of the top `sentence_passages` passages, best supported first.

        Only the best passages are split into sentences. Their vectors come with the passages (stored at
        index time); only an index built without them has its sentences embedded here.
        """
        w = self.weights
        qtokens = set(tokenize(question))
        qtype = question_type(question)
        entities = question_entities(question) - COMMON_CAPS
        english = float(detect_language(question) == "en")
        seen: set[tuple[str, int]] = set()
        cands: list[Support] = []
        stored: list[np.ndarray | None] = []  # each candidate's vector as indexed, when it was
        for rank, ps in enumerate(passages[:sentence_passages]):
            base = ps.meta["sentences"][0][2]
            rows = ps.sentence_vectors
            if rows is not None and len(rows) != len(ps.meta["sentences"]):
                rows = None  # not this chunk's sentences: embed them instead
            for row, (para, idx, start, end) in enumerate(ps.meta["sentences"]):
                key = (ps.article_id, idx)
                if key in seen:  # overlapping chunks repeat sentences
                    continue
                seen.add(key)
                cands.append(Support(ps, rank, start - base, end - base, idx, 0.0, para))
                stored.append(rows[row] if rows is not None else None)
        if not cands:
            return []
        missing = [c.text for c, v in zip(cands, stored, strict=True) if v is None]
        embedded = iter(self.vectors(missing)) if missing else iter(())
        sent_vecs = np.stack([v if v is not None else next(embedded) for v in stored])
        dense = sent_vecs @ query_vector
        passage_cos = [
            c.passage.dense
            if c.passage.dense is not None
            else float(self.vectors([c.passage.text])[0] @ query_vector)
            for c in cands
        ]
        mean_dense = float(dense.mean())
        for c, d, pc in zip(cands, dense, passage_cos, strict=True):
            c.tokens = tokenize(c.text)
            toks = set(c.tokens)
            c.features = {
                "dense": float(d),
                "passage": float(pc),
                "lexical": len(qtokens & toks) / len(qtokens) if qtokens else 0.0,
                "answer_type": float(_type_match(qtype, c.text)),
                "peak": float(d) - mean_dense,
                "entities": coverage(entities, c.passage.text),
                "english": english,
            }
            c.score = c.support = w.score(c.features)
        cands.sort(key=lambda c: -c.score)
        return cands


def rerank(passages: list[Passage], cands: list[Support]) -> list[Passage]:
    """Scored passages by their best sentence's support, then the unscored ones as they were."""
    best: dict[str, float] = {}
    for c in cands:
        best[c.passage.chunk_id] = max(best.get(c.passage.chunk_id, c.score), c.score)
    scored = sorted((p for p in passages if p.chunk_id in best), key=lambda p: -best[p.chunk_id])
    return scored + [p for p in passages if p.chunk_id not in best]


def select(
    cands: list[Support], max_sentences: int, margin: float = 0.5, other_margin: float | None = None
) -> list[Support]:
    """The best sentence, close runners-up, and the sentence an anaphoric best one leans on.

    A runner-up from the best sentence's article is quoted within `margin` of its score, one from another
    article only within `other_margin` (default: the same): a second article is cited only when it is nearly
    as good.
    """
    if not cands:
        return []
    best = cands[0]
    chosen = [best]
    other = margin if other_margin is None else other_margin
    for c in cands[1:]:
        if len(chosen) >= max_sentences:
            break
        if c.score >= best.score - (margin if c.passage.article_id == best.passage.article_id else other):
            chosen.append(c)
    by_key = {(c.passage.article_id, c.sentence_index): c for c in cands}
    for c in list(chosen):
        if _ANAPHORA.match(c.text.lstrip("\"'“ ")):
            prev = by_key.get((c.passage.article_id, c.sentence_index - 1))
            if prev is not None and prev not in chosen:
                chosen.append(prev)
    # read in article order within an article, articles in order of their best sentence
    first_seen: dict[str, int] = {}
    for i, c in enumerate(chosen):
        first_seen.setdefault(c.passage.article_id, i)
    return sorted(chosen, key=lambda c: (first_seen[c.passage.article_id], c.sentence_index))


class ExtractiveAnswerer:
    """The LLM-free answer over retrieved passages: the best-supported sentences, quoted and cited."""

    def __init__(
        self,
        scorer: SentenceScorer,
        max_sentences: int = 3,
        rerank_depth: int = 10,
        ranker: SentenceRanker | None = None,
        reading: tuple[Reader, SentenceRanker] | None = None,
    ):
        self.scorer = scorer
        self.max_sentences = max_sentences
        # The trained ranker picks the sentences; the support logit decides whether to answer at all (a
        # trained answerability model did not refuse better: train/README.md).
        self.ranker = ranker
        # KABAR_SCORER=reader: Indonesian questions' top passages are read by the span reader and ranked by
        # the model that also weighs its scores (English ones keep `ranker`: the reader learnt Indonesian)
        self.reading = reading
        # English questions: this many fused passages have their sentences scored and are reranked by the
        # best one (the vectors are stored, so deeper costs no embedding). 10 brings cross-lingual gold
        # passages up from ranks 4-10: chosen on NTREX sentences the eval never asks (bench/rerank_study.py,
        # R@1 0.756 at 3, 0.797 at 10 over 3,572 articles; docs/evaluation.md).
        self.rerank_depth = max(3, rerank_depth)

    def depth(self, question: str, top_k: int) -> int:
        """How many passages to retrieve for answering `question` with `top_k` of them."""
        return max(top_k, self.rerank_depth) if detect_language(question) == "en" else top_k

    def answer(
        self,
        question: str,
        standalone: str,
        language: str,
        result: SearchResult,
        top_k: int | None = None,
        previous: Answer | None = None,
    ) -> Answer:
        """Cited sentences of `result` that support `standalone`, or the refusal when none does.

        `previous` is the answer a follow-up leans on: its sentences are what the user already has, so
        they are quoted again only when no other sentence supports the follow-up.
        """
        passages = result.passages
        k = top_k or len(passages)
        if detect_language(standalone) == "en":
            # A cross-lingual chunk cosine is diluted by the chunk's other sentences; the best sentence's
            # support is not (on Indonesian questions the fused order is better: docs/evaluation.md).
            cands = self.scorer.score(standalone, result.query_vector, passages, self.rerank_depth)
            passages = rerank(passages, cands)[:k]
            kept = {p.chunk_id for p in passages}
            cands = [c for c in cands if c.passage.chunk_id in kept]
        else:
            passages = passages[:k]
            cands = self.scorer.score(standalone, result.query_vector, passages)
        ranker, reader = self.ranker, None
        if self.reading is not None and detect_language(standalone) != "en":
            reader, ranker = self.reading
        answerable = None
        if ranker is not None:
            if reader is not None:
                answerable = add_reader_features(reader, standalone, cands)
            cands = ranker.rescore(standalone, cands)
        if previous is not None:
            cands = self._followup(question, cands, previous, ranker, reader)
        support = self.support(cands)
        chosen: list[Support] = []
        if self.supported(support, answerable, reader):
            margins = (ranker.margin, ranker.other_margin) if ranker else (0.5, None)
            chosen = select(cands, self.max_sentences, *margins)
        answer = render(question, language, chosen)
        answer.retrieved = [p.chunk_id for p in passages]
        answer.support = support
        answer.answerable = answerable
        return answer

    def supported(self, support: float | None, answerable: float | None, reader: Reader | None) -> bool:
        """Whether to answer: the best sentence's support clears `min_support` and, when the reader read
        the passages with an answerability head and has a threshold for it, its logit clears that too."""
        if support is None or support < self.min_support:
            return False
        floor = None if reader is None else reader.answer_threshold
        return answerable is None or floor is None or answerable >= floor

    @property
    def min_support(self) -> float:
        """The support logit below which the answer is refused."""
        return self.scorer.weights.min_support

    @staticmethod
    def support(cands: list[Support]) -> float | None:
        """How well the candidates support an answer: the best support logit (None without candidates)."""
        return max(c.support for c in cands) if cands else None

    def _followup(
        self,
        question: str,
        cands: list[Support],
        previous: Answer,
        ranker: SentenceRanker | None,
        reader: Reader | None,
    ) -> list[Support]:
        """Rescore for a follow-up: its own words weigh as much as the resolved question's (which holds
        the previous question, and so favours the previous answer), and the quoted sentences go last."""
        own_vector = self.scorer.embedder.embed_queries([question])[0]
        own = self.scorer.score(question, own_vector, [c.passage for c in cands], len(cands))
        if ranker is not None:
            if reader is not None:
                add_reader_features(reader, question, own)
            own = ranker.rescore(question, own)  # the support logits stay as scored
        by_key = {(c.passage.article_id, c.sentence_index): c for c in own}
        for c in cands:
            o = by_key.get((c.passage.article_id, c.sentence_index), c)
            c.score, c.support = (c.score + o.score) / 2, (c.support + o.support) / 2
        cands.sort(key=lambda c: -c.score)
        said = [(c.article_id, c.quote) for c in previous.citations]
        new = [c for c in cands if not any(a == c.passage.article_id and c.text in q for a, q in said)]
        # without the sentences `previous` quoted, when one of the rest still answers
        support = self.support(new)
        return new if support is not None and support >= self.min_support else cands


def render(question: str, language: str, chosen: list[Support]) -> Answer:
    """The extractive answer: one quote per run of adjacent sentences, each cited; or the refusal."""
    if not chosen:
        return Answer.refusal(question, language)
    citations: list[Citation] = []
    lines: list[str] = []
    marked = _marked_sentence(question, chosen)
    for group in _adjacent_groups(chosen):
        first, last = group[0], group[-1]
        n = len(citations) + 1
        score = max(s.score for s in group)
        if all(s.passage is first.passage for s in group):
            citation = Citation.of(n, first.passage, first.start, last.end, score)
        else:  # adjacent sentences from two overlapping chunks
            citation = Citation.of(n, first.passage, first.start, first.end, score)
            citation.quote = _join(group)
        if marked is not None and marked[0] in group:
            at = citation.quote.find(marked[0].text)
            if at >= 0:
                citation.answer_span = (at + marked[1][0], at + marked[1][1])
        citations.append(citation)
        lines.append(f"{' '.join(citation.quote.split())} [{n}]")  # one line even when it spans paragraphs
    text = prompts.load("extractive_frame", language).render(sentences="\n".join(lines))
    return Answer(question, text, False, citations, language)


def _marked_sentence(question: str, chosen: list[Support]) -> tuple[Support, tuple[int, int]] | None:
    """The quoted sentence whose phrase of the asked kind sits nearest the question's words (the better
    supported on a tie), with that phrase's offsets."""
    found = [(sp[0][0], s.score, s, sp[0][1]) for s in chosen if (sp := scored_spans(question, s.text))]
    if not found:
        return None
    # closeness counts the question's words near the phrase (a few per sentence); support logits differ by
    # about one between a quoted answer and a runner-up: both matter, the support more for English questions,
    # whose words rarely appear in Indonesian text
    _, _, sentence, span = max(found, key=lambda f: f[0] + 4 * f[1])
    return sentence, span


def _join(group: list[Support]) -> str:
    """Adjacent sentences from different chunks, joined as the cleaned article joins them."""
    out = group[0].text
    for prev, s in zip(group, group[1:], strict=False):
        out += ("\n\n" if s.paragraph != prev.paragraph else " ") + s.text
    return out


def _adjacent_groups(chosen: list[Support]) -> list[list[Support]]:
    """Consecutive sentences of one article become one quote."""
    groups: list[list[Support]] = []
    for s in chosen:
        if groups:
            last = groups[-1][-1]
            if (
                last.passage.article_id == s.passage.article_id
                and s.sentence_index == last.sentence_index + 1
            ):
                groups[-1].append(s)
                continue
        groups.append([s])
    return groups
