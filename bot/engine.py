"""The one answer engine every front end calls: question (+ history) -> Answer with citations."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import prompts
from bot.extractive import SentenceScorer, Support, SupportWeights, rerank, select
from index.errors import KabarError
from index.keyword import tokenize
from index.lang import detect_language
from index.search import Searcher
from index.types import Answer, Citation

if TYPE_CHECKING:
    from bot.generate import Generator
    from bot.llm import LLM, OnToken
    from bot.verify import VerifyParams

log = logging.getLogger(__name__)

# Follow-ups that lean on the conversation: pronouns and "and ...?" openings, in both languages.
_FOLLOWUP = re.compile(
    r"\b(it|its|he|him|his|she|her|they|them|their|that|this|those|these|there|then|also|"
    r"ia|dia|beliau|mereka|nya|itu|ini|tersebut|sana|juga)\b"
    r"|^(and|dan|lalu|kemudian|terus|bagaimana dengan|what about|how about)\b",
    re.IGNORECASE,
)


@dataclass
class Turn:
    """One exchange of a conversation."""

    question: str
    answer: Answer


def standalone_question(question: str, history: Sequence[Turn]) -> str:
    """Resolve a follow-up against the conversation: prepend the previous question when it leans on it."""
    if not history:
        return question
    previous = history[-1].answer.standalone_question or history[-1].question
    if _FOLLOWUP.search(question) or len(tokenize(question)) <= 2:
        return f"{previous} {question}"
    return question


class LLMNotConfigured(KabarError):
    """An LLM answer was asked for but KABAR_LLM is none."""


class Engine:
    """Retrieves passages and builds a cited answer, or refuses when the articles do not support one."""

    def __init__(
        self,
        searcher: Searcher,
        *,
        top_k: int = 5,
        weights: SupportWeights | None = None,
        max_sentences: int = 3,
        llm: LLM | None = None,
        verify: VerifyParams | None = None,
    ):
        self.searcher = searcher
        self.top_k = top_k
        self.scorer = SentenceScorer(searcher.embedder, weights)
        self.max_sentences = max_sentences
        self.llm = llm
        self.generator: Generator | None = None
        if llm is not None:
            from bot.generate import Generator
            from bot.verify import Verifier

            verifier = Verifier(searcher.embedder, verify, vectors=self.scorer._vectors)
            self.generator = Generator(llm, searcher, verifier, self._extractive, top_k=top_k)

    def uses_llm(self, use_llm: bool | None = None) -> bool:
        """Whether an answer asked with `use_llm` is generated: None means "when an LLM is configured"."""
        return self.generator is not None if use_llm is None else use_llm

    def answer(
        self,
        question: str,
        history: Sequence[Turn] = (),
        top_k: int | None = None,
        use_llm: bool | None = None,
        on_token: OnToken | None = None,
    ) -> Answer:
        """Answer one question; `history` holds the earlier turns of the same conversation.

        With an LLM (the default when one is configured; `use_llm` overrides) the answer is generated and
        its citations verified, streamed to `on_token` as it comes; otherwise it is extractive.
        """
        if self.uses_llm(use_llm):
            if self.generator is None:
                raise LLMNotConfigured("no LLM is configured: set KABAR_LLM=openai or KABAR_LLM=llamacpp")
            self.generator.searcher = self.searcher  # whoever swapped engine.searcher (eval) is seen
            return self.generator.answer(question, history, top_k, on_token)
        return self._extractive(question, history, top_k)

    def _extractive(self, question: str, history: Sequence[Turn] = (), top_k: int | None = None) -> Answer:
        t0 = time.perf_counter()
        question = question.strip()
        language = detect_language(question, default=history[-1].answer.language if history else "id")
        standalone = standalone_question(question, history)
        result = self.searcher.search(standalone, top_k or self.top_k)
        t1 = time.perf_counter()
        cands = self.scorer.score(standalone, result.query_vector, result.passages)
        passages = result.passages
        if detect_language(standalone) == "en":
            # A cross-lingual chunk cosine is diluted by the chunk's other sentences; the best sentence's
            # support is not (on Indonesian questions the fused order is better: docs/evaluation.md).
            passages = rerank(passages, cands)
        chosen = (
            select(cands, self.max_sentences)
            if cands and cands[0].score >= self.scorer.weights.min_support
            else []
        )
        answer = self._render(question, language, chosen)
        answer.standalone_question = standalone
        answer.retrieved = [p.chunk_id for p in passages]
        t2 = time.perf_counter()
        answer.timings_ms = {"retrieve": (t1 - t0) * 1e3, "answer": (t2 - t1) * 1e3, "total": (t2 - t0) * 1e3}
        answer.support = cands[0].score if cands else None
        return answer

    def _render(self, question: str, language: str, chosen: list[Support]) -> Answer:
        if not chosen:
            return Answer(question, prompts.load("refusal", language).render(), True, [], language)
        citations: list[Citation] = []
        lines: list[str] = []
        for group in _adjacent_groups(chosen):
            first, last = group[0], group[-1]
            ps = first.passage
            same_chunk = all(s.passage is ps for s in group)
            quote = ps.text[first.start : last.end] if same_chunk else _join(group)
            n = len(citations) + 1
            citations.append(
                Citation(
                    n=n,
                    article_id=ps.article_id,
                    title=ps.meta.get("title"),
                    source=ps.meta.get("source"),
                    date=ps.meta.get("date"),
                    path=ps.meta.get("path"),
                    quote=quote,
                    score=round(max(s.score for s in group), 4),
                    publisher=ps.meta.get("publisher"),
                    url=ps.meta.get("url"),
                    chunk_id=ps.chunk_id,
                )
            )
            lines.append(f"{' '.join(quote.split())} [{n}]")  # one line even when it spans paragraphs
        text = prompts.load("extractive_frame", language).render(sentences="\n".join(lines))
        return Answer(question, text, False, citations, language)


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
