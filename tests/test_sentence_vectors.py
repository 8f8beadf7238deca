"""Sentence vectors stored with their chunks: written, re-used, moved, removed and rebuilt with them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import SEED, FakeEmbedder
from synthetic import make_corpus
from test_crash import DyingEmbedder

from bot.answer.extractive import SentenceScorer
from index import sentvec
from index.ingest import index_paths
from index.search import Searcher
from index.store import Store


def stored_sentences(store: Store) -> dict[str, np.ndarray]:
    """chunk id -> its stored sentence vectors, checked against embedding each sentence on its own."""
    ids = [cid for (cid,) in store.db.execute("SELECT chunk_id FROM chunks ORDER BY chunk_id")]
    vectors = store.vectors(ids)
    fresh = FakeEmbedder()
    out = {}
    for ps in store.passages([(cid, 0.0) for cid in ids]):
        rows = vectors[ps.chunk_id].sentences
        spans = ps.meta["sentences"]
        assert rows is not None and len(rows) == len(spans), ps.chunk_id
        base = spans[0][2]
        expected = fresh.embed_passages([ps.text[a - base : b - base] for _, _, a, b in spans])
        assert np.abs((rows * expected).sum(axis=1) - 1).max() < 1e-3  # int8 storage: cosine >= 0.999
        out[ps.chunk_id] = rows
    return out


def test_pack_round_trip_keeps_cosines() -> None:
    rows = np.random.default_rng(1).standard_normal((7, 384)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    back = sentvec.unpack(sentvec.pack(rows), 384)
    assert back.shape == rows.shape and np.abs(back @ rows[0] - rows @ rows[0]).max() < 2e-3
    with pytest.raises(ValueError):
        sentvec.unpack(sentvec.pack(rows)[:-8], 384)


def test_written_edited_moved_and_removed_with_their_chunks(
    tmp_path: Path, fake_embedder, store_mode
) -> None:
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 3)
    store = store_mode.store(tmp_path / "data", fake_embedder.name, fake_embedder.dim)
    report = index_paths([corpus], store, fake_embedder)
    first = stored_sentences(store)
    assert report.sentences_embedded == len({t for call in fake_embedder.calls for t in call}) - len(first)

    text = paths[0].read_text(encoding="utf-8")  # a typo fix: one sentence embedded again
    word = text.split("\n\n")[2].split()[1]
    paths[0].write_text(text.replace(word, word + "x", 1), encoding="utf-8")
    assert index_paths([corpus], store, fake_embedder).sentences_embedded == 1
    stored_sentences(store)

    moved = corpus / "sub"
    moved.mkdir()
    shutil.move(paths[1], moved / paths[1].name)  # a move: nothing embedded, vectors where they were
    fake_embedder.calls.clear()
    report = index_paths([corpus], store, fake_embedder, prune=True)
    assert (report.moved, fake_embedder.calls) == (1, [])
    kept = stored_sentences(store)
    same = first.keys() & kept.keys()  # the chunks of the two articles the typo fix left alone
    assert len(same) >= 2 and all(np.array_equal(kept[c], first[c]) for c in same)

    paths[2].unlink()  # a deletion: its records and their sentence vectors go
    index_paths([corpus], store, fake_embedder, prune=True)
    assert (
        len(store.collection.get(include=[])["ids"])
        == store.stats()["chunks"]
        == len(stored_sentences(store))
    )
    store.close()


def test_a_killed_run_and_its_rerun_store_what_a_clean_build_stores(tmp_path: Path, store_mode) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 12)
    store = store_mode.store(tmp_path / "data", FakeEmbedder.name, FakeEmbedder.dim)
    with pytest.raises(KeyboardInterrupt):
        index_paths([corpus], store, DyingEmbedder(3), batch_chunks=8)
    index_paths([corpus], store, FakeEmbedder())
    clean = Store(tmp_path / "clean", FakeEmbedder.name, FakeEmbedder.dim)
    index_paths([corpus], clean, FakeEmbedder())
    got, want = stored_sentences(store), stored_sentences(clean)
    assert got.keys() == want.keys() and all(np.array_equal(got[c], want[c]) for c in want)


def test_answers_embed_no_sentence(tmp_path: Path, store_mode) -> None:
    """With the vectors stored, scoring a question's sentences embeds nothing but the question."""
    store = store_mode.store(tmp_path, FakeEmbedder.name, FakeEmbedder.dim)
    index_paths([SEED], store, FakeEmbedder())
    embedder = FakeEmbedder()
    reader = store_mode.reader(tmp_path, FakeEmbedder.name, FakeEmbedder.dim)  # a server reader: from records
    result = Searcher(reader, embedder).search("Siapa duta besar Rusia untuk Korea Selatan?", 5)
    cands = SentenceScorer(embedder).score("Siapa duta besar Rusia?", result.query_vector, result.passages)
    assert cands and embedder.calls == []
    # an index without them (built before they were stored) still answers: its sentences are embedded
    for ps in result.passages:
        ps.sentence_vectors = None
    again = SentenceScorer(embedder).score("Siapa duta besar Rusia?", result.query_vector, result.passages)
    assert embedder.calls and [c.text for c in again] == [c.text for c in cands]
