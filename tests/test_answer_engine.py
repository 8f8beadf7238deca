"""The engine's one way through a question (fast tier: fake embedder, fake LLM, a real Store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SEED, FakeEmbedder, FakeLLM, fake_verify
from llm_server import passage_no

from bot.answer.engine import Engine
from bot.answer.extractive import ExtractiveAnswerer, SentenceScorer
from bot.answer.llm import LLMError, LLMTimeout
from bot.answer.types import Answer, Failure, Turn
from bot.app import engine_for
from index.ingest import index_paths
from index.search import Searcher, SearchResult
from index.store import Store
from index.types import Passage

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
    return engine_for(searcher, llm, verify=fake_verify())


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
        ("Hubungan kedua negara sangat hangat sejak 1990.", "no citations"),
        ("Zinoviev menolak menghadiri pertemuan di Seoul pada 1999 [1].", "no verified sentence"),
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


def _passage(n: int, text: str, vector: np.ndarray) -> Passage:
    """A one-sentence passage whose stored vectors are `vector`."""
    meta = {"sentences": [[0, 0, 0, len(text)]], "title": f"t{n}"}
    return Passage(
        f"a{n}:0", f"a{n}", text, 1.0 - n / 10, meta, dense=0.1, vector=vector, sentence_vectors=vector[None]
    )


@pytest.mark.parametrize(("depth", "found"), [(10, True), (3, False)])
def test_english_questions_rerank_the_top_ten_by_their_best_sentence(depth: int, found: bool) -> None:
    """The sentence that answers sits in the 8th fused passage: reranking 10 deep brings it up first."""
    rng = np.random.default_rng(3)
    q = np.zeros(64, np.float32)
    q[0] = 1.0
    passages = []
    for n in range(10):
        v = rng.standard_normal(64).astype(np.float32)
        v[0] = 0.0
        v = q.copy() if n == 7 else v / np.linalg.norm(v)
        passages.append(_passage(n, f"Kalimat nomor {n} tentang Jakarta.", v))
    extractive = ExtractiveAnswerer(SentenceScorer(FakeEmbedder()), rerank_depth=depth)
    question = "What does sentence seven say about Jakarta?"
    k = 5
    assert extractive.depth(question, k) == max(depth, k)
    result = SearchResult(passages[: extractive.depth(question, k)], q, {})
    answer = extractive.answer(question, question, "en", result, k)
    assert len(answer.retrieved) == k
    assert (answer.retrieved[0] == "a7:0") == found
    assert extractive.depth("Apa kata kalimat tujuh?", k) == k  # Indonesian questions: the fused order
