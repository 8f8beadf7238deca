"""What the answer side hands the front ends: Answer, Citation, Turn, and why an LLM answer failed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

import prompts
from index.types import Passage


@dataclass
class Citation:
    """One numbered source of an answer; `quote` is the exact supporting article text."""

    n: int
    article_id: str
    title: str | None
    source: str | None
    date: str | None
    path: str | None
    quote: str
    score: float
    publisher: str | None = None
    url: str | None = None
    chunk_id: str | None = None
    answer_span: tuple[int, int] | None = None  # the answer's character offsets inside `quote`, when marked

    @classmethod
    def of(cls, n: int, passage: Passage, start: int, end: int, score: float) -> Citation:
        """Citation number `n` quoting `passage.text[start:end]`: the one place a citation is built."""
        meta = passage.meta
        return cls(
            n=n,
            article_id=passage.article_id,
            title=meta.get("title"),
            source=meta.get("source"),
            date=meta.get("date"),
            path=meta.get("path"),
            quote=passage.text[start:end],
            score=round(score, 4),
            publisher=meta.get("publisher"),
            url=meta.get("url"),
            chunk_id=passage.chunk_id,
        )


@dataclass
class Answer:
    """What every front end renders: text with [n] markers, its citations, and whether it refused."""

    question: str
    answer: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    language: str = "id"
    timings_ms: dict[str, float] = field(default_factory=dict)
    mode: str = "extractive"
    standalone_question: str | None = None  # the question after follow-up resolution
    support: float | None = None  # support score of the best sentence (refusal compares it to a threshold)
    answerable: float | None = None  # the span reader's answerability logit (KABAR_SCORER=reader), if read
    notice: str | None = None  # e.g. why an LLM answer fell back to the extractive one
    checked_sentences: int = 0  # LLM mode: answer sentences whose citations were verified
    dropped_sentences: int = 0  # LLM mode: of those, removed for lacking a supporting citation
    retrieved: list[str] = field(default_factory=list)  # chunk ids the answer was drawn from, best first
    attributed_by_kabar: int = 0  # LLM mode: kept sentences Kabar found the citation for (none or wrong)
    attributed_by_model: int = 0  # LLM mode: kept sentences whose own citation verified
    prompt_tokens: int | None = None  # LLM mode: tokens of the answer prompt (e5 tokenizer)

    def marked_spans(self) -> list[tuple[int, int]]:
        """Where the citations' marked answers are in `answer` (whose lines hold each quote on one line)."""
        spans = []
        for c in self.citations:
            if c.answer_span is None:
                continue
            a, b = c.answer_span
            # markers survive whitespace collapsing, so they say where the span lands on the one-line quote
            marked = " ".join(f"{c.quote[:a]}\0{c.quote[a:b]}\1{c.quote[b:]}".split())
            at = self.answer.find(marked.replace("\0", "").replace("\1", ""))
            if at >= 0:
                spans.append((at + marked.index("\0"), at + marked.index("\1") - 1))
        return spans

    @classmethod
    def refusal(cls, question: str, language: str, mode: str = "extractive") -> Answer:
        """The fixed "not in the articles" answer, in the question's language."""
        return cls(question, prompts.load("refusal", language).render(), True, [], language, mode=mode)

    def to_json(self) -> dict[str, Any]:
        """The `--json` contract."""
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "citations": [asdict(c) for c in self.citations],
            "timings_ms": {k: round(v, 1) for k, v in self.timings_ms.items()},
            "language": self.language,
            "mode": self.mode,
            "standalone_question": self.standalone_question,
            "support": None if self.support is None else round(self.support, 4),
            "answerable": None if self.answerable is None else round(self.answerable, 4),
            "notice": self.notice,
            "checked_sentences": self.checked_sentences,
            "dropped_sentences": self.dropped_sentences,
            "retrieved": self.retrieved,
            "attributed_by_kabar": self.attributed_by_kabar,
            "attributed_by_model": self.attributed_by_model,
            "prompt_tokens": self.prompt_tokens,
        }


@dataclass
class Turn:
    """One exchange of a conversation."""

    question: str
    answer: Answer


class Failure(Enum):
    """Why an LLM gave no usable answer (the engine then answers extractively, with a notice)."""

    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"
    HTTP_ERROR = "http error"
    MALFORMED = "malformed reply"
    EMPTY = "empty reply"
    NO_CITATIONS = "no citations"  # no marker, and no sentence Kabar could attribute either
    UNSUPPORTED = "no verified sentence"  # markers, but no sentence any passage supports
