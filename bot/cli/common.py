"""What the commands share: the settings (loaded once per run), options, the console, progress bars."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from bot.settings import Settings, SettingsError

err = Console(stderr=True)

_PHASES = {
    "model": "Preparing the embedding model",
    "load": "Reading articles",
    "embed": "Embedding chunks",
    "keywords": "Building the keyword index",
}


class Context:
    """The `kabar` run: its settings, read from the environment once, on first use."""

    @cached_property
    def settings(self) -> Settings:
        """The settings in force; a bad value is a usage error naming its variable."""
        try:
            return Settings.load()
        except SettingsError as e:
            raise click.ClickException(str(e)) from None

    def build(self, data_dir: Path | None, show_progress: bool = True) -> Any:
        """Everything answering needs (model, index, engine), with progress while the model loads."""
        from bot.app import build

        with progress_bars(show_progress and err.is_terminal) as progress:
            return build(self.settings, data_dir, progress=progress)


pass_context = click.make_pass_decorator(Context, ensure=True)

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Index location (default: $KABAR_HOME or the XDG data dir).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
llm_option = click.option(
    "--llm/--no-llm",
    "use_llm",
    default=None,
    help="Answer with the configured LLM (verified citations) or extractively; default: as KABAR_LLM says.",
)


def require_llm(settings: Settings, use_llm: bool | None) -> None:
    """--llm without a configured LLM is a usage error, said before any slow work."""
    if use_llm and settings.llm.backend == "none":
        raise click.UsageError(
            "--llm needs an LLM: set KABAR_LLM=openai (and KABAR_LLM_URL) or KABAR_LLM=llamacpp"
        )


def corpus_paths(settings: Settings, paths: tuple[Path, ...]) -> list[Path]:
    """The paths given, else the configured corpus; each must exist."""
    corpus = list(paths) or settings.index.corpus
    missing = [str(p) for p in corpus if not p.exists()]
    if missing:
        raise click.UsageError(f"no such corpus path: {', '.join(missing)}")
    return corpus


_UNITS = {"embed": "chunks", "load": "articles"}  # phases whose rate is worth showing


class RateColumn(ProgressColumn):
    """Items per second of a phase (chunks/s while embedding: what a GPU changes)."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit")
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} {unit}/s" if unit and speed else "", style="progress.data.speed")


@contextmanager
def progress_bars(enabled: bool = True, console: Console | None = None) -> Iterator[Any]:
    """A progress(phase, done, total) callback drawing one rich bar per phase on stderr."""
    if not enabled:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        console=console or err,
        transient=False,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bars.add_task(
                    _PHASES.get(phase, phase), total=total or None, unit=_UNITS.get(phase)
                )
            bars.update(tasks[phase], completed=done, total=total or None)

        yield update
