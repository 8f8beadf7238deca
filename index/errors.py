"""Kabar's exceptions: each says what went wrong and where."""


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


class IndexIdentityError(ModelMismatchError):
    """The index was built with other settings that shape it (chunking): mixing them is refused."""


class IndexUnavailable(KabarError):
    """The Chroma server holding the index cannot be reached right now (down, restarting, refusing us)."""
