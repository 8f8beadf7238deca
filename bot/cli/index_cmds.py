"""`kabar index`, `stats`, `remove` and `watch`: keeping the index in step with the corpus."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import click
from rich.console import Console

from bot.cli.common import Context, corpus_paths, data_dir_option, pass_context, progress_bars


@click.command("index")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--prune", is_flag=True, help="Also remove indexed articles whose files are gone.")
@click.option("--rebuild", is_flag=True, help="Delete the index first and build it from scratch.")
@click.option(
    "--rebuild-registry",
    is_flag=True,
    help="Server mode: recover this writer's registry from the Chroma collection first.",
)
@click.option(
    "--repair", is_flag=True, help="First rebuild the keyword index from the registry (no re-embedding)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@data_dir_option
@pass_context
def index_cmd(
    ctx: Context,
    paths: tuple[Path, ...],
    prune: bool,
    rebuild: bool,
    rebuild_registry: bool,
    repair: bool,
    as_json: bool,
    data_dir: Path | None,
) -> None:
    """Index articles (files or folders; default: the configured corpus, `seeds/`)."""
    from bot.app import embedder_for, indexer_for

    settings = ctx.settings
    corpus = corpus_paths(settings, paths)
    if rebuild_registry and settings.chroma.target() is None:
        raise click.UsageError("--rebuild-registry needs a Chroma server (KABAR_CHROMA_URL)")
    with progress_bars(not as_json) as progress:
        indexer = indexer_for(settings, settings.data_dir(data_dir), embedder_for(settings, progress))
        if repair and not rebuild and indexer.exists():
            indexer.repair()
        report, stats = indexer.sync(
            corpus, prune=prune, rebuild=rebuild, rebuild_registry=rebuild_registry, progress=progress
        )
    if as_json:
        click.echo(json.dumps({**report.to_json(), "index": stats}, ensure_ascii=False))
        return
    out = Console()
    out.print(
        f"[green]Indexed[/green] {report.added} new, {report.updated} changed, {report.unchanged} unchanged"
        + (f", {report.removed} removed" if report.removed else "")
        + (f", {report.moved} moved" if report.moved else "")
        + f" article(s); {report.chunks_embedded} chunk(s) embedded"
        + (f" ({report.chunks_reused} reused)" if report.chunks_reused else "")
        + f" in {report.seconds:.1f} s."
    )
    out.print(
        f"Index now holds {stats['articles']} article(s), {stats['chunks']} chunk(s) in {stats['data_dir']}."
    )
    for path, reason in report.skipped:
        out.print(f"[yellow]skipped[/yellow] {path}: {reason}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@data_dir_option
@pass_context
def stats(ctx: Context, as_json: bool, data_dir: Path | None) -> None:
    """What is indexed: articles, chunks, embedding model, data dir, last index time."""
    from bot.app import indexer_for
    from bot.cli.render import stats_table

    settings = ctx.settings
    info = indexer_for(settings, settings.data_dir(data_dir), None).stats(settings.index.embed_model)
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False))
    else:
        Console().print(stats_table(info))


@click.command("remove")
@click.argument("targets", nargs=-1, required=True)
@data_dir_option
@pass_context
def remove_cmd(ctx: Context, targets: tuple[str, ...], data_dir: Path | None) -> None:
    """Remove articles from the index by ARTICLE_ID or file PATH (vectors, registry, keyword index)."""
    from bot.app import indexer_for

    indexer = indexer_for(ctx.settings, ctx.settings.data_dir(data_dir), None)
    if not indexer.exists():
        raise click.ClickException(f"nothing is indexed in {indexer.data_dir}")
    removed, info = indexer.remove(targets)
    if not removed:
        raise click.ClickException(f"no indexed article matches {', '.join(targets)}")
    Console().print(
        f"[green]Removed[/green] {len(removed)} article(s): {', '.join(removed)}. "
        f"Index now holds {info['articles']} article(s), {info['chunks']} chunk(s)."
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
@pass_context
def watch_cmd(
    ctx: Context, paths: tuple[Path, ...], debounce: float, no_prune: bool, data_dir: Path | None
) -> None:
    """Watch corpus folders (default: the configured corpus) and re-index after changes settle."""
    from bot.app import embedder_for, indexer_for
    from index.watch import CorpusWatcher

    settings = ctx.settings
    corpus = corpus_paths(settings, paths)
    target = settings.data_dir(data_dir)
    indexer = indexer_for(settings, target, embedder_for(settings))
    watch_log = logging.getLogger("index.watch")
    if watch_log.getEffectiveLevel() > logging.INFO:
        watch_log.setLevel(logging.INFO)  # what the watcher did is its output
    watcher = CorpusWatcher(
        corpus,
        lambda: indexer.sync(corpus, prune=not no_prune)[0],
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
