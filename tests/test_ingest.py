"""Indexing a corpus folder: reports, skips bad files, adds nothing twice."""

from __future__ import annotations

import json
from pathlib import Path

from index.ingest import index_paths
from index.search import Searcher
from index.store import Store


def test_index_reports_and_skips_bad_files(tmp_path: Path, corpus: Path, fake_embedder) -> None:
    (corpus / "broken.json").write_text("{not json", encoding="utf-8")
    (corpus / "photo.png").write_bytes(b"\x89PNG\r\n")
    (corpus / "more.jsonl").write_text(
        json.dumps({"doc_id": "x1", "title": "Harga beras", "text": "Harga beras naik tajam di Jakarta."})
        + "\n",
        encoding="utf-8",
    )
    store = Store(tmp_path / "data", fake_embedder.name, fake_embedder.dim)
    report = index_paths([corpus], store, fake_embedder)
    assert report.added == 2 and report.updated == 0 and report.unchanged == 0
    skipped = dict(report.skipped)
    assert set(skipped) == {str(corpus / "broken.json"), str(corpus / "photo.png")}
    stats = store.stats()
    assert stats["articles"] == 2
    assert stats["chunks"] == report.chunks_embedded
    assert stats["last_indexed"] is not None
    assert len(store.collection.get(include=[])["ids"]) == stats["chunks"]


def test_rerun_is_a_no_op_and_edits_replace(tmp_path: Path, corpus: Path, fake_embedder) -> None:
    store = Store(tmp_path / "data", fake_embedder.name, fake_embedder.dim)
    first = index_paths([corpus], store, fake_embedder)
    chunks = store.stats()["chunks"]
    calls = len(fake_embedder.calls)
    again = index_paths([corpus], store, fake_embedder)
    assert (again.added, again.updated, again.unchanged, again.chunks_embedded) == (0, 0, 1, 0)
    assert len(fake_embedder.calls) == calls  # nothing re-embedded
    assert store.stats()["chunks"] == chunks

    seed = next(corpus.glob("*.txt"))
    seed.write_text(
        seed.read_text(encoding="utf-8") + "\nArtikel ini diperbarui pada Selasa.\n", encoding="utf-8"
    )
    edited = index_paths([corpus], store, fake_embedder)
    # the edited text is a new article id (ids are content-derived) that replaces the file's old one
    assert (edited.added, edited.updated, edited.removed) == (0, 1, 0) and first.added == 1
    assert store.stats()["articles"] == 1
    ids = store.collection.get(include=[])["ids"]
    assert len(ids) == len(set(ids)) == store.stats()["chunks"]


def test_keyword_side_finds_seed_names_and_numbers(tmp_path: Path, corpus: Path, fake_embedder) -> None:
    store = Store(tmp_path / "data", fake_embedder.name, fake_embedder.dim)
    index_paths([corpus], store, fake_embedder)
    searcher = Searcher(store, fake_embedder)
    for query, expected in [("Zinoviev", "Georgiy Zinoviev"), ("13.000 kontainer", "13.000 kontainer")]:
        top = searcher.search(query, 3).passages[0]
        assert expected in top.text
        assert top.keyword is not None and top.keyword > 0


def test_a_large_json_lines_corpus_is_embedded_in_batches(tmp_path: Path, fake_embedder) -> None:
    corpus = tmp_path / "big.jsonl"
    corpus.write_text(
        "".join(
            json.dumps({"doc_id": f"d{i}", "text": f"Berita nomor {i}. Isinya tentang hal {i} yang penting."})
            + "\n"
            for i in range(300)
        ),
        encoding="utf-8",
    )
    store = Store(tmp_path / "data", fake_embedder.name, fake_embedder.dim)
    report = index_paths([corpus], store, fake_embedder, batch_chunks=64)
    assert report.added == 300 and store.stats()["chunks"] == 300
    assert len(fake_embedder.calls) >= 300 // 64  # not the whole file in one go
