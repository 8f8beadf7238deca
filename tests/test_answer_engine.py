"""The engine's one way through a question (fast tier: fake embedder, fake LLM, a real Store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SEED, FakeEmbedder, FakeLLM
from llm_server import passage_no

from bot.answer.engine import Engine
from bot.answer.llm import LLMError, LLMTimeout
from bot.answer.types import Answer, Failure, Turn
from bot.answer.verify import VerifyParams
from bot.app import engine_for
from index.ingest import index_paths
from index.search import Searcher, SearchResult
from index.store import Store

ZINOVIEV = "duta besar Rusia untuk Korea Selatan, Georgiy Zinoviev"
QUESTION = "Siapa duta besar Rusia untuk Korea Selatan?"


class CountingSearcher(Searcher):
    """The real searcher, counting its searches."""

    def __init__(self, inner: Searcher):
        super().__init__(inner.store, inner.embedder, inner.params)
        self.queries: list[str] = []

    def search(self, query: str, top_k: int = 5, query_vector: np.ndarray | None = None) -> SearchResult:
        self.queries.append(query)
        return super().search(query, top_k, query_vector)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    embedder = FakeEmbedder()
    store = Store(tmp_path_factory.mktemp("engine-index"), embedder.name, embedder.dim)
    index_paths([SEED], store, embedder)
    return store


@pytest.fixture
def searcher(store: Store) -> CountingSearcher:
    return CountingSearcher(Searcher(store, FakeEmbedder()))


@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM()


@pytest.fixture
def engine(searcher: CountingSearcher, llm: FakeLLM) -> Engine:
    return engine_for(searcher, llm, verify=VerifyParams(min_support=1.2))


def test_an_llm_answer_retrieves_once(engine: Engine, searcher: CountingSearcher, llm: FakeLLM) -> None:
    llm.script(
        lambda b: f"Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [{passage_no(b, ZINOVIEV)}]."
    )
    answer = engine.answer(QUESTION)
    assert answer.mode == "llm" and not answer.refused
    assert searcher.queries == [QUESTION] and len(llm.requests) == 1
    assert answer.retrieved and answer.citations[0].chunk_id in answer.retrieved
    assert {"condense", "retrieve", "generate", "verify", "answer", "total"} <= answer.timings_ms.keys()


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (LLMTimeout("slow"), "timeout"),
        (LLMError("down", Failure.UNREACHABLE), "unreachable"),
        (LLMError("HTTP 429", Failure.HTTP_ERROR, 429), "HTTP 429"),
        (LLMError("nothing", Failure.EMPTY), "empty reply"),
        ("Duta besarnya Georgiy Zinoviev.", "no citations"),
    ],
)
def test_a_failed_llm_answer_is_the_extractive_one_from_the_same_passages(
    engine: Engine, searcher: CountingSearcher, llm: FakeLLM, failure: object, reason: str
) -> None:
    llm.script(failure)
    answer = engine.answer(QUESTION)
    assert searcher.queries == [QUESTION]  # the fallback did not search again
    assert answer.mode == "extractive" and answer.notice and f"({reason})" in answer.notice
    plain = engine.answer(QUESTION, use_llm=False)
    assert (answer.answer, answer.citations, answer.retrieved) == (
        plain.answer,
        plain.citations,
        plain.retrieved,
    )


def test_a_follow_up_is_condensed_then_retrieved_once(
    engine: Engine, searcher: CountingSearcher, llm: FakeLLM
) -> None:
    first = Answer(QUESTION, "Georgiy Zinoviev [1].", False, language="id", standalone_question=QUESTION)
    llm.script("Apa yang dikatakan Georgiy Zinoviev?", LLMTimeout("slow"))
    answer = engine.answer("Apa katanya?", history=[Turn(QUESTION, first)])
    assert searcher.queries == ["Apa yang dikatakan Georgiy Zinoviev?"]
    assert answer.standalone_question == "Apa yang dikatakan Georgiy Zinoviev?"
    assert answer.mode == "extractive" and answer.notice and "(timeout)" in answer.notice


def test_condense_failing_keeps_the_heuristic_question_and_asks_no_more(
    engine: Engine, searcher: CountingSearcher, llm: FakeLLM
) -> None:
    first = Answer(QUESTION, "Georgiy Zinoviev [1].", False, language="id", standalone_question=QUESTION)
    llm.script(LLMError("down", Failure.UNREACHABLE))
    answer = engine.answer("Apa katanya?", history=[Turn(QUESTION, first)])
    assert searcher.queries == [f"{QUESTION} Apa katanya?"] and len(llm.requests) == 1
    assert answer.notice and "(unreachable)" in answer.notice


def test_without_passages_the_llm_is_not_asked(tmp_path: Path, llm: FakeLLM) -> None:
    empty = Store(tmp_path, FakeEmbedder.name, FakeEmbedder.dim)
    engine = engine_for(Searcher(empty, FakeEmbedder()), llm)
    answer = engine.answer(QUESTION)
    assert answer.refused and answer.mode == "llm" and llm.requests == []


def test_the_refusal_is_in_the_question_language(engine: Engine) -> None:
    en = Answer.refusal("Who won?", "en")
    assert en.refused and en.citations == [] and "couldn't find" in en.answer
    assert "tidak ada dalam artikel" in Answer.refusal("Siapa?", "id").answer
