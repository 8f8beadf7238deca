"""`kabar watch` and `kabar remove`: keeping the index in step with the corpus."""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import click
from rich.console import Console

from bot.settings import Settings

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Index location (default: $KABAR_HOME or the XDG data dir).",
)


@click.command("watch")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--debounce",
    type=click.FloatRange(0.1),
    default=2.0,
    show_default=True,
    help="Quiet seconds before a run.",
)
@click.option("--no-prune", is_flag=True, help="Keep indexed articles whose files are deleted.")
@data_dir_option
def watch_cmd(paths: tuple[Path, ...], debounce: float, no_prune: bool, data_dir: Path | None) -> None:
    """Watch corpus folders (default: the configured corpus) and re-index after changes settle."""
    from bot.app import quiet_environment
    from index.embed import load_embedder
    from index.ingest import ChunkParams
    from index.watch import CorpusWatcher, sync_corpus

    settings = Settings()
    corpus = list(paths) or settings.corpus
    missing = [str(p) for p in corpus if not p.exists()]
    if missing:
        raise click.UsageError(f"no such corpus path: {', '.join(missing)}")
    target = settings.data_dir(data_dir)
    quiet_environment()
    embedder = load_embedder(
        settings.embed_model,
        settings.cache_dir,
        query_prefix=settings.query_prefix,
        passage_prefix=settings.passage_prefix,
    )
    chunking = ChunkParams(settings.chunk_tokens, settings.chunk_overlap)
    watch_log = logging.getLogger("index.watch")
    if watch_log.getEffectiveLevel() > logging.INFO:
        watch_log.setLevel(logging.INFO)  # what the watcher did is its output
    watcher = CorpusWatcher(
        corpus,
        lambda: sync_corpus(corpus, target, embedder, chunking, prune=not no_prune),
        debounce=debounce,
        ignore=[target],
    )
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop: leave like Ctrl-C
    try:
        watcher.serve()
    except KeyboardInterrupt:
        pass
    finally:
        watcher.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command("remove")
@click.argument("targets", nargs=-1, required=True)
@data_dir_option
def remove_cmd(targets: tuple[str, ...], data_dir: Path | None) -> None:
    """Remove articles from the index by ARTICLE_ID or file PATH (vectors, registry, keyword index)."""
    from index.ingest import remove_paths
    from index.store import Store, writer_lock

    target = Settings().data_dir(data_dir)
    if not (target / "kabar.sqlite").exists():
        raise click.ClickException(f"nothing is indexed in {target}")
    with writer_lock(target):
        store = Store(target)
        try:
            removed = remove_paths(targets, store)
            stats = store.stats()
        finally:
            store.close()
    if not removed:
        raise click.ClickException(f"no indexed article matches {', '.join(targets)}")
    Console().print(
        f"[green]Removed[/green] {len(removed)} article(s): {', '.join(removed)}. "
        f"Index now holds {stats['articles']} article(s), {stats['chunks']} chunk(s)."
    )
