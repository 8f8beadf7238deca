"""A data dir's layout: which file holds what, the writer lock, and wiping it for a rebuild.

Nothing else names the files inside a data dir.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from index.errors import IndexLockedError


class DataDir:
    """One index on disk: the SQLite registry, Chroma's folder, the keyword segments, the writer lock."""

    def __init__(self, root: Path):
        self.root = root
        self.registry = root / "kabar.sqlite"  # the registry of articles and chunks
        self.chroma = root / "chroma"  # Chroma's persistent folder (the vectors)
        self.keyword = root / "keyword"  # the keyword index's versions and segments
        self.lock = root / "write.lock"
        self.bot_memory = root / "bot-memory.sqlite"  # the Discord bot's conversations and answers

    def exists(self) -> bool:
        """Whether an index was ever written here."""
        return self.registry.exists()

    def wipe(self) -> None:
        """Delete the index (registry, vectors, keywords); the caller holds the writer lock."""
        for part in (self.chroma, self.keyword):
            shutil.rmtree(part, ignore_errors=True)
        for suffix in ("", "-wal", "-shm"):
            self.registry.with_name(self.registry.name + suffix).unlink(missing_ok=True)


@contextmanager
def writer_lock(data_dir: Path) -> Iterator[None]:
    """One writer at a time per data directory; a second one gets a clear error instead of waiting."""
    layout = DataDir(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(layout.lock, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexLockedError(
                f"Another `kabar index` is writing to {data_dir}; wait for it to finish and try again."
            ) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
