"""The Indexer: the one way to change an index (sync, add, remove, rebuild, stats), and its identity."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FakeEmbedder
from synthetic import make_corpus, snapshot

from bot.cli.main import cli
from index.errors import IndexIdentityError, IndexLockedError, ModelMismatchError
from index.indexer import Indexer
from index.layout import DataDir, writer_lock
from index.store import Store
from index.types import ChunkParams


def test_stats_of_a_data_dir_never_written_create_nothing(tmp_path: Path) -> None:
    data = tmp_path / "nothing"
    info = Indexer(data).stats("some-model")
    assert (info["articles"], info["chunks"], info["embed_model"]) == (0, 0, "some-model")
    assert not data.exists()


def test_sync_add_remove_and_rebuild(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    make_corpus(corpus, 3)
    indexer = Indexer(data, fake_embedder, ChunkParams(60, 1))
    report, stats = indexer.sync([corpus])
    assert (report.added, stats["articles"]) == (3, 3)
    first = snapshot_of(data, fake_embedder)

    extra = tmp_path / "extra.md"
    extra.write_text("# Banjir\n\nBanjir melanda Bekasi pada Senin pagi.\n", encoding="utf-8")
    with indexer.writer() as w:
        _, added = w.add(extra)
        _, again = w.add(extra)
    assert [(a.status, a.chunks > 0) for a in added] == [("added", True)]
    assert [a.status for a in again] == ["unchanged"]

    removed, stats = indexer.remove([str(extra)])
    assert removed == [added[0].article_id] and stats["articles"] == 3
    assert snapshot_of(data, fake_embedder) == first  # back to the same index, keyword segments included

    report, stats = indexer.sync([corpus], rebuild=True)
    assert (report.added, report.unchanged, stats["articles"]) == (3, 0, 3)  # wiped, then built again
    assert snapshot_of(data, fake_embedder) == first


def snapshot_of(data: Path, embedder: FakeEmbedder) -> dict:
    store = Store(data, embedder.name, embedder.dim)
    try:
        return snapshot(store)
    finally:
        store.close()


def test_a_second_writer_is_refused(tmp_path: Path, fake_embedder: FakeEmbedder) -> None:
    with writer_lock(tmp_path), pytest.raises(IndexLockedError):
        Indexer(tmp_path, fake_embedder).sync([])


def test_a_changed_chunking_is_refused_and_nothing_is_mixed(tmp_path: Path, fake_embedder) -> None:
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    make_corpus(corpus, 2)
    Indexer(data, fake_embedder, ChunkParams(60, 1)).sync([corpus])
    before = snapshot_of(data, fake_embedder)
    make_corpus(corpus, 4)  # new articles arrive
    with pytest.raises(IndexIdentityError) as e:
        Indexer(data, fake_embedder, ChunkParams(120, 1)).sync([corpus])
    message = str(e.value)
    assert "KABAR_CHUNK_TOKENS=120 (the index has 60)" in message and "kabar index --rebuild" in message
    assert "KABAR_CHUNK_OVERLAP" not in message  # only what changed is named
    assert snapshot_of(data, fake_embedder) == before  # nothing was written
    assert isinstance(e.value, ModelMismatchError)  # the same kind of error as a changed model

    report, stats = Indexer(data, fake_embedder, ChunkParams(120, 1)).sync([corpus], rebuild=True)
    assert stats["articles"] == 4 and report.added == 4
    store = Store(data)
    assert store.recorded_chunking() == ChunkParams(120, 1)
    store.close()


def test_the_cli_names_the_changed_setting_and_the_fix(kabar_env: Path, monkeypatch, capsys) -> None:
    """`kabar index` with another KABAR_CHUNK_TOKENS: one clear line, exit 1, the index as it was."""
    from bot.cli.main import main

    assert CliRunner().invoke(cli, ["index"]).exit_code == 0
    before = Indexer(kabar_env).stats()
    monkeypatch.setenv("KABAR_CHUNK_TOKENS", "80")
    monkeypatch.setattr("sys.argv", ["kabar", "index"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    out = " ".join(capsys.readouterr().err.split())
    assert "KABAR_CHUNK_TOKENS=80 (the index has 160)" in out and "kabar index --rebuild" in out
    assert "Traceback" not in out
    assert Indexer(kabar_env).stats() == before


def test_stats_and_remove_need_no_model(tmp_path: Path, fake_embedder, monkeypatch) -> None:
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    make_corpus(corpus, 2)
    Indexer(data, fake_embedder).sync([corpus])
    monkeypatch.setenv("KABAR_HOME", str(data))
    runner = CliRunner()
    assert '"articles": 2' in runner.invoke(cli, ["stats", "--json"]).output
    some = sorted(p for p in corpus.iterdir())[0]
    result = runner.invoke(cli, ["remove", str(some)])
    assert result.exit_code == 0 and "Index now holds 1 article(s)" in result.output
    result = runner.invoke(cli, ["remove", "no-such-article"])
    assert result.exit_code == 1 and "no indexed article matches no-such-article" in result.output
    empty = runner.invoke(cli, ["remove", "x", "--data-dir", str(tmp_path / "empty")])
    assert empty.exit_code == 1 and "nothing is indexed" in empty.output
    assert not DataDir(tmp_path / "empty").exists()
