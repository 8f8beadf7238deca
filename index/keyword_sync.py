"""Where a reader's keyword index comes from: the writer's versions in the data dir, or a local cache of a
server collection kept in step by ids.

Either way the reader holds a `KeywordIndex` and asks `refresh()` before searching; segments it already
holds are immutable, so only what changed is read or tokenized.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from index.keyword import KeywordIndex

if TYPE_CHECKING:
    from index.remote import RemoteStore

log = logging.getLogger(__name__)


class LocalKeywords:
    """The keyword index a writer publishes in its data dir (embedded mode)."""

    def __init__(self, root: Path, on_change: Callable[[], None] | None = None):
        self.root = root
        self.on_change = on_change  # a new version means new vectors too: the caller reopens them
        self.index: KeywordIndex = KeywordIndex()
        self.version: int | None = None
        self._loaded = False

    def refresh(self) -> bool:
        """Load the current version if it is not the one held; whether it changed."""
        version = KeywordIndex.current_version(self.root)
        if self._loaded and version == self.version:
            return False
        if self._loaded and self.on_change is not None:
            self.on_change()  # another process may have written the vectors: Chroma sees them when reopened
        try:  # segments already loaded are immutable: only the new ones are read
            self.index, self.version = KeywordIndex.load(self.root, reuse=self.index)
        except FileNotFoundError:  # two newer versions were published while loading: take the newest
            self.index, self.version = KeywordIndex.load(self.root, reuse=self.index)
        self._loaded = True
        return True


class SyncedKeywords:
    """A reader's keyword cache of a server collection, synced by ids when the collection changes.

    The change check (collection id, the writer's generation, the record count) costs two small requests
    and runs at most every `interval` seconds; a change lists the collection's ids, tokenizes the records
    the cache lacks into one new segment and tombstones the ones gone. Reader processes sharing a data dir
    share the cache: one syncs under a lock, the others load what it saved.
    """

    def __init__(self, store: RemoteStore, root: Path, interval: float = 2.0, clock=time.monotonic):
        self.store = store
        self.root = root
        self.interval = interval
        self.clock = clock
        self.index: KeywordIndex = KeywordIndex()
        self.version: int | None = None
        self.token: tuple[str, int, int] | None = None
        self._checked: float | None = None
        self.last_sync: dict[str, float] = {}  # what the last sync did (added, removed, seconds)

    def refresh(self) -> bool:
        """Sync if the collection changed since the last look (looked at most every `interval` s)."""
        now = self.clock()
        if self._checked is not None and now - self._checked < self.interval:
            return False
        token = self.store.change_token()
        self._checked = now
        if token == self.token and self.version is not None:
            return False
        self.sync()
        self.token = token
        return True

    def sync(self) -> None:
        """Bring the cache in line with the collection's ids (what others saved first is reused)."""
        t0 = time.perf_counter()
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / "sync.lock"):
            try:
                self.index, self.version = KeywordIndex.load(self.root, reuse=self.index)
            except (FileNotFoundError, ValueError, OSError) as e:  # a broken cache is only a cache
                log.warning("keyword cache in %s unreadable (%s): rebuilt from the server", self.root, e)
                self.index, self.version = KeywordIndex(), None
            wanted, have = self.store.all_ids(), self.index.keys()
            added, removed = sorted(wanted - have), have - wanted
            if added or removed or self.version is None:
                texts = self.store.keyword_texts(added)  # a record deleted meanwhile is simply absent
                version = (KeywordIndex.current_version(self.root) or 0) + 1
                self.index = self.index.updated(f"s{version:06d}", texts, removed)
                self.index.save(self.root, version)
                self.version = version
                self.last_sync = {
                    "added": len(texts),
                    "removed": len(removed),
                    "seconds": time.perf_counter() - t0,
                }
                log.info("keyword cache synced from %s: %s", self.store.where, self.last_sync)


@contextmanager
def _locked(path: Path):
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
