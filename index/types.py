"""Kabar's data types, in one place."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any


def content_hash(text: str) -> str:
    """Stable hash of a text (hex sha256, first 16 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass
class Article:
    """One cleaned news article, ready to chunk."""

    article_id: str
    text: str  # cleaned body; paragraphs separated by a blank line
    title: str | None = None
    publisher: str | None = None  # who published it, e.g. "INDOZONE.ID"
    source: str | None = None  # original source, e.g. "Channelnewsasia.com"
    date: str | None = None  # ISO date (YYYY-MM-DD) when known
    url: str | None = None
    path: str | None = None  # file it came from (plus "#doc_id" for JSON records)
    raw_hash: str | None = None  # hash of the raw file or record it was read from (see index.load)

    @property
    def content_hash(self) -> str:
        """Hash of what is embedded: title, date and cleaned text."""
        return content_hash("\x1f".join([self.title or "", self.date or "", self.text]))

    def meta(self) -> dict[str, Any]:
        """Metadata without the text, for storage."""
        d = asdict(self)
        d.pop("text")
        return d


@dataclass
class Sentence:
    """A sentence and where it sits in its article."""

    text: str
    paragraph: int  # 0-based paragraph index
    index: int  # 0-based sentence index within the article
    start: int  # character offsets into Article.text
    end: int


@dataclass
class Chunk:
    """A run of consecutive sentences of one article: the unit that is embedded and retrieved."""

    article_id: str
    chunk_no: int
    text: str  # the exact article text of the sentences (what is quoted)
    sentences: list[Sentence]
    context: str = ""  # title/date line prepended for embedding only

    @property
    def chunk_id(self) -> str:
        """Deterministic id: `article_id:chunk_no`."""
        return f"{self.article_id}:{self.chunk_no}"

    @property
    def embed_text(self) -> str:
        """What the embedder reads: context line, then the text."""
        return f"{self.context}\n{self.text}" if self.context else self.text

    @property
    def first_sentence(self) -> int:
        """Index of the chunk's first sentence in its article."""
        return self.sentences[0].index

    @property
    def last_sentence(self) -> int:
        """Index of the chunk's last sentence in its article."""
        return self.sentences[-1].index


@dataclass
class Passage:
    """A retrieved chunk with its article's metadata and retrieval scores."""

    chunk_id: str
    article_id: str
    text: str
    score: float
    meta: dict[str, Any] = field(default_factory=dict)  # title, date, source, publisher, url, path, ...
    dense: float | None = None  # cosine similarity to the query, when known
    keyword: float | None = None  # BM25 score, when known
    vector: Any = None  # the chunk's stored embedding (numpy array), when fetched

    @property
    def title(self) -> str | None:
        """The article title."""
        return self.meta.get("title")


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
    notice: str | None = None  # e.g. why an LLM answer fell back to the extractive one
    checked_sentences: int = 0  # LLM mode: answer sentences whose citations were verified
    dropped_sentences: int = 0  # LLM mode: of those, removed for lacking a supporting citation
    retrieved: list[str] = field(default_factory=list)  # chunk ids the answer was drawn from, best first

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
            "notice": self.notice,
            "checked_sentences": self.checked_sentences,
            "dropped_sentences": self.dropped_sentences,
            "retrieved": self.retrieved,
        }
