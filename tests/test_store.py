"""The store: Chroma vectors and the SQLite registry stay in step; models are never mixed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.errors import KabarError, ModelMismatchError
from index.layout import writer_lock
from index.store import Store, chunk_of
from index.types import Article, Chunk, Sentence


def _article(article_id: str, sentences: list[str]) -> tuple[Article, list[Chunk]]:
    text = " ".join(sentences)
    spans, pos = [], 0
    for i, s in enumerate(sentences):
        spans.append(Sentence(s, 0, i, pos, pos + len(s)))
        pos += len(s) + 1
    chunks = [Chunk(article_id, i, s.text, [s]) for i, s in enumerate(spans)]
    return Article(article_id, text, title=f"Judul {article_id}", date="2024-10-21"), chunks


def _add(store: Store, embedder, article_id: str, sentences: list[str]) -> None:
    article, chunks = _article(article_id, sentences)
    store.add_article(article, chunks, embedder.embed_passages([c.embed_text for c in chunks]))


def _vector_ids(store: Store) -> list[str]:
    """Chunk ids of the stored vectors (a vector id is `chunk_id#hash of its text`)."""
    return sorted(chunk_of(i) for i in store.collection.get(include=[])["ids"])


def test_add_replace_remove_keeps_vectors_and_registry_in_step(
    tmp_path: Path, fake_embedder, store_mode
) -> None:
    store = store_mode.store(tmp_path, fake_embedder.name, fake_embedder.dim)
    _add(store, fake_embedder, "a", ["Satu dua.", "Tiga empat.", "Lima enam."])
    _add(store, fake_embedder, "b", ["Tujuh delapan."])
    assert _vector_ids(store) == ["a:0", "a:1", "a:2", "b:0"]
    _add(store, fake_embedder, "a", ["Satu dua."])  # a shorter new version replaces every old chunk
    assert _vector_ids(store) == ["a:0", "b:0"]
    assert store.all_chunks()[0] == ["a:0", "b:0"]
    _add(store, fake_embedder, "a", ["Satu tiga."])  # same chunk id, new text: a new vector id, old one gone
    assert _vector_ids(store) == ["a:0", "b:0"]
    assert store.passages([("a:0", 1.0)])[0].text == "Satu tiga."
    assert store.stats()["articles"] == 2 and store.stats()["chunks"] == 2
    assert store.remove_article("a") == 1
    assert _vector_ids(store) == ["b:0"]
    assert store.article_hashes().keys() == {"b"}


def test_dense_search_returns_cosines_and_passages_carry_metadata(
    tmp_path: Path, fake_embedder, store_mode
) -> None:
    store = store_mode.store(tmp_path, fake_embedder.name, fake_embedder.dim)
    _add(store, fake_embedder, "a", ["Duta besar Rusia dipanggil.", "Harga beras naik."])
    hits = store.dense_search(fake_embedder.embed_queries(["harga beras naik"])[0], 5)
    assert [cid for cid, _ in hits][0] == "a:1"
    assert hits[0][1] == pytest.approx(1.0, abs=1e-4)  # identical bag of words
    (p,) = store.passages([("a:1", 0.5)])
    assert (p.text, p.meta["title"], p.meta["date"], p.meta["chunk_no"]) == (
        "Harga beras naik.",
        "Judul a",
        "2024-10-21",
        1,
    )
    assert store.passages([("gone:0", 1.0)]) == []


def test_reconcile_drops_orphan_vectors(tmp_path: Path, fake_embedder, store_mode) -> None:
    store = store_mode.store(tmp_path, fake_embedder.name, fake_embedder.dim)
    _add(store, fake_embedder, "a", ["Satu dua."])
    # a crash after the vector write but before the registry write leaves vectors nobody knows
    store.db.execute("DELETE FROM chunks WHERE article_id = 'a'")
    store.db.commit()
    assert store.reconcile() == 1
    assert _vector_ids(store) == []


def test_refuses_to_mix_embedding_models(tmp_path: Path, fake_embedder, store_mode) -> None:
    store = store_mode.store(tmp_path, fake_embedder.name, fake_embedder.dim)
    _add(store, fake_embedder, "a", ["Satu dua."])
    store.close()
    with pytest.raises(ModelMismatchError, match="kabar index --rebuild"):
        store_mode.store(tmp_path, "another-model", fake_embedder.dim)
    assert store_mode.store(tmp_path).stats()["embed_model"] == fake_embedder.name  # a look-only open is fine


def test_second_writer_gets_a_clear_error(tmp_path: Path) -> None:
    with writer_lock(tmp_path):
        with pytest.raises(KabarError, match="Another `kabar index`"):
            with writer_lock(tmp_path):
                pass
    with writer_lock(tmp_path):  # released after use
        pass


@pytest.mark.slow
def test_writes_more_vectors_than_chromas_max_batch(tmp_path: Path, fake_embedder, store_mode) -> None:
    store = store_mode.store(tmp_path, fake_embedder.name, fake_embedder.dim)
    limit = store.max_batch_size()
    sentences = [f"Kalimat nomor {i} tentang berita." for i in range(limit + 10)]
    article, chunks = _article("big", sentences)
    vectors = np.tile(fake_embedder.embed_passages(["x"]), (len(chunks), 1))
    store.write([(article, chunks, vectors)])  # one Chroma call of this size would be rejected
    assert store.stats()["chunks"] == len(chunks)
    assert store.collection.count() == len(chunks)


def test_a_reader_reopening_while_another_store_opens_the_same_path_never_gets_a_stopped_chroma(
    tmp_path: Path, fake_embedder
) -> None:
    # The bot's reader reopens its vectors (refresh) while /reindex's writer opens and closes its own
    # Store on the same path in another thread; Chroma's per-path system must not be stopped under either.
    import threading

    writer = Store(tmp_path, fake_embedder.name, fake_embedder.dim)
    _add(writer, fake_embedder, "a", ["Duta besar Rusia dipanggil.", "Harga beras naik."])
    writer.close()
    reader = Store(tmp_path, fake_embedder.name, fake_embedder.dim)
    query = fake_embedder.embed_queries(["harga beras naik"])[0]
    errors: list[BaseException] = []

    def run(step) -> None:
        try:
            for _ in range(150):
                step()
        except BaseException as e:  # noqa: BLE001 - any failure in either thread is the finding
            errors.append(e)

    def read() -> None:
        reader.refresh()
        assert reader.dense_search(query, 2)

    def open_and_close() -> None:
        other = Store(tmp_path, fake_embedder.name, fake_embedder.dim)
        assert other.collection.count() == 2
        other.close()

    threads = [threading.Thread(target=run, args=(f,)) for f in (read, open_and_close)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    reader.close()
    assert errors == []
