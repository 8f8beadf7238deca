"""The trained sentence ranker: its features, its shipped file, and how the answer path uses it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import FakeEmbedder

from bot.answer.extractive import ExtractiveAnswerer, SentenceScorer, Support, select
from bot.answer.ranker import (
    MODEL,
    READ_PASSAGES,
    READER_FEATURES,
    READER_FLOOR,
    READER_MODEL,
    Logistic,
    SentenceRanker,
    add_features,
    add_reader_features,
)
from bot.answer.reader import Reading
from index.errors import KabarError
from index.search import SearchResult
from index.sentences import split_sentences
from index.types import Passage

TEXT = (
    "Gempa besar mengguncang Palu dan Donggala. Gempa itu terjadi pada Jumat, 28 September 2018, "
    "menjelang magrib. Ribuan warga mengungsi ke dataran tinggi."
)
QUESTION = "Kapan gempa terjadi di Palu?"


def passage(text: str = TEXT, article: str = "palu") -> Passage:
    """A retrieved chunk with its sentences, as the store returns it (vectors left to the scorer)."""
    sents = split_sentences(text)
    meta = {"sentences": [(s.paragraph, i, s.start, s.end) for i, s in enumerate(sents)]}
    return Passage(f"{article}:0", article, text, 1.0, meta, dense=0.5)


def candidates(question: str = QUESTION, passages: list[Passage] | None = None) -> list[Support]:
    embedder = FakeEmbedder()
    scorer = SentenceScorer(embedder)
    passages = passages or [passage()]
    return scorer.score(question, embedder.embed_queries([question])[0], passages, len(passages))


def by_text(cands: list[Support], part: str) -> Support:
    return next(c for c in cands if part in c.text)


def test_features_compare_each_sentence_with_the_question_and_its_neighbours() -> None:
    cands = candidates()
    add_features(QUESTION, cands)
    date, first, last = (
        by_text(cands, "28 September"),
        by_text(cands, "mengguncang"),
        by_text(cands, "Ribuan"),
    )
    assert date.features["span"] > 0 and date.features["no_span"] == 0.0  # a date the question does not name
    assert first.features["no_span"] == 1.0 and last.features["no_span"] == 1.0
    assert date.features["bigram"] > 0 == first.features["bigram"]  # "gempa terjadi" appears once
    assert first.features["first"] == 1.0 and date.features["first"] == 0.0
    # the middle sentence's context is its better neighbour's cosine
    assert date.features["context"] == max(first.features["dense"], last.features["dense"])
    assert max(c.features["gap"] for c in cands) == 0.0
    for c in cands:
        assert 0.0 <= c.features["novel"] <= 1.0
        assert c.features["en_dense"] == 0.0  # an Indonesian question


def test_rescore_orders_by_the_rank_model_and_keeps_the_support_logit() -> None:
    ranker = SentenceRanker(Logistic(("span", "no_span"), (4.0, -2.0), 0.0))
    before = {c.text: c.support for c in candidates()}
    cands = ranker.rescore(QUESTION, candidates())
    assert "28 September" in cands[0].text
    assert cands[0].score > cands[1].score >= cands[2].score
    assert {c.text: c.support for c in cands} == before  # refusal still reads the support logit


def test_shipped_ranker_loads_and_a_changed_file_is_refused(tmp_path: Path) -> None:
    ranker = SentenceRanker.load()
    assert set(ranker.rank.features) >= {"dense", "span", "bigram"}
    # only sets whose licence allows shipping what is trained on them (Apache-2.0, CC BY-SA 4.0)
    assert set(ranker.info["trained_on"]) <= {"facqa_train", "tydiqa_id_train", "ntrex_train"}
    copy = tmp_path / "ranker.json"
    shutil.copy(MODEL, copy)
    shutil.copy(MODEL.with_name(MODEL.name + ".sha256"), tmp_path / "ranker.json.sha256")
    assert SentenceRanker.load(copy).rank == ranker.rank
    data = json.loads(copy.read_text())
    data["rank"]["bias"] += 1.0
    copy.write_text(json.dumps(data))
    with pytest.raises(KabarError, match="does not match its checksum") as e:
        SentenceRanker.load(copy)
    assert str(copy) in str(e.value)
    (tmp_path / "ranker.json.sha256").unlink()
    with pytest.raises(KabarError, match="cannot read the sentence ranker"):
        SentenceRanker.load(copy)


def test_a_runner_up_from_another_article_must_be_closer_to_be_quoted() -> None:
    other = passage("Gempa lain terjadi di Lombok pada Juli 2018.", article="lombok")
    cands = candidates(passages=[passage(), other])
    palu = iter((5.0, 4.2, 3.9))
    for c in cands:  # the Lombok sentence comes second, 0.8 behind the best Palu one
        c.score = 4.2 if c.passage.article_id == "lombok" else next(palu)
    cands.sort(key=lambda c: -c.score)
    best = cands[0]
    same = [c for c in cands[1:] if c.passage.article_id == best.passage.article_id]
    away = [c for c in cands[1:] if c.passage.article_id != best.passage.article_id]
    assert same and away
    both = select(cands, 4, margin=1.5)
    assert set(map(id, both)) == set(map(id, cands))  # one margin: everything within 1.5 is quoted
    tight = select(cands, 4, margin=1.5, other_margin=0.5)
    assert best in tight and all(c in tight for c in same)
    assert not any(c in tight for c in away)


class RecordingReader:
    """A stand-in for the span reader (the real one is tested in test_reader.py): it marks, in every passage
    it is given, the sentence holding `answer` as the best span, and records what it was asked to read."""

    def __init__(
        self, answer: str, answerable: list[float] | None = None, floor: float | None = None
    ) -> None:
        self.answer = answer
        self.calls: list[tuple[str, list[tuple[str, list[tuple[int, int]]]]]] = []
        self.answerable = answerable  # the answerability logit of each passage read, in order (None: no head)
        self.answer_threshold = floor

    def read(self, question: str, passages: list[tuple[str, list[tuple[int, int]]]]) -> list[Reading]:
        self.calls.append((question, passages))
        out = []
        for text, sents in passages:
            hit = next((k for k, (a, b) in enumerate(sents) if self.answer in text[a:b]), -1)
            scores = [5.0 if k == hit else 1.0 for k in range(len(sents))]
            logit = None if self.answerable is None else self.answerable[len(out)]
            out.append(Reading((0, 1), max(scores), hit, scores, 2.0, answer=logit))
        return out


def test_reader_features_come_from_the_first_passages_read_and_the_rest_get_the_floor() -> None:
    others = [passage(f"Berita lain nomor {n}. Tidak ada gempa di sini.", article=f"p{n}") for n in range(3)]
    cands = candidates(passages=[passage(), *others])
    reader = RecordingReader("28 September")
    add_reader_features(reader, QUESTION, cands)  # type: ignore[arg-type]
    ((question, read),) = reader.calls
    assert question == QUESTION
    assert READ_PASSAGES < 1 + len(others)  # some passages are left unread
    assert [text for text, _ in read] == [TEXT, *(p.text for p in others[: READ_PASSAGES - 1])]  # rank order
    assert all(text[a:b] in {c.text for c in cands} for text, sents in read for a, b in sents)
    date = by_text(cands, "28 September")
    assert date.features["reader_best"] == 1.0 and date.features["reader"] == 3.0  # 5.0 over the null 2.0
    assert by_text(cands, "Ribuan").features["reader"] == -1.0
    assert date.features["reader_passage"] == 3.0
    # within its passage only: the best sentence 0, another 4 below it
    assert date.features["reader_rel"] == 0.0 and by_text(cands, "Ribuan").features["reader_rel"] == -4.0
    unread = [c for c in cands if c.passage.article_id in {p.article_id for p in others[READ_PASSAGES - 1 :]}]
    assert unread and all(c.features["reader"] == READER_FLOOR for c in unread)


def test_the_answerer_reads_indonesian_questions_only() -> None:
    reader = RecordingReader("Ribuan warga")
    weighs_reader = SentenceRanker(Logistic(("reader_best",), (10.0,), 0.0))
    embedder = FakeEmbedder()
    scorer = SentenceScorer(embedder)
    scorer.weights.min_support = -1e9  # the fake vectors support nothing: answer anyway
    answerer = ExtractiveAnswerer(
        scorer, 1, ranker=SentenceRanker(Logistic(("span",), (1.0,), 0.0)), reading=(reader, weighs_reader)
    )  # type: ignore[arg-type]
    for question, language in ((QUESTION, "id"), ("When did the earthquake hit Palu?", "en")):
        result = SearchResult([passage()], embedder.embed_queries([question])[0], {})
        answer = answerer.answer(question, question, language, result)
        quoted = " ".join(c.quote for c in answer.citations)
        if language == "id":  # ranked by what the reader marked
            assert "Ribuan warga" in quoted and len(reader.calls) == 1
        else:  # the English question keeps the plain ranker, and the reader is not asked
            assert "Ribuan warga" not in quoted and len(reader.calls) == 1


@pytest.mark.parametrize(
    ("answerable", "floor", "refused"),
    [([-3.0], 0.0, True), ([3.0], 0.0, False), ([-3.0], None, False), ([-3.0], -4.0, False)],
)
def test_the_readers_answerability_refuses_below_its_threshold(
    answerable: list[float], floor: float | None, refused: bool
) -> None:
    reader = RecordingReader("28 September", answerable, floor)
    embedder = FakeEmbedder()
    scorer = SentenceScorer(embedder)
    scorer.weights.min_support = -1e9  # the support score passes everything: only the reader decides
    weighs_reader = SentenceRanker(Logistic(("reader_best",), (10.0,), 0.0))
    answerer = ExtractiveAnswerer(scorer, 1, ranker=weighs_reader, reading=(reader, weighs_reader))  # type: ignore[arg-type]
    result = SearchResult([passage()], embedder.embed_queries([QUESTION])[0], {})
    answer = answerer.answer(QUESTION, QUESTION, "id", result)
    assert answer.refused is refused and answer.answerable == answerable[0]
    assert answer.to_json()["answerable"] == answerable[0]
    if not refused:
        assert "28 September" in answer.citations[0].quote


def test_the_best_read_passage_gives_the_answerability() -> None:
    others = [passage(f"Berita lain nomor {n}. Tidak ada gempa di sini.", article=f"p{n}") for n in range(3)]
    cands = candidates(passages=[passage(), *others])
    logits = [-2.0, 1.5, 9.0][:READ_PASSAGES]
    assert add_reader_features(RecordingReader("28 September", logits), QUESTION, cands) == max(logits)  # type: ignore[arg-type]
    assert add_reader_features(RecordingReader("28 September"), QUESTION, cands) is None  # type: ignore[arg-type]


def test_the_shipped_reader_model_weighs_the_reader_and_matches_its_checksum() -> None:
    with_reader = SentenceRanker.load(READER_MODEL)
    assert with_reader.reads and not SentenceRanker.load().reads
    assert set(READER_FEATURES) & set(with_reader.rank.features)
    assert set(with_reader.info["trained_on"]) <= {"facqa_train", "tydiqa_id_train"}  # Apache-2.0 only
