"""`kabar ask` and `kabar chat`: answers in the terminal, or as JSON for scripts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.console import Console

from bot.answer.types import Turn
from bot.cli.common import Context, data_dir_option, llm_option, pass_context, require_llm
from bot.cli.render import StreamPrinter, print_answer

top_k_option = click.option("--top-k", type=click.IntRange(1, 50), default=None, help="Passages to retrieve.")


@click.command()
@click.argument("question")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the answer as JSON (one object per line with `-`)."
)
@top_k_option
@click.option("--timings", is_flag=True, help="Show how long retrieval and answering took.")
@llm_option
@data_dir_option
@pass_context
def ask(
    ctx: Context,
    question: str,
    as_json: bool,
    top_k: int | None,
    timings: bool,
    use_llm: bool | None,
    data_dir: Path | None,
) -> None:
    """Answer QUESTION from the indexed articles; `-` reads one question per line from stdin."""
    require_llm(ctx.settings, use_llm)
    kabar = ctx.build(data_dir, show_progress=not as_json)
    try:
        kabar.store.require_nonempty()
        questions = (line.strip() for line in sys.stdin) if question == "-" else iter([question])
        out = Console()
        for q in questions:
            if not q:
                continue
            if question == "-" and not as_json:
                out.rule(q)
            stream = None if as_json else StreamPrinter(out)
            if stream and kabar.engine.uses_llm(use_llm):
                stream.wait()
            try:
                answer = kabar.engine.answer(q, top_k=top_k, use_llm=use_llm, on_token=stream)
            finally:
                if stream:
                    stream.end()
            if as_json:
                click.echo(json.dumps(answer.to_json(), ensure_ascii=False))
            else:
                print_answer(out, answer, timings)
    finally:
        kabar.close()


@click.command()
@top_k_option
@llm_option
@data_dir_option
@pass_context
def chat(ctx: Context, top_k: int | None, use_llm: bool | None, data_dir: Path | None) -> None:
    """Chat: ask questions and follow-ups; /new starts over, /quit (or Ctrl-D) leaves."""
    require_llm(ctx.settings, use_llm)
    kabar = ctx.build(data_dir)
    try:
        kabar.store.require_nonempty()
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
            if kabar.engine.uses_llm(use_llm):
                stream.wait()
            try:
                answer = kabar.engine.answer(question, history, top_k=top_k, use_llm=use_llm, on_token=stream)
            finally:
                stream.end()
            print_answer(out, answer)
            history.append(Turn(question, answer))
            del history[: -ctx.settings.answer.history_turns]
    finally:
        kabar.close()
