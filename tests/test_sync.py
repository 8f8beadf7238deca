"""Incremental sync: add, edit, rename, delete and re-index, asserting exact store contents."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from synthetic import (
    article_text,
    assert_consistent,
    clean_build,
    jsonl_record,
    make_corpus,
    snapshot,
    write_article,
)

from index.ingest import index_paths, remove_paths
from index.keyword import KeywordIndex
from index.layout import DataDir
from index.load import load_file
from index.search import Searcher
from index.store import Store, chunk_of


@pytest.fixture
def store(tmp_path: Path, fake_embedder, store_mode) -> Store:
    """A writer's store, embedded and on a real Chroma server."""
    return store_mode.store(tmp_path / "data", fake_embedder.name, fake_embedder.dim)


@pytest.fixture
def local_store(tmp_path: Path, fake_embedder) -> Store:
    """An embedded store: for what only embedded mode has (the writer's keyword segments, old layouts)."""
    return Store(tmp_path / "data", fake_embedder.name, fake_embedder.dim)


def embedded(embedder) -> list[str]:
    return [t for call in embedder.calls for t in call]


def test_second_run_adds_nothing(tmp_path: Path, store: Store, fake_embedder) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 5)
    first = index_paths([corpus], store, fake_embedder)
    before = snapshot(store)
    assert (first.added, first.chunks_embedded) == (5, len(before["chunks"]))
    assert len(before["articles"]) == 5 and len(before["chunks"]) >= 3 * 5
    assert_consistent(before)
    fake_embedder.calls.clear()
    again = index_paths([corpus], store, fake_embedder)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 5, 0)
    assert fake_embedder.calls == [] and snapshot(store) == before


def test_typo_fix_reembeds_only_the_chunks_holding_it(tmp_path: Path, store: Store, fake_embedder) -> None:
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 3)
    index_paths([corpus], store, fake_embedder)
    old_ids = {a for a, _, _ in snapshot(store)["articles"]}
    text = paths[1].read_text(encoding="utf-8")
    word = text.split("\n\n")[3].split()[1]  # a word in the middle of the article
    paths[1].write_text(text.replace(word, word + "x", 1), encoding="utf-8")
    fake_embedder.calls.clear()
    report = index_paths([corpus], store, fake_embedder)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, 2, 0)
    texts = embedded(fake_embedder)  # one call: the changed chunks, then the changed sentences
    chunks, sentences = texts[: report.chunks_embedded], texts[report.chunks_embedded :]
    assert 1 <= len(chunks) <= 2 and all(word + "x" in t for t in chunks)
    assert len(sentences) == report.sentences_embedded == 1 and word + "x" in sentences[0]
    snap = snapshot(store)
    assert len(snap["articles"]) == 3 and len(old_ids - {a for a, _, _ in snap["articles"]}) == 1
    assert_consistent(snap)
    assert snap == clean_build(corpus, tmp_path, fake_embedder)


def test_rename_and_move_reembed_nothing(tmp_path: Path, store: Store, fake_embedder) -> None:
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 3)
    index_paths([corpus], store, fake_embedder)
    before = snapshot(store)
    (corpus / "sub").mkdir()
    paths[0].rename(corpus / "sub" / "renamed.txt")
    fake_embedder.calls.clear()
    report = index_paths([corpus], store, fake_embedder)
    assert (report.added, report.updated, report.unchanged, report.removed, report.moved) == (0, 0, 3, 0, 1)
    assert fake_embedder.calls == [] and snapshot(store) == before
    (moved_id,) = [a for a, (_, origin, _, _) in store.indexed().items() if origin.endswith("renamed.txt")]
    assert store.find(str(corpus / "sub" / "renamed.txt")) == [moved_id]


def test_delete_needs_prune_and_remove_takes_id_or_path(tmp_path: Path, store: Store, fake_embedder) -> None:
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 4)
    index_paths([corpus], store, fake_embedder)
    paths[0].unlink()
    kept = index_paths([corpus], store, fake_embedder)
    assert (kept.removed, len(snapshot(store)["articles"])) == (0, 4)  # deleted files stay without --prune
    pruned = index_paths([corpus], store, fake_embedder, prune=True)
    assert pruned.removed == 1
    assert snapshot(store) == clean_build(corpus, tmp_path, fake_embedder)

    (by_path,) = remove_paths([str(paths[1])], store)
    by_id = store.find(str(paths[2]))
    assert remove_paths(by_id, store) == by_id
    assert remove_paths(["no-such-article"], store) == []
    snap = snapshot(store)
    assert_consistent(snap)
    assert len(snap["articles"]) == 1 and by_path not in {a for a, _, _ in snap["articles"]}
    if not store.remote:  # the writer's own keyword index (server readers keep theirs: the snapshot above)
        keywords, version = KeywordIndex.load(DataDir(store.data_dir).keyword)
        assert str(version) == store.meta("keyword_version") and keywords.keys() == store.keyword_keys()


def test_new_articles_are_tokenized_alone_into_a_new_keyword_segment(
    tmp_path: Path, local_store: Store, fake_embedder
) -> None:
    store = local_store
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 12)
    hold = [p.rename(tmp_path / p.name) for p in paths[10:]]
    index_paths([corpus], store, fake_embedder)
    root = DataDir(store.data_dir).keyword
    (base,) = KeywordIndex.load(root)[0].segments
    written = (root / base.name / "postings.npz").stat().st_mtime_ns
    for p in hold:
        p.rename(corpus / p.name)
    index_paths([corpus], store, fake_embedder)
    keywords, _ = KeywordIndex.load(root)
    old, new = keywords.segments
    assert old.name == base.name and (root / base.name / "postings.npz").stat().st_mtime_ns == written
    new_chunks = {c for a, _, _ in snapshot(store)["articles"] for c in store.chunk_ids([a])} - {
        chunk_of(k) for k in base.keys
    }
    assert {chunk_of(k) for k in new.keys} == new_chunks and len(new_chunks) >= 2
    # removing one article only tombstones its chunks (under a fifth of the rows: no merge)
    remove_paths([str(corpus / hold[0].name)], store)
    keywords, _ = KeywordIndex.load(root)
    assert [s.name for s in keywords.segments] == [old.name, new.name]
    assert keywords.keys() == store.keyword_keys()
    (corpus / hold[0].name).unlink()
    fresh = Store(tmp_path / "fresh", fake_embedder.name, fake_embedder.dim)
    index_paths([corpus], fresh, fake_embedder)
    rebuilt, _ = KeywordIndex.load(DataDir(fresh.data_dir).keyword)
    for q in ("Korea", "harga beras", "pasukan Rusia"):
        assert keywords.search(q, 5) == rebuilt.search(q, 5)


def test_edit_add_delete_together_match_a_clean_build(tmp_path: Path, store: Store, fake_embedder) -> None:
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 6)
    index_paths([corpus], store, fake_embedder)
    paths[0].unlink()
    paths[1].write_text(f"Judul: Judul baru\n\n{article_text(1)}\n", encoding="utf-8")  # title: all chunks
    shutil.copy(paths[2], corpus / "copy_of_2.txt")  # the same article twice: indexed once
    write_article(corpus, 99)
    fake_embedder.calls.clear()
    report = index_paths([corpus], store, fake_embedder, prune=True)
    assert (report.added, report.updated, report.unchanged, report.removed) == (1, 1, 4, 1)
    assert any("duplicate of" in reason for _, reason in report.skipped)
    assert report.chunks_embedded == 4 + 4  # new title: all 4 chunks
    assert len(embedded(fake_embedder)) == report.chunks_embedded + report.sentences_embedded
    snap = snapshot(store)
    assert_consistent(snap)
    assert snap == clean_build(corpus, tmp_path, fake_embedder)


def test_a_broken_file_keeps_its_indexed_article(tmp_path: Path, store: Store, fake_embedder) -> None:
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 2)
    index_paths([corpus], store, fake_embedder)
    before = snapshot(store)
    paths[0].write_bytes(b"\x00\x01binary")
    report = index_paths([corpus], store, fake_embedder, prune=True)
    assert (report.removed, report.skipped[0][0]) == (0, str(paths[0]))
    assert snapshot(store) == before


def test_jsonl_records_sync_one_by_one(tmp_path: Path, store: Store, fake_embedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    feed = corpus / "feed.jsonl"
    feed.write_text("".join(jsonl_record(i) for i in range(3)), encoding="utf-8")
    index_paths([corpus], store, fake_embedder)
    with feed.open("a", encoding="utf-8") as f:
        f.write(jsonl_record(3))
    fake_embedder.calls.clear()
    report = index_paths([corpus], store, fake_embedder)
    assert (report.added, report.unchanged) == (1, 3)
    chunks = embedded(fake_embedder)[: report.chunks_embedded]
    assert chunks and all("Rekaman 3" in t for t in chunks)
    # edit one record, drop another: replaced and removed in place, no --prune needed
    lines = feed.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[0] = jsonl_record(0, article_text(0, paragraphs=2).replace("Pejabat", "Petugas", 1))
    del lines[2]
    feed.write_text("".join(lines), encoding="utf-8")
    report = index_paths([corpus], store, fake_embedder)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, 2, 1)
    assert sorted(store.article_hashes()) == ["rec0", "rec1", "rec3"]
    assert snapshot(store) == clean_build(corpus, tmp_path, fake_embedder)


def test_searcher_sees_edits_without_a_restart(
    tmp_path: Path, store: Store, fake_embedder, store_mode
) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 2)
    index_paths([corpus], store, fake_embedder)
    reader = store_mode.reader(store.home)
    searcher = Searcher(reader, fake_embedder)
    query = "Judul: Kebun binatang\nSeekor zebra dan jerapah lahir."
    assert all("zebra" not in p.text for p in searcher.search(query, 3).passages)
    (corpus / "zoo.txt").write_text("Judul: Kebun binatang\n\nSeekor zebra dan jerapah lahir.\n", "utf-8")
    index_paths([corpus], store, fake_embedder)
    top = searcher.search(query, 3).passages[0]
    assert "zebra" in top.text and top.keyword is not None and top.dense == pytest.approx(1.0, abs=1e-4)


def test_unchanged_bytes_are_not_parsed_again(tmp_path: Path, store: Store, fake_embedder) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 2)
    feed = corpus / "feed.jsonl"
    feed.write_text("".join(jsonl_record(i) for i in range(3)), encoding="utf-8")
    index_paths([corpus], store, fake_embedder)
    known = {raw for _, _, _, raw in store.indexed().values()}
    assert len(known) == 5
    items = [item for path in sorted(corpus.iterdir()) for item in load_file(path, known=known)]
    assert [type(i).__name__ for i in items] == ["Unchanged"] * 5
    # the same record written differently: parsed, found unchanged, its raw hash updated (nothing embedded)
    lines = feed.read_text(encoding="utf-8").splitlines()
    lines[1] = json.dumps(json.loads(lines[1]), indent=None, separators=(",", ":"))
    feed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    before = snapshot(store)
    fake_embedder.calls.clear()
    report = index_paths([corpus], store, fake_embedder)
    assert (report.unchanged, report.moved, fake_embedder.calls) == (5, 1, [])
    assert snapshot(store) == before
    assert index_paths([corpus], store, fake_embedder).moved == 0


def test_kabar_remove_command(tmp_path: Path, store: Store, fake_embedder, monkeypatch, store_mode) -> None:
    from click.testing import CliRunner

    from bot.cli.main import cli

    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 3)
    index_paths([corpus], store, fake_embedder)
    (target,) = store.find(str(paths[0]))
    monkeypatch.setenv("KABAR_HOME", str(store.home))
    if store.target is not None:
        monkeypatch.setenv("KABAR_CHROMA_URL", store.target.url)
        monkeypatch.setenv("KABAR_CHROMA_COLLECTION", store.target.collection)
    result = CliRunner().invoke(cli, ["remove", str(paths[0]), "no-such-id"])
    assert result.exit_code == 0, result.output
    assert f"Removed 1 article(s): {target}" in result.output
    assert "2 article(s)" in result.output
    missing = CliRunner().invoke(cli, ["remove", "no-such-id"])
    assert missing.exit_code == 1 and "no indexed article matches no-such-id" in missing.output


def test_an_index_from_before_origins_and_hashed_vector_ids_upgrades_in_place(
    tmp_path: Path, local_store: Store, fake_embedder
) -> None:
    store = local_store
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 3)
    index_paths([corpus], store, fake_embedder)
    # what the migration makes of an older index: bare chunk ids in Chroma, origin = path, no raw hash
    collection = store.collection
    got = collection.get(include=["embeddings"])
    collection.delete(ids=got["ids"])
    collection.add(ids=[chunk_of(i) for i in got["ids"]], embeddings=got["embeddings"])
    with store.db:
        store.db.execute("UPDATE chunks SET vector_id = chunk_id")
        store.db.execute("UPDATE articles SET origin = path, raw_hash = NULL")
        store.set_meta("dirty", "1")  # reconcile must keep the bare ids the registry names
    fake_embedder.calls.clear()
    report = index_paths([corpus], store, fake_embedder)
    assert (report.unchanged, report.moved, fake_embedder.calls) == (3, 3, [])
    assert sorted(collection.get(include=[])["ids"]) == sorted(v for _, _, v in snapshot(store)["chunks"])
    hits = store.dense_search(fake_embedder.embed_queries([paths[0].read_text(encoding="utf-8")])[0], 3)
    assert hits and all("#" not in cid for cid, _ in hits)
    paths[0].unlink()
    index_paths([corpus], store, fake_embedder, prune=True)
    got, clean = snapshot(store), clean_build(corpus, tmp_path, fake_embedder)
    assert_consistent(got)
    assert (got["articles"], got["keyword"]) == (clean["articles"], clean["keyword"])
    assert [chunk_of(v) for v in got["vectors"]] == [chunk_of(v) for v in clean["vectors"]]  # legacy ids kept


@pytest.mark.integration
def test_a_typo_fix_reembeds_one_or_two_chunks_with_the_real_model(tmp_path: Path, real_embedder) -> None:
    from conftest import SEED

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seed = corpus / SEED.name
    text = SEED.read_text(encoding="utf-8")
    seed.write_text(text, encoding="utf-8")
    store = Store(tmp_path / "data", real_embedder.name, real_embedder.dim)
    first = index_paths([corpus], store, real_embedder)
    assert first.chunks_embedded >= 4
    for old, new in [("Cheong", "Cheomg"), ("kapal selam", "kapal selan")]:
        seed.write_text(text.replace(old, new, 1), encoding="utf-8")
        report = index_paths([corpus], store, real_embedder)
        assert report.updated == 1 and 1 <= report.chunks_embedded <= 2, report
        assert report.chunks_embedded + report.chunks_reused == store.stats()["chunks"]
        seed.write_text(text, encoding="utf-8")  # and back: the replaced chunk's vector is gone, re-embedded
        assert 1 <= index_paths([corpus], store, real_embedder).chunks_embedded <= 2
