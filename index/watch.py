"""Watch corpus folders and re-index once changes settle (debounced), pruning deleted articles."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from index.errors import IndexLockedError, IndexUnavailable
from index.ingest import IndexReport

log = logging.getLogger(__name__)

Sync = Callable[[], IndexReport]


def describe(report: IndexReport) -> str:
    """One log line for a run."""
    return (
        f"{report.added} new, {report.updated} changed, {report.removed} removed, {report.moved} moved, "
        f"{report.unchanged} unchanged; {report.chunks_embedded} chunk(s) embedded, "
        f"{report.chunks_reused} reused, in {report.seconds:.1f} s"
    )


class CorpusWatcher:
    """Runs `sync` at start, then again `debounce` seconds after the last change under `paths`.

    A run that finds the index locked by another writer (or its Chroma server away) is retried after
    `retry` seconds; a run that fails is logged and retried on the next change, so one bad file or a busy
    index never stops the watcher.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        sync: Sync,
        *,
        debounce: float = 2.0,
        retry: float = 5.0,
        ignore: Sequence[Path] = (),
        on_report: Callable[[IndexReport], None] | None = None,
        busy: tuple[type[Exception], ...] = (IndexLockedError, IndexUnavailable),
    ):
        self.paths = [Path(p).resolve() for p in paths]
        self.sync = sync
        self.debounce = debounce
        self.retry = retry
        self.ignore = [Path(p).resolve() for p in ignore]
        self.on_report = on_report
        self.busy = busy  # what `sync` raises when another writer holds the index: retried
        self.runs = 0  # finished syncs, for callers that wait on the watcher
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._last_change = 0.0
        self._observer: object | None = None

    # --- file events -------------------------------------------------------------------------------
    def relevant(self, path: str) -> bool:
        """Whether a change to `path` can change the corpus (hidden files and the data dir cannot)."""
        p = Path(path)
        if any(p == i or i in p.parents for i in self.ignore):
            return False
        for w in self.paths:
            if p == w or w in p.parents:
                return not any(part.startswith(".") for part in p.relative_to(w).parts)
        return False

    def notice(self, path: str) -> None:
        """Record a change (called from the observer thread)."""
        if self.relevant(path):
            log.debug("change: %s", path)
            self._last_change = time.monotonic()
            self._changed.set()

    def start(self) -> None:
        """Start observing the paths (a file's folder is observed for that file)."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.event_type in ("opened", "closed_no_write"):
                    return  # reads change nothing
                if event.is_directory and event.event_type == "modified":
                    return  # its entries changed: they have events of their own
                for p in (event.src_path, getattr(event, "dest_path", "")):
                    if p:
                        watcher.notice(p if isinstance(p, str) else p.decode())

        observer = Observer()
        for path in self.paths:
            if path.is_dir():
                observer.schedule(Handler(), str(path), recursive=True)
            else:
                observer.schedule(Handler(), str(path.parent), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    # --- the loop ----------------------------------------------------------------------------------
    def serve(self) -> None:
        """Sync now, then after each settled burst of changes, until `stop()`."""
        if self._observer is None:
            self.start()
        log.info("watching %s", ", ".join(map(str, self.paths)))
        pending = True  # catch up with what changed while nobody watched
        while not self._stop.is_set():
            if not pending:
                self._changed.wait(timeout=0.5)
                if not self._changed.is_set():
                    continue
            # debounce: wait until nothing has changed for `debounce` seconds
            while not self._stop.is_set():
                quiet = time.monotonic() - self._last_change
                if quiet >= self.debounce:
                    break
                self._stop.wait(self.debounce - quiet)
            if self._stop.is_set():
                break
            self._changed.clear()  # the run covers every change so far; later ones set it again
            pending = not self._run_once()
            if pending:
                self._stop.wait(self.retry)

    def _run_once(self) -> bool:
        """One sync; False when it should be retried (index locked by another writer)."""
        try:
            report = self.sync()
        except self.busy as e:
            log.warning("not re-indexed, will retry in %.0f s: %s", self.retry, e)
            return False
        except Exception:
            log.exception("re-index failed; waiting for the next change")
            return True
        for path, reason in report.skipped:
            log.warning("skipped %s: %s", path, reason)
        log.info("re-indexed: %s", describe(report))
        self.runs += 1
        if self.on_report is not None:
            self.on_report(report)
        return True

    def start_thread(self) -> threading.Thread:
        """Observe and serve in a daemon thread (for a process that does other work, like the bot)."""
        self.start()
        thread = threading.Thread(target=self.serve, name="kabar-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop the loop and the observer."""
        self._stop.set()
        self._changed.set()
        observer = self._observer
        if observer is not None:
            observer.stop()  # type: ignore[attr-defined]
            observer.join(timeout=5)  # type: ignore[attr-defined]
            self._observer = None
