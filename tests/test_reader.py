"""The assembled reader (shipped adapter + bundled base, no torch) on fixed questions about the seed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bot.answer.reader import ADAPTER, Reader, ensure_reader, verify_reader
from index.sentences import split_sentences

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "seeds" / "000_e425e8bd6ae908eb.txt"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh cache folder the reader is assembled into once for this module."""
    return tmp_path_factory.mktemp("reader-cache")


@pytest.fixture(scope="module")
def reader(cache: Path) -> Reader:
    """The reader assembled from the shipped adapter."""
    return Reader.load(cache)


def seed_passages(chars: int = 600) -> list[tuple[str, list[tuple[int, int]]]]:
    """The seed article in chunks of whole sentences of about `chars` characters (~160 tokens, as indexed)."""
    groups: list[list[str]] = [[]]
    for s in split_sentences(SEED.read_text(encoding="utf-8")):
        if sum(len(t) + 1 for t in groups[-1]) >= chars:
            groups.append([])
        groups[-1].append(s.text)
    texts = [" ".join(g) for g in groups]
    return [(t, [(s.start, s.end) for s in split_sentences(t)]) for t in texts]


def best(reader: Reader, question: str) -> tuple[str, str, float]:
    """(span text, sentence text, margin) of the passage whose best span has the highest margin."""
    passages = seed_passages()
    readings = reader.read(question, passages)
    i = max(range(len(readings)), key=lambda k: readings[k].margin)
    r, (text, sents) = readings[i], passages[i]
    a, b = sents[r.sentence]
    return text[r.span[0] : r.span[1]], text[a:b], r.margin


def test_adapter_is_small_and_matches_its_checksum() -> None:
    assert ADAPTER.stat().st_size < 10_000_000
    digest = ADAPTER.with_suffix(".npz.sha256").read_text().split()[0]
    assert hashlib.sha256(ADAPTER.read_bytes()).hexdigest() == digest


# The shipped adapter (4 layers, four CPU epochs) does not yet pass these: they state what a reader must do
# and flip to XPASS -> failure (strict) once a better adapter ships. See train/README.md for the numbers.
WEAK = pytest.mark.xfail(strict=True, reason="the current 4-layer adapter picks the wrong chunk's span")


def test_names_the_ambassador(reader: Reader) -> None:
    span, sentence, margin = best(reader, "Siapa duta besar Rusia untuk Korea Selatan?")
    assert "Zinoviev" in span
    assert margin > reader.threshold


@WEAK
def test_english_question_finds_the_sentence(reader: Reader) -> None:
    _, sentence, margin = best(reader, "What does Cheong Seong-chang expect Kim Jong Un to gain?")
    assert "teknologi militer" in sentence
    assert margin > reader.threshold


@pytest.mark.parametrize(
    "question",
    [
        pytest.param("What did Cheong Seong-chang say about Japan's defence budget?", marks=WEAK),
        "Berapa anggaran pertahanan Jepang?",
    ],
)
def test_refuses_what_the_article_does_not_say(reader: Reader, question: str) -> None:
    _, _, margin = best(reader, question)
    assert margin < reader.threshold


def test_readings_are_consistent(reader: Reader) -> None:
    passages = seed_passages()
    for r, (text, sents) in zip(
        reader.read("Kapan Korea Selatan memanggil duta besar Rusia?", passages), passages, strict=True
    ):
        a, b = r.span
        assert 0 <= a < b <= len(text) and not text[a].isspace()
        assert len(r.sentence_scores) == len(sents)
        assert r.sentence_scores[r.sentence] == pytest.approx(r.span_score)
        assert sents[r.sentence][0] <= a < sents[r.sentence][1]
        assert r.margin == pytest.approx(r.span_score - r.null_score)


def test_long_passage_is_read_in_windows(reader: Reader) -> None:
    text = SEED.read_text(encoding="utf-8")
    sents = [(s.start, s.end) for s in split_sentences(text)]
    (r,) = reader.read("Siapa duta besar Rusia untuk Korea Selatan?", [(text, sents)])
    assert "Zinoviev" in text[r.span[0] : r.span[1]]


def test_numpy_engine_agrees_with_onnx(reader: Reader, cache: Path) -> None:
    ref = Reader.load(cache, engine="numpy")
    ids = np.array([reader.tokenizer.encode("query: Siapa duta besar Rusia? passage: Georgiy Zinoviev.").ids])
    mask = np.ones(ids.shape, np.float32)
    for ours, theirs in zip(reader.logits(ids, mask), ref.logits(ids, mask), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_word_vectors_are_read_4_bit_from_nanoes_file(reader: Reader, cache: Path) -> None:
    from index.e5file import dequantize_q4_0, parse_e5, source_path

    buf = source_path().read_bytes()
    f = parse_e5(buf)
    _, _, offset, nbytes = f.tensors["emb.word"]
    table = dequantize_q4_0(memoryview(buf)[offset : offset + nbytes], (f.vocab, f.hidden))
    ids = np.array([[0, 6, 1000, f.vocab - 1], [2, 2, 77911, 5]])
    np.testing.assert_array_equal(reader.embed(ids), table[ids])
    # no float copy of the 250k x 384 table (384 MB) in the cache: only the layers (~7 MB each) and the head
    folder, meta = ensure_reader(cache)
    assert sum(p.stat().st_size for p in folder.iterdir()) < 8_000_000 * (int(meta["layers"]) + 1)


def test_corrupt_cache_file_is_rejected_and_rebuilt(reader: Reader, cache: Path) -> None:
    question, passages = "Siapa duta besar Rusia untuk Korea Selatan?", seed_passages()
    before = reader.read(question, passages)
    folder, _ = ensure_reader(cache)
    assert verify_reader(folder) is None
    target = folder / "extra.npz"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    assert "extra.npz" in (verify_reader(folder) or "")
    again = Reader.load(cache)
    assert verify_reader(folder) is None
    manifest = json.loads((folder / "manifest.json").read_text())
    assert hashlib.sha256(target.read_bytes()).hexdigest() == manifest["files"]["extra.npz"]
    assert again.read(question, passages) == before


def test_reading_imports_no_torch(cache: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from bot.answer.reader import Reader; "
        f"r = Reader.load(Path({str(cache)!r})); "
        "r.read('Siapa?', [('Georgiy Zinoviev datang.', [(0, 23)])]); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_kabar_scorer_reader_reads_the_retrieved_passages(
    seed_index: Path, real_embedder, cache: Path
) -> None:
    from bot.answer.ranker import READ_PASSAGES, READER_FLOOR, add_reader_features
    from bot.app import engine_for
    from bot.settings import AnswerSettings
    from index.search import Searcher
    from index.store import Store

    store = Store(seed_index, real_embedder.name, real_embedder.dim)
    engine = engine_for(
        Searcher(store, real_embedder),
        answer=AnswerSettings.model_construct(scorer="reader"),
        cache_dir=cache,
    )
    assert engine.extractive.reading is not None
    question = "Siapa duta besar Rusia untuk Korea Selatan?"
    answer = engine.answer(question)
    assert not answer.refused and any("Zinoviev" in c.quote for c in answer.citations)
    # the features the answer was ranked by: the reader's own reading of the top passages
    reader, _ = engine.extractive.reading
    result = engine.searcher.search(question, 5)
    cands = engine.extractive.scorer.score(question, result.query_vector, result.passages)
    add_reader_features(reader, question, cands)
    read = [c for c in cands if c.features["reader_passage"] != READER_FLOOR]
    assert read and any(c.features["reader_best"] == 1.0 for c in read)
    ranked = list(dict.fromkeys(c.passage.chunk_id for c in sorted(cands, key=lambda c: c.passage_rank)))
    assert {c.passage.chunk_id for c in read} == set(ranked[:READ_PASSAGES])  # in retrieval order
    # one score per passage: its best span over its no-answer score
    assert len({(c.passage.chunk_id, c.features["reader_passage"]) for c in read}) == READ_PASSAGES
    store.close()


def test_answerability_head_marks_the_passage_that_answers(reader: Reader) -> None:
    passages = seed_passages()
    kremlin = reader.read("Siapa juru bicara Kremlin?", passages)
    assert all(r.answer is not None for r in kremlin)  # the shipped adapter has the head
    best = max(range(len(kremlin)), key=lambda i: kremlin[i].answer or 0.0)
    assert "Dmitry Peskov" in passages[best][0]
    off_topic = reader.read("What is the boiling point of liquid nitrogen?", passages)
    assert max(r.answer or 0.0 for r in off_topic) < (kremlin[best].answer or 0.0) - 1.0
