"""A full disk and a read-only data dir, on real small filesystems (tmpfs mounts: needs root, else skipped).

Disk full: the run stops with one clear error, the steps committed before stay readable, and once space is
freed the next run completes into exactly a clean build. Read-only: answers still come, indexing says why not.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FakeEmbedder
from synthetic import assert_consistent, clean_build, make_corpus, snapshot

from bot.discordbot.memory import MemoryFile
from index.errors import IndexWriteError
from index.indexer import Indexer
from index.layout import DataDir
from index.search import Searcher
from index.store import Store

pytestmark = pytest.mark.slow

QUERIES = ["harga beras di Jakarta", "banjir di Medan", "bandara nomor 2"]


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs (room for ~10 generated articles' index, not for 200)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt))
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        pytest.skip(f"cannot mount a tmpfs here: {e}")
    yield mnt
    for target in sorted(tmp_path.glob("*"), reverse=True):  # the read-only view first, then the tmpfs
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


def answers(data: Path) -> list[list[str]]:
    store = Store(data, FakeEmbedder.name, FakeEmbedder.dim)
    try:
        searcher = Searcher(store, FakeEmbedder())
        return [[p.chunk_id for p in searcher.search(q, 5).passages] for q in QUERIES]
    finally:
        store.close()


def test_a_full_disk_stops_the_run_clearly_and_the_next_run_completes(small_fs: Path, tmp_path: Path):
    corpus, data = tmp_path / "corpus", small_fs / "data"
    make_corpus(corpus, 10)
    Indexer(data, FakeEmbedder()).sync([corpus])
    make_corpus(corpus, 200, start=10)  # far more than the filesystem holds

    with pytest.raises(IndexWriteError) as e:
        Indexer(data, FakeEmbedder(), batch_chunks=64).sync([corpus])
    message = str(e.value)
    assert message.startswith(f"No space left on the device of {data}") and "`kabar index`" in message
    assert "\n" not in message

    _mount("-o", "remount,size=64m", str(small_fs))  # space freed
    assert all(answers(data))  # what was committed before is readable
    store = Store(data)
    registered = {v for _, _, v in snapshot(store)["chunks"]}
    assert registered <= set(store.collection.get(include=[])["ids"])  # every registered chunk has its vector
    store.close()

    report, stats = Indexer(data, FakeEmbedder(), batch_chunks=64).sync([corpus])
    assert stats["articles"] == 210 and report.skipped == []
    store = Store(data)
    snap = snapshot(store)
    store.close()
    assert_consistent(snap)
    assert snap == clean_build(corpus, tmp_path, FakeEmbedder())


def test_a_read_only_data_dir_still_answers_and_indexing_says_it_cannot_write(small_fs, tmp_path, caplog):
    corpus, data = tmp_path / "corpus", small_fs / "data"
    make_corpus(corpus, 10)
    Indexer(data, FakeEmbedder()).sync([corpus])
    expected = answers(data)
    view = tmp_path / "view"  # the same files, mounted read-only
    view.mkdir()
    _mount("--bind", str(small_fs), str(view))
    _mount("-o", "remount,ro,bind", str(view))
    ro = view / "data"
    assert not os.access(ro, os.W_OK)

    assert answers(ro) == expected
    assert Indexer(ro).stats()["articles"] == 10
    make_corpus(corpus, 2, start=10)
    with pytest.raises(IndexWriteError, match=f"Cannot write to {ro}: it is read-only"):
        Indexer(ro, FakeEmbedder()).sync([corpus])
    memory = MemoryFile(DataDir(ro).bot_memory)  # the bot runs, remembering in memory only
    assert memory.path == ":memory:" and "bot memory" in caplog.text
