"""The index side's data types: Article, Sentence, Chunk, Passage (answers are in bot/answer/types.py)."""

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


@dataclass(frozen=True)
class ChunkParams:
    """How articles are cut into chunks (part of an index's identity: changing it needs a rebuild)."""

    target_tokens: int = 160
    overlap: int = 1


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
class ChunkVectors:
    """A chunk's stored vector and, when stored, its sentences' vectors (rows in sentence order)."""

    vector: Any
    sentences: Any = None


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
    sentence_vectors: Any = None  # its sentences' stored embeddings (rows in `meta["sentences"]` order)

    @property
    def title(self) -> str | None:
        """The article title."""
        return self.meta.get("title")
