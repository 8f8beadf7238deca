"""Kabar's exceptions: each says what went wrong and where."""

import sqlite3


class KabarError(Exception):
    """Base class for errors shown to users as a clean message."""


class LoadError(KabarError):
    """A corpus file could not be read or parsed."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ModelMismatchError(KabarError):
    """The index was built with another embedding model."""


class ModelBuildError(KabarError):
    """The bundled embedding model could not be rebuilt."""


class IndexEmptyError(KabarError):
    """Nothing has been indexed yet."""


class IndexLockedError(KabarError):
    """Another process is writing to the index."""


class IndexCorrupt(KabarError):
    """A stored part of the index is damaged: the message names it and the command that repairs it."""

    def __init__(self, what: str, repair: str = "kabar index --rebuild", detail: str = ""):
        self.what = what
        self.repair = repair
        why = f" ({' '.join(detail.split())[:160]})" if detail else ""
        super().__init__(f"{what} is damaged{why}; repair it with `{repair}`.")


class IndexWriteError(KabarError):
    """The index could not be written: the disk is full, or the data dir is read-only."""


class IndexIdentityError(ModelMismatchError):
    """The index was built with other settings that shape it (chunking): mixing them is refused."""


class IndexUnavailable(KabarError):
    """The Chroma server holding the index cannot be reached right now (down, restarting, refusing us)."""


def is_corruption(e: sqlite3.DatabaseError) -> bool:
    """Whether SQLite says the file is damaged or not a database (not: locked, read-only, full)."""
    name = getattr(e, "sqlite_errorname", "")
    if name:
        return name in {"SQLITE_CORRUPT", "SQLITE_NOTADB"} or name.startswith("SQLITE_CORRUPT")
    return type(e) is sqlite3.DatabaseError  # no error code: the plain class is what corruption raises
