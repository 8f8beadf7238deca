"""Wiring: build the embedder, store, searcher and engine from Settings (the one place that does)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bot.engine import Engine
from bot.extractive import SupportWeights
from bot.llm import LLM, make_llm
from bot.settings import Settings
from index.embed import Embedder, load_embedder
from index.search import Searcher
from index.store import Store

log = logging.getLogger(__name__)


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

    from index.embed import LlamaIndexEmbedding

    LlamaSettings.llm = MockLLM()  # the extractive mode needs no LLM; never fall back to OpenAI
    LlamaSettings.embed_model = LlamaIndexEmbedding(embedder)


@dataclass
class Kabar:
    """Everything a front end needs, built once."""

    settings: Settings
    data_dir: Path
    embedder: Embedder
    store: Store
    engine: Engine
    llm: LLM | None = None

    def close(self) -> None:
        """Release the store (and the LLM's connections)."""
        self.store.close()
        if self.llm is not None:
            self.llm.close()


def build(
    settings: Settings,
    data_dir: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Kabar:
    """Load the embedding model (rebuilding the bundled one on first use) and open the index."""
    quiet_environment()
    data = settings.data_dir(data_dir)
    embedder = load_embedder(
        settings.embed_model,
        settings.cache_dir,
        query_prefix=settings.query_prefix,
        passage_prefix=settings.passage_prefix,
        progress=progress,
    )
    configure_llama_index(embedder)
    store = Store(data, embedder.name, embedder.dim)
    llm = make_llm(settings)  # None unless KABAR_LLM selects one
    weights = SupportWeights()
    if settings.min_support is not None:
        weights.min_support = settings.min_support
    engine = Engine(
        Searcher(store, embedder),
        top_k=settings.top_k,
        weights=weights,
        max_sentences=settings.max_answer_sentences,
        llm=llm,
    )
    return Kabar(settings, data, embedder, store, engine, llm)
