"""The corpus watcher run inside the bot (KABAR_DISCORD_WATCH): re-indexes through the bot's worker."""

from __future__ import annotations

from bot.discordbot.worker import IndexBusy, Worker
from index.errors import IndexUnavailable
from index.watch import CorpusWatcher


def corpus_watcher(worker: Worker, debounce: float = 2.0, retry: float = 5.0) -> CorpusWatcher:
    """A watcher over the configured corpus folders that syncs (and prunes) through `worker`.

    The worker's re-index shares the model gate with questions, so answers keep flowing during a run.
    """
    kabar = worker.kabar
    corpus = [p for p in kabar.settings.index.corpus if p.exists()]
    return CorpusWatcher(
        corpus,
        lambda: worker.reindex_now(corpus, True)[0],
        debounce=debounce,
        retry=retry,
        ignore=[kabar.data_dir],
        busy=(IndexBusy, IndexUnavailable),  # another writer, or the Chroma server away: retried
    )
