"""The answer engine on the seed article with the real model: cited answers, refusals, follow-ups."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SEED

from bot.answer.engine import Engine
from bot.answer.followup import standalone_question
from bot.answer.types import Answer, Turn
from bot.app import engine_for
from index.load import load_articles
from index.search import Searcher
from index.store import Store

pytestmark = pytest.mark.integration

GAIN = (
    "kemungkinan ingin memperoleh teknologi militer dari Rusia, termasuk satelit pengawasan dan kapal selam"
)


@pytest.fixture(scope="module")
def engine(seed_index: Path, real_embedder) -> Engine:
    store = Store(seed_index, real_embedder.name, real_embedder.dim)
    return engine_for(Searcher(store, real_embedder))


@pytest.fixture(scope="module")
def seed_text() -> str:
    (article,) = load_articles([SEED])
    return article.text


@pytest.mark.parametrize(
    ("question", "expected", "language"),
    [
        ("What does Cheong Seong-chang expect Kim Jong Un to gain?", GAIN, "en"),
        ("Apa yang ingin diperoleh Kim Jong Un dari Rusia?", GAIN, "id"),
        ("Siapa duta besar Rusia untuk Korea Selatan?", "Georgiy Zinoviev", "id"),
        ("Berapa kontainer amunisi yang dikirim Korea Utara ke Rusia?", "13.000 kontainer", "id"),
        ("How many North Korean special forces soldiers are already in Russia?", "1.500 prajurit", "en"),
        (
            "What did the Kremlin spokesman say about the cooperation?",
            "Moskow akan melanjutkan kerja sama",
            "en",
        ),
        ("Kapan Korea Utara mengirim pasukan khususnya ke Rusia?", "antara 8 hingga 13 Oktober", "id"),
    ],
)
def test_answers_cite_the_supporting_seed_sentence(
    engine: Engine, seed_text: str, question: str, expected: str, language: str
) -> None:
    answer = engine.answer(question)
    assert not answer.refused, answer.answer
    assert answer.language == language
    assert expected in answer.answer
    cited = [c for c in answer.citations if expected in c.quote]
    assert cited, [c.quote for c in answer.citations]
    for c in answer.citations:
        assert c.quote in seed_text  # quotes are exact article text
        assert f"[{c.n}]" in answer.answer
        assert c.path and c.path.endswith("000_e425e8bd6ae908eb.txt")
        assert c.date == "2024-10-21"


def test_answer_keeps_the_sentence_that_says_who_ia_is(engine: Engine) -> None:
    answer = engine.answer("What does Cheong Seong-chang expect Kim Jong Un to gain?")
    assert (
        "Cheong Seong-chang" in answer.answer
    )  # the "Ia menambahkan ..." sentence comes with its antecedent


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("Who won the 2022 World Cup?", "en"),
        ("What is the capital of France?", "en"),
        ("Siapa pemenang Piala Dunia 2022?", "id"),
        ("Berapa harga beras di Jakarta hari ini?", "id"),
        ("How do I bake sourdough bread?", "en"),
    ],
)
def test_unrelated_questions_are_refused_in_their_language(
    engine: Engine, question: str, language: str
) -> None:
    answer = engine.answer(question)
    assert answer.refused, answer.answer
    assert answer.citations == []
    assert answer.language == language
    assert ("articles" in answer.answer) == (language == "en")
    assert ("artikel" in answer.answer) == (language == "id")


@pytest.mark.parametrize(
    "question",
    [
        pytest.param(
            "What did Cheong Seong-chang say about Japan's defence budget?",
            # his name and the topic match a sentence of his (support -0.56 against a -0.63 threshold) and
            # nothing scores whether a sentence answers: docs/evaluation.md, the refusal gap
            marks=pytest.mark.xfail(strict=True, reason="answered: support does not read for an answer"),
        ),
        "Berapa anggaran pertahanan Jepang menurut Cheong Seong-chang?",
        "Siapa nama istri Cheong Seong-chang?",
    ],
)
def test_questions_about_the_article_it_does_not_answer_are_refused(engine: Engine, question: str) -> None:
    answer = engine.answer(question)
    assert answer.refused, answer.answer


def test_follow_up_is_resolved_against_the_conversation(engine: Engine) -> None:
    first = engine.answer("Why did South Korea summon the Russian ambassador?")
    assert not first.refused
    follow = engine.answer("And what did Peskov say about it?", history=[Turn(first.question, first)])
    assert not follow.refused
    assert "Peskov" in follow.standalone_question and "ambassador" in follow.standalone_question
    assert any("Moskow akan melanjutkan" in c.quote or "Peskov" in c.quote for c in follow.citations)


@pytest.mark.parametrize(
    ("first_question", "follow_up", "expected"),
    [
        (
            "Why does South Korea refuse to supply weapons to Ukraine?",
            "Which country has it sold billions of dollars of weapons to?",
            "Polandia",
        ),
        (
            "Siapa yang diajak bicara Presiden Yoon Suk Yeol?",
            "Apa kata Rutte tentang pengiriman pasukan itu?",
            "eskalasi besar",
        ),
    ],
)
def test_a_follow_up_gets_a_new_fact_not_the_previous_answer(
    engine: Engine, first_question: str, follow_up: str, expected: str
) -> None:
    first = engine.answer(first_question)
    follow = engine.answer(follow_up, history=[Turn(first_question, first)])
    assert not follow.refused, follow.answer
    assert any(expected in c.quote for c in follow.citations), follow.answer
    assert [c.quote for c in follow.citations] != [c.quote for c in first.citations]


def test_a_follow_up_the_article_does_not_answer_is_refused(engine: Engine) -> None:
    first = engine.answer("What does Cheong Seong-chang expect Kim Jong Un to gain?")
    follow = engine.answer(
        "What did he say about Japan's defence budget?", history=[Turn(first.question, first)]
    )
    assert follow.refused, follow.answer


def test_standalone_question_leaves_self_contained_questions_alone() -> None:
    prev = Answer("Siapa Zinoviev?", "...", False, standalone_question="Siapa Zinoviev?")
    history = [Turn("Siapa Zinoviev?", prev)]
    assert standalone_question("Berapa kontainer amunisi yang dikirim Korea Utara?", history).startswith(
        "Berapa"
    )
    assert (
        standalone_question("Apa katanya tentang itu?", history) == "Siapa Zinoviev? Apa katanya tentang itu?"
    )
    assert standalone_question("Apa katanya tentang itu?", []) == "Apa katanya tentang itu?"


def test_json_contract(engine: Engine) -> None:
    data = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?").to_json()
    assert {"question", "answer", "refused", "citations", "timings_ms"} <= data.keys()
    assert {"retrieve", "answer", "total"} <= data["timings_ms"].keys()
    citation = data["citations"][0]
    assert {"n", "article_id", "title", "source", "date", "path", "quote", "score"} <= citation.keys()
    assert citation["n"] == 1 and citation["source"] == "Channelnewsasia.com"
    assert citation["publisher"] == "INDOZONE.ID"


def test_english_questions_rank_passages_by_their_best_sentence(engine: Engine) -> None:
    question = "What does Cheong Seong-chang expect Kim Jong Un to gain?"
    answer = engine.answer(question)
    depth = engine.extractive.depth(question, engine.top_k)  # English: the rerank's depth (10), not top_k
    assert depth == max(engine.top_k, engine.extractive.rerank_depth)
    fused = [p.chunk_id for p in engine.searcher.search(question, depth).passages]
    assert set(answer.retrieved) <= set(fused) and len(answer.retrieved) == min(engine.top_k, len(fused))
    assert answer.to_json()["retrieved"] == answer.retrieved
    # a chunk holding a cited sentence comes first, whatever its fused rank
    assert answer.retrieved[0] in {c.chunk_id for c in answer.citations}
    indonesian = "Siapa duta besar Rusia untuk Korea Selatan?"
    assert engine.answer(indonesian).retrieved == [
        p.chunk_id for p in engine.searcher.search(indonesian, engine.top_k).passages
    ]


def test_rerank_orders_scored_passages_by_their_best_sentence() -> None:
    from bot.answer.extractive import Support, rerank
    from index.types import Passage

    a, b, c, d = (Passage(chunk_id=x, article_id=x, text="Satu. Dua.", score=0.0) for x in "abcd")
    cands = [Support(b, 1, 0, 5, 0, 2.0), Support(a, 0, 0, 5, 0, 0.5), Support(a, 0, 6, 10, 1, 1.0)]
    assert [p.chunk_id for p in rerank([a, b, c, d], cands)] == ["b", "a", "c", "d"]
    assert rerank([c, d], []) == [c, d]
