"""The `kabar` command line: index, ask, chat, stats."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bot.settings import Settings
from index.errors import KabarError

log = logging.getLogger(__name__)
err = Console(stderr=True)

_PHASES = {
    "model": "Preparing the embedding model",
    "load": "Reading articles",
    "embed": "Embedding chunks",
    "keywords": "Building the keyword index",
}

llm_option = click.option(
    "--llm/--no-llm",
    "use_llm",
    default=None,
    help="Answer with the configured LLM (verified citations) or extractively; default: as KABAR_LLM says.",
)
# Third-party chatter capped at WARNING even with -vv.
_NOISY_LOGGERS = (
    "chromadb",
    "httpx",
    "sentence_transformers",
    "discord.http",
    "transformers",
    "urllib3",
)

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Index location (default: $KABAR_HOME or the XDG data dir).",
)


@contextmanager
def progress_bars(enabled: bool = True):
    """A progress(phase, done, total) callback drawing one rich bar per phase on stderr."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bars.add_task(_PHASES.get(phase, phase), total=total or None)
            bars.update(tasks[phase], completed=done, total=total or None)

        yield update


def _settings() -> Settings:
    return Settings()


def _require_llm(kabar, use_llm: bool | None) -> None:
    if use_llm and kabar.engine.llm is None:
        raise click.UsageError(
            "--llm needs an LLM: set KABAR_LLM=openai (and KABAR_LLM_URL) or KABAR_LLM=llamacpp"
        )


def _build(data_dir: Path | None, show_progress: bool = True):
    from bot.app import build

    with progress_bars(show_progress and err.is_terminal) as progress:
        return build(_settings(), data_dir, progress=progress)


@click.group()
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """Kabar: ask questions over news articles; every answer cites its passages."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in _NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


@cli.command("index")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--prune", is_flag=True, help="Also remove indexed articles whose files are gone.")
@click.option("--rebuild", is_flag=True, help="Delete the index first and build it from scratch.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@data_dir_option
def index_cmd(
    paths: tuple[Path, ...], prune: bool, rebuild: bool, as_json: bool, data_dir: Path | None
) -> None:
    """Index articles (files or folders; default: the configured corpus, `seeds/`)."""
    import shutil

    from bot.app import build
    from index.ingest import ChunkParams, index_paths
    from index.store import writer_lock

    settings = _settings()
    target = settings.data_dir(data_dir)
    corpus = list(paths) or settings.corpus
    missing = [str(p) for p in corpus if not p.exists()]
    if missing:
        raise click.UsageError(f"no such corpus path: {', '.join(missing)}")
    with writer_lock(target):
        if rebuild:
            for part in ("chroma", "keyword", "kabar.sqlite", "kabar.sqlite-wal", "kabar.sqlite-shm"):
                p = target / part
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        with progress_bars(not as_json) as progress:
            kabar = build(settings, data_dir, progress=progress)
            report = index_paths(
                corpus,
                kabar.store,
                kabar.embedder,
                chunking=ChunkParams(settings.chunk_tokens, settings.chunk_overlap),
                prune=prune,
                progress=progress,
                batch_chunks=settings.index_batch,
            )
        stats = kabar.store.stats()
        kabar.close()
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


@cli.command()
@click.argument("question")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the answer as JSON (one object per line with `-`)."
)
@click.option("--top-k", type=click.IntRange(1, 50), default=None, help="Passages to retrieve.")
@click.option("--timings", is_flag=True, help="Show how long retrieval and answering took.")
@llm_option
@data_dir_option
def ask(
    question: str,
    as_json: bool,
    top_k: int | None,
    timings: bool,
    use_llm: bool | None,
    data_dir: Path | None,
) -> None:
    """Answer QUESTION from the indexed articles; `-` reads one question per line from stdin."""
    from bot.render import StreamPrinter, print_answer

    kabar = _build(data_dir, show_progress=not as_json)
    kabar.store.require_nonempty()
    _require_llm(kabar, use_llm)
    questions = (line.strip() for line in sys.stdin) if question == "-" else iter([question])
    out = Console()
    for q in questions:
        if not q:
            continue
        if question == "-" and not as_json:
            out.rule(q)
        stream = None if as_json else StreamPrinter(out)
        answer = kabar.engine.answer(q, top_k=top_k, use_llm=use_llm, on_token=stream)
        if as_json:
            click.echo(json.dumps(answer.to_json(), ensure_ascii=False))
        else:
            if stream:
                stream.end()
            print_answer(out, answer, timings)
    kabar.close()


@cli.command()
@click.option("--top-k", type=click.IntRange(1, 50), default=None, help="Passages to retrieve.")
@llm_option
@data_dir_option
def chat(top_k: int | None, use_llm: bool | None, data_dir: Path | None) -> None:
    """Chat: ask questions and follow-ups; /new starts over, /quit (or Ctrl-D) leaves."""
    from bot.engine import Turn
    from bot.render import StreamPrinter, print_answer

    kabar = _build(data_dir)
    kabar.store.require_nonempty()
    _require_llm(kabar, use_llm)
    out = Console()
    out.print("[bold]Kabar[/bold] — ask about the indexed articles. /new starts over, /quit leaves.")
    history: list[Turn] = []
    while True:
        try:
            question = click.prompt(
                click.style("you", fg="green"), prompt_suffix="> ", default="", show_default=False
            )
        except (EOFError, click.Abort):
            break
        question = question.strip()
        if not question:
            continue
        if question in ("/quit", "/exit", "/q"):
            break
        if question == "/new":
            history.clear()
            out.print("[dim]New conversation.[/dim]")
            continue
        stream = StreamPrinter(out)
        answer = kabar.engine.answer(question, history, top_k=top_k, use_llm=use_llm, on_token=stream)
        stream.end()
        print_answer(out, answer)
        history.append(Turn(question, answer))
        del history[: -kabar.settings.history_turns]
    kabar.close()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@data_dir_option
def stats(as_json: bool, data_dir: Path | None) -> None:
    """What is indexed: articles, chunks, embedding model, data dir, last index time."""
    from bot.render import stats_table
    from index.store import Store

    settings = _settings()
    target = settings.data_dir(data_dir)
    if not (target / "kabar.sqlite").exists():
        info = {
            "articles": 0,
            "chunks": 0,
            "embed_model": settings.embed_model,
            "data_dir": str(target),
            "last_indexed": None,
        }
    else:
        store = Store(target)
        info = store.stats()
        store.close()
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False))
    else:
        Console().print(stats_table(info))


from bot.discordbot.command import discord_cmd  # noqa: E402  (registered after the group exists)

cli.add_command(discord_cmd)

from bot.cli_eval import eval_cmd  # noqa: E402

cli.add_command(eval_cmd)

from bot.cli_watch import remove_cmd, watch_cmd  # noqa: E402

cli.add_command(watch_cmd)
cli.add_command(remove_cmd)


def main() -> None:
    """Console entry point: domain errors become a clean message and exit code 1."""
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("Aborted.")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except KabarError as e:
        err.print(f"[red]error:[/red] {e}")
        sys.exit(1)
