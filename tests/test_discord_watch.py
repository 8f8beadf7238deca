"""KABAR_DISCORD_WATCH: the bot's in-process watcher re-indexes through its worker and waits out a lock."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from synthetic import make_corpus, write_article

from bot.app import Kabar
from bot.discordbot.watching import corpus_watcher
from bot.discordbot.worker import Worker
from bot.settings import Settings
from index.layout import writer_lock
from index.store import Store


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the watcher"
        time.sleep(0.05)


def test_watcher_syncs_through_the_worker(tmp_path: Path, fake_embedder, caplog) -> None:
    caplog.set_level(logging.INFO, logger="index.watch")
    corpus, home = tmp_path / "corpus", tmp_path / "home"
    make_corpus(corpus, 2)
    s = Settings.load(None, home=home, cache_dir=tmp_path / "cache", corpus=[corpus], discord_watch=True)
    reader = Store(home, fake_embedder.name, fake_embedder.dim)
    worker = Worker(Kabar(s, home, fake_embedder, reader, None))  # type: ignore[arg-type]
    watcher = corpus_watcher(worker, debounce=0.3, retry=0.2)
    thread = watcher.start_thread()
    try:
        wait_for(lambda: watcher.runs == 1)
        assert reader.stats()["articles"] == 2
        with writer_lock(home):  # a /reindex holds the index: the watcher retries after it
            (corpus / "berita_0000.txt").unlink()
            write_article(corpus, 7)
            wait_for(lambda: "will retry" in caplog.text)
        wait_for(lambda: watcher.runs == 2)
        assert reader.stats()["articles"] == 2
        assert "1 new, 0 changed, 1 removed" in caplog.text
    finally:
        watcher.stop()
        thread.join(timeout=10)
        reader.close()
    assert not thread.is_alive()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_the_bot_starts_the_watcher_when_asked_and_stops_it_on_close(
    tmp_path: Path, fake_embedder
) -> None:
    from test_discord_startup import RecordingTree

    from bot.discordbot.client import KabarBot

    corpus, home = tmp_path / "corpus", tmp_path / "home"
    make_corpus(corpus, 1)
    for watch in (False, True):
        s = Settings.load(None, home=home, cache_dir=tmp_path / "cache", corpus=[corpus], discord_watch=watch)
        store = Store(home, fake_embedder.name, fake_embedder.dim)
        bot = KabarBot(Kabar(s, home, fake_embedder, store, None), s, tree_cls=RecordingTree)  # type: ignore[arg-type]
        await bot.setup_hook()
        watcher = bot.watcher
        assert (watcher is not None) == watch
        if watcher is not None:
            wait_for(lambda: watcher.runs == 1)  # noqa: B023
            assert store.stats()["articles"] == 1
        await bot.close()
        assert bot.watcher is None
        store.close()
