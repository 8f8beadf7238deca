"""LLM answers through the engine: a real Store (fake embedder), the in-process fake LLM with queued replies.

The HTTP client itself is tested against a real loopback server in test_llm.py; the CLI test here too.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from conftest import SEED, FakeLLM, fake_verify
from llm_server import ChatServer, Reply, passage_no, prompt_passages

from bot.answer.engine import Engine, LLMNotConfigured
from bot.answer.llm import LLMError, LLMTimeout
from bot.answer.types import Answer, Failure, Turn
from bot.answer.verify import (
    MarkerHoldback,
    Verifier,
    claim_numbers,
    negated,
    normalize_markers,
    numbers_of,
    parse_claims,
)
from bot.app import engine_for
from index.ingest import index_paths
from index.load import load_articles
from index.search import Searcher
from index.store import Store

ZINOVIEV = "duta besar Rusia untuk Korea Selatan, Georgiy Zinoviev"
PESKOV = "Juru bicara Kremlin, Dmitry Peskov, mengatakan bahwa Moskow akan melanjutkan kerja sama tersebut"


@pytest.fixture(scope="module")
def searcher(tmp_path_factory: pytest.TempPathFactory) -> Searcher:
    from conftest import FakeEmbedder

    embedder = FakeEmbedder()
    store = Store(tmp_path_factory.mktemp("gen-index"), embedder.name, embedder.dim)
    index_paths([SEED], store, embedder)
    return Searcher(store, embedder)


@pytest.fixture(scope="module")
def seed_text() -> str:
    (article,) = load_articles([SEED])
    return article.text


@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM()


@pytest.fixture
def engine(searcher: Searcher, llm: FakeLLM) -> Engine:
    return engine_for(searcher, llm, verify=fake_verify())


def other_no(body: dict[str, Any], phrase: str) -> int:
    """A passage number whose passage does not contain `phrase`."""
    return next(n for n in prompt_passages(body) if n != passage_no(body, phrase))


def test_correct_citation_is_kept_with_the_supporting_sentence_as_quote(
    engine: Engine, llm: FakeLLM, seed_text: str
) -> None:
    llm.script(
        lambda b: f"Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [{passage_no(b, ZINOVIEV)}]."
    )
    answer = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?")
    assert (answer.mode, answer.refused, answer.notice) == ("llm", False, None)
    assert answer.answer == "Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [1]."
    (c,) = answer.citations
    assert c.n == 1 and "Georgiy Zinoviev" in c.quote and c.quote in seed_text
    assert c.date == "2024-10-21" and c.chunk_id and c.chunk_id.startswith(c.article_id)
    assert (answer.checked_sentences, answer.dropped_sentences) == (1, 0)
    system, user = llm.requests[0]["messages"]
    assert system["role"] == "system" and "NOT_IN_ARTICLES" in system["content"]
    assert "bahasa Indonesia" in system["content"]  # the question's language
    assert user["content"].startswith('<passage id="1" date="2024-10-21">\n')
    assert "Siapa duta besar" in user["content"]


def test_out_of_range_markers_are_dropped(engine: Engine, llm: FakeLLM) -> None:
    llm.script(lambda b: f"Duta besar Rusia adalah Georgiy Zinoviev [{passage_no(b, ZINOVIEV)}, 9][0].")
    answer = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?")
    assert answer.answer == "Duta besar Rusia adalah Georgiy Zinoviev [1]."
    assert len(answer.citations) == 1 and answer.dropped_sentences == 0


def test_invented_and_uncited_sentences_are_removed(engine: Engine, llm: FakeLLM) -> None:
    def reply(b: dict[str, Any]) -> str:
        n = passage_no(b, ZINOVIEV)
        return (
            f"Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [{n}]. "
            f"Zinoviev telah menjabat sejak tahun 2017 [{n}]. "  # a number the passage does not have
            f"Ia juga bertemu Presiden Prabowo Subianto [{n}]. "  # a name the passage does not have
            "Hubungan kedua negara sangat tegang."  # cites nothing
        )

    llm.script(reply)
    answer = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?")
    assert not answer.refused
    assert answer.answer == "Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [1]."
    assert (answer.checked_sentences, answer.dropped_sentences) == (4, 3)


def test_a_wrong_marker_is_corrected_to_the_supporting_passage(engine: Engine, llm: FakeLLM) -> None:
    llm.script(
        lambda b: f"Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [{other_no(b, ZINOVIEV)}]."
    )
    answer = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?")
    assert (answer.mode, answer.refused, answer.notice) == ("llm", False, None)
    assert answer.answer == "Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [1]."
    (c,) = answer.citations
    assert "Georgiy Zinoviev" in c.quote
    assert (answer.attributed_by_kabar, answer.attributed_by_model, answer.dropped_sentences) == (1, 0, 0)


def test_an_unmarked_correct_sentence_is_shown_with_the_right_citation(engine: Engine, llm: FakeLLM) -> None:
    llm.script("Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev.")
    answer = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?")
    assert (answer.mode, answer.refused, answer.notice) == ("llm", False, None)
    assert answer.answer == "Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [1]."
    assert "Georgiy Zinoviev" in answer.citations[0].quote
    assert (answer.attributed_by_kabar, answer.attributed_by_model) == (1, 0)
    data = answer.to_json()
    assert (data["attributed_by_kabar"], data["attributed_by_model"]) == (1, 0)
    assert data["prompt_tokens"] and data["prompt_tokens"] > 0


def test_unmarked_sentences_nothing_supports_are_dropped(engine: Engine, llm: FakeLLM) -> None:
    def reply(b: dict[str, Any]) -> str:
        return (
            f"Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [{passage_no(b, ZINOVIEV)}]. "
            "Hubungan kedua negara sangat hangat sejak 1990."  # no marker, and no passage says so
        )

    llm.script(reply)
    answer = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?")
    assert answer.answer == "Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [1]."
    assert (answer.checked_sentences, answer.dropped_sentences) == (2, 1)
    assert (answer.attributed_by_kabar, answer.attributed_by_model) == (0, 1)


def test_a_reply_nothing_supports_falls_back_whatever_its_markers(engine: Engine, llm: FakeLLM) -> None:
    llm.script("Zinoviev menolak menghadiri pertemuan di Seoul pada 1999 [1].")
    answer = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?")
    assert answer.mode == "extractive" and answer.notice and "(no verified sentence)" in answer.notice


def test_a_sentence_keeps_only_its_supporting_markers(engine: Engine, llm: FakeLLM) -> None:
    sentence = "Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev"
    llm.script(lambda b: f"{sentence} [{other_no(b, ZINOVIEV)}][{passage_no(b, ZINOVIEV)}].")
    answer = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?")
    assert answer.answer == f"{sentence} [1]."
    (c,) = answer.citations
    assert "Georgiy Zinoviev" in c.quote
    assert (answer.attributed_by_kabar, answer.attributed_by_model) == (0, 1)


@pytest.mark.parametrize(
    ("reply", "language"),
    [
        ("NOT_IN_ARTICLES", "id"),
        ("Maaf, informasi ini tidak ada dalam artikel yang diberikan.", "id"),
        ("I cannot answer this from the passages.", "en"),
    ],
)
def test_the_model_saying_it_cannot_answer_is_a_refusal(
    engine: Engine, llm: FakeLLM, reply: str, language: str
) -> None:
    llm.script(reply)
    q = "Siapa pemenang Piala Dunia 2022?" if language == "id" else "Who won the 2022 World Cup?"
    answer = engine.answer(q)
    assert answer.refused and answer.mode == "llm" and answer.language == language
    assert answer.citations == [] and answer.notice is None


@pytest.mark.parametrize(
    ("replies", "reason"),
    [
        ([LLMError("HTTP 500", Failure.HTTP_ERROR, 500)], "HTTP 500"),
        ([LLMTimeout("late")], "timeout"),
        ([LLMError("bad JSON", Failure.MALFORMED)], "malformed reply"),
        (["Hubungan kedua negara sangat hangat sejak 1990."], "no citations"),
    ],
    ids=["500", "timeout", "malformed", "no-markers"],
)
def test_llm_failures_fall_back_to_the_extractive_answer_with_a_notice(
    engine: Engine, llm: FakeLLM, replies: list[Exception | str], reason: str
) -> None:
    llm.script(*replies)
    answer = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?")
    assert answer.mode == "extractive"
    assert answer.notice is not None and f"({reason})" in answer.notice
    assert answer.notice.startswith("Model bahasa")  # in the question's language
    expected = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?", use_llm=False)
    assert (answer.answer, answer.refused) == (expected.answer, expected.refused)


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_streaming_holds_back_partial_markers(engine: Engine, llm: FakeLLM, size: int) -> None:
    def reply(b: dict[str, Any]) -> str:
        n = passage_no(b, ZINOVIEV)
        return f"Duta besar Rusia adalah Georgiy Zinoviev [{n}, {n}] dan [{n}]."

    llm.piece_size = size
    llm.script(reply)
    streamed: list[str] = []
    answer = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?", on_token=streamed.append)
    assert llm.requests[0]["stream"] is True
    text = "".join(streamed)
    assert text.startswith("Duta besar Rusia adalah Georgiy Zinoviev [") and text.endswith("].")
    assert not any(re.search(r"\[[\d, ]*$", s) for s in streamed)  # no piece ends inside a marker
    assert answer.mode == "llm" and answer.answer == "Duta besar Rusia adalah Georgiy Zinoviev dan [1]."


@pytest.mark.parametrize(
    ("pieces", "emitted"),
    [
        (["a [", "1", "] b"], ["a ", "[1] b"]),
        (["a [1", ", 2", "]"], ["a ", "[1, 2]"]),
        (["harga [Rp", " 5]"], ["harga [Rp", " 5]"]),  # not a marker: passed on at once
        (["tail [2"], ["tail "]),  # held until flush
        (["x", "y"], ["x", "y"]),
    ],
)
def test_marker_holdback(pieces: list[str], emitted: list[str]) -> None:
    out: list[str] = []
    hold = MarkerHoldback(out.append)
    for p in pieces:
        hold.feed(p)
    assert out == emitted
    hold.flush()
    assert "".join(out) == "".join(pieces)


def history_turn(engine: Engine) -> list[Turn]:
    first = Answer(
        "Siapa duta besar Rusia untuk Korea Selatan?",
        "Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [1].",
        False,
        language="id",
        standalone_question="Siapa duta besar Rusia untuk Korea Selatan?",
    )
    return [Turn(first.question, first)]


def test_condense_resolves_the_follow_up_in_its_language(engine: Engine, llm: FakeLLM) -> None:
    llm.script(
        "Pertanyaan mandiri: Apa yang dikatakan Georgiy Zinoviev tentang kerja sama Rusia dan Korea Utara?",
        lambda b: f"Zinoviev menyatakan kerja sama itu tidak merugikan [{passage_no(b, 'Zinoviev')}].",
    )
    answer = engine.answer("Apa katanya tentang kerja sama itu?", history=history_turn(engine))
    assert answer.standalone_question == (
        "Apa yang dikatakan Georgiy Zinoviev tentang kerja sama Rusia dan Korea Utara?"
    )
    condense, generate = llm.requests
    prompt = condense["messages"][-1]["content"]
    assert "Tulis dalam bahasa Indonesia" in prompt and "Georgiy Zinoviev [1]" not in prompt
    assert "Apa katanya tentang kerja sama itu?" in prompt
    assert answer.standalone_question in generate["messages"][-1]["content"]


def test_condensing_into_another_language_is_rejected(engine: Engine, llm: FakeLLM) -> None:
    llm.script(
        "What did Georgiy Zinoviev say about the cooperation between Russia and North Korea?",
        "NOT_IN_ARTICLES",
    )
    answer = engine.answer("Apa katanya tentang kerja sama itu?", history=history_turn(engine))
    # the heuristic resolution, in the user's own words, replaces the English rewrite
    assert answer.standalone_question == (
        "Siapa duta besar Rusia untuk Korea Selatan? Apa katanya tentang kerja sama itu?"
    )


def test_extractive_mode_is_chosen_per_call(engine: Engine, llm: FakeLLM, searcher: Searcher) -> None:
    answer = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?", use_llm=False)
    assert answer.mode == "extractive" and answer.notice is None and llm.requests == []
    with pytest.raises(LLMNotConfigured):
        engine_for(searcher).answer("Siapa?", use_llm=True)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Satu [1]. Dua. [2]", [("Satu", [1]), ("Dua", [2])]),
        ("A kata [1, 3] dan [2].", [("A kata dan", [1, 3, 2])]),
        ("Tiga [7].", [("Tiga", [])]),
        ("[1]\n\nEmpat [1][1].", [("Empat", [1])]),
    ],
)
def test_parse_claims(reply: str, expected: list[tuple[str, list[int]]]) -> None:
    assert [(c.text, c.cited) for c in parse_claims(reply, 3)] == expected


def test_normalize_markers_and_numbers() -> None:
    assert normalize_markers("Ada 1.500 tentara. [1, 2]") == "Ada 1.500 tentara [1][2]."
    assert claim_numbers("sekitar 1,500 soldiers on 21 October") == {"1500", "21"}
    assert {"1500", "21", "10", "2024"} <= numbers_of("1.500 prajurit, Senin (21/10/2024)")
    assert not claim_numbers("2,5 persen") <= numbers_of("25 persen")


# --- negation: a claim that reverses its passage's polarity is not supported ---

NATO = "NATO belum mengonfirmasi pengiriman pasukan Korea Utara"
NATO_SENTENCE = (
    f"{NATO}, tetapi Rutte menyatakan hal ini bisa menjadi eskalasi besar dalam konflik, menurut pernyataan "
    "di platform X (sebelumnya Twitter)."
)


def test_a_negation_flip_is_removed_and_the_faithful_sentence_kept(engine: Engine, llm: FakeLLM) -> None:
    def reply(b: dict[str, Any]) -> str:
        k = passage_no(b, NATO)
        return f"NATO telah mengonfirmasi pengiriman pasukan Korea Utara [{k}]. {NATO} [{k}]."

    llm.script(reply)
    answer = engine.answer("Apakah NATO sudah mengonfirmasi pengiriman pasukan Korea Utara?")
    assert answer.answer == f"{NATO} [1]."
    assert (answer.checked_sentences, answer.dropped_sentences) == (2, 1)
    assert NATO in answer.citations[0].quote


@pytest.mark.parametrize(
    ("claim", "evidence", "agrees"),
    [
        # Indonesian claim, Indonesian passage
        ("Korea Utara telah mengonfirmasi pengiriman pasukan", NATO, False),
        ("NATO tidak mengonfirmasi pengiriman pasukan Korea Utara", NATO, True),
        ("Korea Utara mengirim pasukan ke Rusia", "Korea Utara mengirim pasukan ke Rusia.", True),
        ("Korea Utara tidak mengirim pasukan ke Rusia", "Korea Utara mengirim pasukan ke Rusia.", False),
        # English claim, Indonesian passage: English negators against Indonesian ones
        ("NATO has confirmed that North Korean troops were sent", NATO, False),
        ("NATO has not confirmed that North Korean troops were sent", NATO, True),
        ("NATO hasn't confirmed the deployment", NATO, True),
        ("North Korea did not send troops to Russia", "Korea Utara mengirim pasukan ke Rusia.", False),
        # "tidak hanya" / "not only" adds, it does not deny
        (
            "Korea Utara mengirim pasukan",
            "Korea Utara tidak hanya mengirim pasukan, tetapi juga amunisi.",
            True,
        ),
        # one sentence, two polarities: each claim is held to the clause it restates
        ("NATO telah mengonfirmasi pengiriman pasukan Korea Utara", NATO_SENTENCE, False),
        ("Rutte menyatakan hal ini bisa menjadi eskalasi besar dalam konflik", NATO_SENTENCE, True),
        (f"{NATO}, tetapi Rutte menyatakan hal ini bisa menjadi eskalasi besar", NATO_SENTENCE, True),
    ],
)
def test_polarity_of_claim_and_evidence(claim: str, evidence: str, agrees: bool) -> None:
    from conftest import FakeEmbedder

    assert Verifier(FakeEmbedder()).same_polarity(claim, evidence) is agrees


@pytest.mark.parametrize(
    ("text", "negative"),
    [
        ("Korea Utara belum mengonfirmasi", True),
        ("tanpa izin", True),
        ("Pasukan itu tak kembali", True),
        ("Kremlin did not comment", True),
        ("Kremlin didn't comment", True),
        ("no troops were sent", True),
        ("Tidak hanya itu, Rusia juga mengirim senjata", False),
        ("UU No. 1 Tahun 2023", False),
        ("notable, another knot", False),
    ],
)
def test_negated(text: str, negative: bool) -> None:
    assert negated(text) is negative


# --- with the real model: the calibrated verifier, and the CLI streaming from the loopback server ---


@pytest.mark.integration
def test_real_verifier_keeps_paraphrases_and_translations_drops_wrong_citations(
    seed_index, real_embedder
) -> None:
    store = Store(seed_index, real_embedder.name, real_embedder.dim)
    ids, _ = store.all_chunks()
    passages = store.passages([(cid, 0.0) for cid in ids])
    store.close()
    home = next(i for i, p in enumerate(passages, 1) if "Moskow akan melanjutkan" in p.text)
    away = next(i for i, p in enumerate(passages, 1) if "Dmitry Peskov" not in p.text)
    reply = (
        f"Dmitry Peskov mengatakan Moskow akan melanjutkan kerja sama itu [{home}]. "
        f"Kremlin spokesman Dmitry Peskov said Moscow would continue the cooperation [{home}]. "
        f"Peskov mengatakan Moskow akan melanjutkan kerja sama itu [{away}]. "
        f"Peskov mengatakan Rusia sudah mengirim 20.000 tank ke Korea Utara [{home}]."
    )
    verdict = Verifier(real_embedder).verify(reply, passages, attribute=False)
    assert [c.supported for c in verdict.claims] == [True, True, False, False]
    # with attribution (the default) the wrong citation is moved to the passage that says it
    verdict = Verifier(real_embedder).verify(reply, passages)
    assert [c.supported for c in verdict.claims] == [True, True, True, False]
    assert [c.attributed for c in verdict.claims] == [False, False, True, False]
    for claim in verdict.kept:
        (ev,) = claim.evidence.values()
        assert "Moskow akan melanjutkan" in passages[ev.passage].text[ev.start : ev.end]
    nato = next(i for i, p in enumerate(passages, 1) if NATO in p.text)
    flips = (
        f"NATO telah mengonfirmasi pengiriman pasukan Korea Utara [{nato}]. "
        f"NATO has confirmed that North Korean troops were sent [{nato}]. "
        f"NATO belum mengonfirmasi pengiriman pasukan Korea Utara [{nato}]. "
        f"NATO chief Mark Rutte said this could be a major escalation of the conflict [{nato}]."
    )
    verdict = Verifier(real_embedder).verify(flips, passages)
    assert [c.supported for c in verdict.claims] == [False, False, True, True]


@pytest.mark.integration
def test_cli_streams_then_prints_the_verified_answer(kabar_env, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from bot.cli.main import cli

    server = ChatServer()
    runner = CliRunner()
    assert runner.invoke(cli, ["index", "--json"], catch_exceptions=False).exit_code == 0
    monkeypatch.setenv("KABAR_LLM", "openai")
    monkeypatch.setenv("KABAR_LLM_URL", server.url)
    monkeypatch.setenv("KABAR_LLM_BUDGET", "5")

    def reply(b: dict[str, Any]) -> str:
        k = passage_no(b, "Moskow akan melanjutkan")
        return (
            f"Dmitry Peskov mengatakan Moskow akan melanjutkan kerja sama tersebut [{k}]. "
            f"Ia juga memuji Presiden Joe Biden [{k}]."
        )

    server.script(Reply(respond=reply, piece_size=4))
    result = runner.invoke(cli, ["ask", "--llm", "Apa kata Dmitry Peskov?"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    draft, verified = result.output.split("verified", 1)
    assert "Joe Biden" in draft and "Joe Biden" not in verified  # streamed, then removed
    assert "Dmitry Peskov mengatakan Moskow akan melanjutkan kerja sama tersebut [1]." in verified
    assert "1 unsupported sentence(s) removed" in verified

    result = runner.invoke(cli, ["ask", "--no-llm", "--json", "Apa kata Dmitry Peskov?"])
    assert json.loads(result.output)["mode"] == "extractive" and len(server.requests) == 1

    server.script(*[Reply(status=500)] * 3)
    result = runner.invoke(cli, ["chat"], input="Apa kata Dmitry Peskov?\n/quit\n", catch_exceptions=False)
    assert "Model bahasa tidak memberi jawaban yang dapat dipakai (HTTP 500)" in result.output

    monkeypatch.setenv("KABAR_LLM", "none")
    result = runner.invoke(cli, ["ask", "--llm", "Apa kata Dmitry Peskov?"])
    assert result.exit_code == 2 and "KABAR_LLM=openai" in result.output
    server.close()


def test_unsupported_claim_with_the_right_names_is_removed(engine: Engine, llm: FakeLLM) -> None:
    def reply(b: dict[str, Any]) -> str:
        k = passage_no(b, ZINOVIEV)
        return (
            f"Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [{k}]. "
            f"Zinoviev menolak menghadiri pertemuan di Seoul [{k}]."
        )

    llm.script(reply)
    answer = engine.answer("Siapa duta besar Rusia untuk Korea Selatan?")
    assert answer.answer == "Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [1]."
    assert answer.dropped_sentences == 1


def test_llm_down_while_condensing_falls_back(engine: Engine, llm: FakeLLM) -> None:
    llm.script(LLMError("HTTP 503", Failure.HTTP_ERROR, 503))
    answer = engine.answer("Apa katanya tentang kerja sama itu?", history=history_turn(engine))
    assert answer.mode == "extractive" and answer.notice and "(HTTP 503)" in answer.notice
    assert len(llm.requests) == 1  # the condense call, then no answer call
    assert answer.standalone_question == (
        "Siapa duta besar Rusia untuk Korea Selatan? Apa katanya tentang kerja sama itu?"
    )
