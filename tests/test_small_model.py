"""A real small LLM (SmolLM2-135M-Instruct, Apache-2.0, through llama-cpp-python): whatever it writes,
Kabar's guarantees hold. The model is weak and English-centric, so nothing here scores its answers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import SEED

from bot.answer.engine import Engine
from bot.answer.generate import ANSWER_SCHEMA, parse_reply
from bot.answer.llm import LlamaCpp
from bot.answer.verify import Verifier, parse_claims
from bot.app import engine_for
from index.load import load_articles
from index.search import Searcher
from index.store import Store
from index.types import Passage

MAX_TOKENS = 160
QUESTIONS = [
    "Siapa duta besar Rusia untuk Korea Selatan?",
    "How many North Korean special forces soldiers are already in Russia?",
    "What does Cheong Seong-chang expect Kim Jong Un to gain?",
    "Berapa kontainer amunisi yang dikirim Korea Utara ke Rusia?",
    "Who is the spokesman of the Kremlin?",
    "Who won the 2022 World Cup?",
]
REASONS = {"timeout", "unreachable", "malformed reply", "empty reply", "no citations", "no verified sentence"}


@pytest.fixture(scope="module")
def small_llm(small_model: Path) -> Iterator[LlamaCpp]:
    llm = LlamaCpp(small_model, temperature=0.0, max_tokens=MAX_TOKENS, context=2048, threads=1)
    yield llm
    llm.close()


@pytest.fixture(scope="module")
def small_engine(seed_index: Path, real_embedder, small_llm: LlamaCpp) -> Iterator[Engine]:
    store = Store(seed_index, real_embedder.name, real_embedder.dim)
    yield engine_for(Searcher(store, real_embedder), small_llm)
    store.close()


def test_the_grammar_makes_the_small_model_reply_in_the_schema(small_llm: LlamaCpp) -> None:
    passage = '<passage id="1">\nGeorgiy Zinoviev is the Russian ambassador.\n</passage>'
    messages = [
        {"role": "system", "content": "Answer from the passage, citing it as [1]."},
        {"role": "user", "content": f"{passage}\n\nQuestion: Who is the Russian ambassador?"},
    ]
    reply = small_llm.chat(messages, schema=ANSWER_SCHEMA)
    claims, structured = parse_reply(reply, 1)
    assert structured, reply
    if reply.rstrip().endswith("}"):  # not cut off at max_tokens: the whole reply is the schema's JSON
        data = json.loads(reply)
        assert set(data) == {"sentences"} and len(data["sentences"]) <= 4
        for item in data["sentences"]:
            assert set(item) == {"sentence", "passages"} and isinstance(item["sentence"], str)
            assert all(isinstance(n, int) for n in item["passages"])


def test_whatever_the_small_model_writes_every_shown_sentence_is_verified_and_cited(
    small_engine: Engine, real_embedder
) -> None:
    (article,) = load_articles([SEED])
    outcomes = []
    for question in QUESTIONS:
        streamed: list[str] = []
        t0 = time.monotonic()
        answer = small_engine.answer(question, on_token=streamed.append)
        elapsed = time.monotonic() - t0
        assert elapsed < 120, (question, elapsed)  # max_tokens bounds the reply, so the time
        if answer.mode == "extractive":  # the model gave nothing usable: the extractive answer, and why
            assert answer.notice and answer.notice.split("(")[1].split(")")[0] in REASONS, answer.notice
            outcomes.append("fallback")
            continue
        if answer.refused:
            assert answer.citations == []
            outcomes.append("refused")
            continue
        cited = parse_claims(answer.answer, len(answer.citations))
        assert cited and all(c.cited for c in cited), answer.answer  # every shown sentence is cited
        assert {n for c in cited for n in c.cited} == {c.n for c in answer.citations}
        for c in answer.citations:
            assert c.quote in article.text  # verbatim
        # each shown sentence is supported by the quote it cites (checked again, from the output alone)
        quotes = [Passage(f"q{c.n}", c.article_id, c.quote, 1.0, {}) for c in answer.citations]
        verdict = Verifier(real_embedder).verify(answer.answer, quotes, attribute=False)
        assert all(c.supported for c in verdict.claims), answer.answer
        assert answer.attributed_by_kabar + answer.attributed_by_model == len(cited)
        assert answer.checked_sentences >= len(cited) and answer.prompt_tokens
        outcomes.append("answered")
    assert len(outcomes) == len(QUESTIONS)
    print("SmolLM2 outcomes:", dict(zip(QUESTIONS, outcomes, strict=True)))


def test_kabar_ask_with_the_in_process_small_model(
    kabar_env: Path, small_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli.main import cli

    runner = CliRunner()
    assert runner.invoke(cli, ["index", "--json"], catch_exceptions=False).exit_code == 0
    monkeypatch.setenv("KABAR_LLM", "llamacpp")
    monkeypatch.setenv("KABAR_LLM_GGUF", str(small_model))
    monkeypatch.setenv("KABAR_LLM_MAX_TOKENS", str(MAX_TOKENS))
    result = runner.invoke(cli, ["ask", "--json", QUESTIONS[0]], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output.splitlines()[-1])
    assert answer["mode"] in ("llm", "extractive")
    assert answer["mode"] == "extractive" or answer["refused"] or answer["citations"]
    if answer["mode"] == "llm" and not answer["refused"]:
        assert answer["attributed_by_kabar"] + answer["attributed_by_model"] >= 1
