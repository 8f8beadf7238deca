"""Readable terminal rendering of answers and index reports (rich)."""

from __future__ import annotations

import time

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from bot.answer.types import Answer, Citation


def source_line(c: Citation) -> str:
    """'Publisher (via Source), 2024-10-21' with whatever is known."""
    who = c.publisher or ""
    if c.source:
        who = f"{who} (via {c.source})" if who else c.source
    return ", ".join(p for p in (who, c.date) if p)


def render_answer(answer: Answer) -> Group:
    """The answer text (the answer itself in bold), then one panel per source: title, who and when, the
    quote with the answer in bold, where it lives."""
    items: list = [Text(answer.notice, style="dim yellow")] if answer.notice else []
    text = Text(answer.answer, style="yellow" if answer.refused else "")
    for start, end in answer.marked_spans():
        text.stylize("bold", start, end)
    items.append(text)
    if answer.dropped_sentences:
        items.append(
            Text(f"({answer.dropped_sentences} unsupported sentence(s) removed by verification)", style="dim")
        )
    for c in answer.citations:
        title = c.title or (c.path.rsplit("/", 1)[-1].split("#")[0] if c.path else c.article_id)
        body = Text()
        if source_line(c):
            body.append(source_line(c) + "\n", style="cyan")
        a, b = c.answer_span or (len(c.quote), len(c.quote))
        body.append(f"“{c.quote[:a]}", style="italic")
        body.append(c.quote[a:b], style="bold italic")
        body.append(f"{c.quote[b:]}”", style="italic")
        where = c.url or c.path
        if where:
            body.append("\n" + where, style="dim")
        items.append(Panel(body, title=f"[{c.n}] {escape(title)}", title_align="left", border_style="cyan"))
    return Group(*items)


def print_answer(console: Console, answer: Answer, timings: bool = False) -> None:
    """Print an answer (and its timings when asked)."""
    console.print(render_answer(answer))
    if timings:
        t = answer.timings_ms
        console.print(
            f"[dim]retrieve {t.get('retrieve', 0):.0f} ms · answer {t.get('answer', 0):.0f} ms[/dim]"
        )


class _Waiting:
    """A spinner with the seconds waited so far (re-rendered by Live several times a second)."""

    def __init__(self, label: str):
        self.label = label
        self.t0 = time.monotonic()
        self.spinner = Spinner("dots", style="cyan")

    def __rich__(self) -> Spinner:
        self.spinner.update(text=Text(f"{self.label} {time.monotonic() - self.t0:.0f} s", style="dim"))
        return self.spinner


class StreamPrinter:
    """The `on_token` callback of a streamed LLM answer: prints the draft, dimmed, as it comes; before
    its first words (a local model's prefill takes seconds), a spinner with the time waited."""

    def __init__(self, console: Console):
        self.console = console
        self.started = False
        self._live: Live | None = None

    def wait(self, label: str = "Waiting for the language model…") -> None:
        """Show the spinner until the first piece (or the end)."""
        self._live = Live(_Waiting(label), console=self.console, transient=True, refresh_per_second=8)
        self._live.start()

    def _stop_waiting(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __call__(self, piece: str) -> None:
        self._stop_waiting()
        self.console.print(piece, end="", style="dim", markup=False, highlight=False, soft_wrap=True)
        self.started = True

    def end(self) -> None:
        """Close the draft; the verified answer is printed next."""
        self._stop_waiting()
        if self.started:
            self.console.print()
            self.console.rule("[dim]verified[/dim]", style="dim")
        self.started = False


def stats_table(stats: dict) -> Table:
    """`kabar stats` as a two-column table."""
    table = Table(show_header=False, box=None)
    for key, value in stats.items():
        table.add_row(f"[bold]{key}[/bold]", str(value))
    return table
