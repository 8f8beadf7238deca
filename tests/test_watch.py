"""The watcher on a real folder: re-indexes after changes settle, prunes, survives bad files and locks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from synthetic import make_corpus, write_article

from index.indexer import Indexer
from index.layout import writer_lock
from index.store import Store
from index.watch import CorpusWatcher


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the watcher")
        time.sleep(0.05)


def article_count(data: Path) -> int:
    store = Store(data)
    try:
        return store.stats()["articles"]
    finally:
        store.close()


@pytest.fixture
def watching(tmp_path: Path, fake_embedder) -> Iterator[tuple[Path, Path, CorpusWatcher]]:
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    make_corpus(corpus, 2)
    watcher = CorpusWatcher(
        [corpus],
        lambda: Indexer(data, fake_embedder).sync([corpus], prune=True)[0],
        debounce=0.3,
        retry=0.2,
        ignore=[data],
    )
    thread = threading.Thread(target=watcher.serve, daemon=True)
    thread.start()
    wait_for(lambda: watcher.runs >= 1)  # the catch-up run at start
    yield corpus, data, watcher
    watcher.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_new_edited_and_deleted_files_are_synced(watching, fake_embedder, caplog) -> None:
    corpus, data, watcher = watching
    caplog.set_level(logging.INFO, logger="index.watch")
    assert article_count(data) == 2
    runs = watcher.runs
    new = [write_article(corpus, 10 + i) for i in range(3)]  # a burst: one debounced run
    wait_for(lambda: article_count(data) == 5)
    time.sleep(0.5)
    assert watcher.runs == runs + 1
    assert "re-indexed: 3 new" in caplog.text

    new[0].unlink()  # pruned by default
    (corpus / "sub").mkdir()
    new[1].rename(corpus / "sub" / new[1].name)
    wait_for(lambda: "1 removed, 1 moved" in caplog.text)
    assert article_count(data) == 4
    time.sleep(0.8)  # let the new folder's late events settle
    runs = watcher.runs
    (corpus / ".hidden.swp").write_text("editor noise", encoding="utf-8")
    time.sleep(0.8)
    assert watcher.runs == runs  # hidden files do not trigger a run


def test_survives_a_bad_file_and_a_locked_index(watching, caplog) -> None:
    corpus, data, watcher = watching
    caplog.set_level(logging.INFO, logger="index.watch")
    runs = watcher.runs
    (corpus / "broken.json").write_text("{not json", encoding="utf-8")
    wait_for(lambda: watcher.runs == runs + 1)
    assert "skipped" in caplog.text and "broken.json" in caplog.text

    with writer_lock(data):  # another writer holds the index: the watcher retries
        write_article(corpus, 42)
        wait_for(lambda: "will retry" in caplog.text)
        assert article_count(data) == 2
    wait_for(lambda: watcher.runs == runs + 2)
    assert article_count(data) == 3


def test_relevant_paths(tmp_path: Path) -> None:
    corpus = tmp_path / ".config" / "corpus"  # a hidden folder above the corpus does not hide it
    watcher = CorpusWatcher([corpus], lambda: None, ignore=[corpus / "data"])  # type: ignore[arg-type]
    base = str(corpus.resolve())
    assert [
        watcher.relevant(p)
        for p in [f"{base}/a.txt", f"{base}/sub/b.md", f"{base}/.a.txt.swp", f"{base}/data/x", "/elsewhere/a"]
    ] == [True, True, False, False, False]
