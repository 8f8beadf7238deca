"""A data dir's layout: which file holds what, the writer lock, and wiping it for a rebuild.

Nothing else names the files inside a data dir.
"""

from __future__ import annotations

import errno
import fcntl
import os
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


LOW_SPACE_BYTES = 4 << 20  # below this much free space, a failed write is taken for a full disk


def write_problem(data_dir: Path, error: BaseException) -> str | None:
    """What a write failure means for the user (disk full, read-only), or None if it is neither."""
    text = str(error).lower()
    os_code = error.errno if isinstance(error, OSError) else None
    sqlite_code = getattr(error, "sqlite_errorcode", None)  # 13 SQLITE_FULL, 8 SQLITE_READONLY
    folder = data_dir if data_dir.exists() else data_dir.parent
    try:
        free: int | None = shutil.disk_usage(folder).free
    except OSError:
        free = None
    full = os_code in (errno.ENOSPC, errno.EDQUOT) or sqlite_code == 13 or "disk is full" in text
    read_only = os_code in (errno.EROFS, errno.EACCES, errno.EPERM) or sqlite_code == 8
    read_only = read_only or "readonly" in text or "read-only" in text or not os.access(folder, os.W_OK)
    # Chroma reports a full disk as a failed compaction: hence the look at the free space
    if full or "no space" in text or (not read_only and free is not None and free < LOW_SPACE_BYTES):
        left = f" ({free // 1024} KB free)" if free is not None else ""
        return (
            f"No space left on the device of {data_dir}{left}: free some space and run `kabar index` "
            "again (what was indexed before is kept, and the next run continues from it)."
        )
    if read_only:
        return (
            f"Cannot write to {data_dir}: it is read-only. `kabar ask` still reads it; "
            "to index, make it writable or use another --data-dir."
        )
    return None
