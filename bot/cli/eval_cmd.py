"""`kabar eval`: score retrieval, answers and refusals on question sets (see bot/evaluate.py)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.cli.common import Context, err, pass_context, progress_bars, require_llm
from bot.evaluate import datasets, metrics
from bot.evaluate.run import prepare_index, run_questions, support_answerer
from index.errors import KabarError

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("eval")
@click.option("--qa", "qa_files", multiple=True, type=_FILE, help="Question file (repeatable).")
@click.option(
    "--ntrex",
    "ntrex_files",
    multiple=True,
    type=_FILE,
    help="NTREX corpus: English sentence -> Indonesian doc.",
)
@click.option("--corpus", "corpora", multiple=True, type=_FILE, help="Distractor corpus (repeatable).")
@click.option("--k", "k_text", default="1,5,10", show_default=True, help="Cut-offs for recall@k.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most N questions per file.")
@click.option(
    "--absent",
    "absent_share",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Share of gold passages held out of the index, to score refusal when the answer is absent.",
)
@click.option("--baselines", is_flag=True, help="Also score BM25 alone, dense alone and llama-index.")
@click.option(
    "--llm/--no-llm",
    "use_llm",
    default=None,
    help="Answer with the configured LLM (and report verified support, removed sentences, fallbacks) or "
    "extractively; default: as KABAR_LLM says.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option("--markdown", is_flag=True, help="Print the tables as Markdown (for docs/evaluation.md).")
@click.option(
    "--details",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write one JSON line per question (gold rank per system, answer, support) to this file.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the eval index here and reuse it next time (default: a temporary dir, deleted after).",
)
@pass_context
def eval_cmd(
    ctx: Context,
    qa_files: tuple[Path, ...],
    ntrex_files: tuple[Path, ...],
    corpora: tuple[Path, ...],
    k_text: str,
    limit: int | None,
    absent_share: float,
    baselines: bool,
    use_llm: bool | None,
    as_json: bool,
    markdown: bool,
    details: Path | None,
    data_dir: Path | None,
) -> None:
    """Measure recall@k, MRR, answers, citations, refusals and latency on question sets.

    Indexes every gold passage plus the --corpus distractors (in a temporary data dir, or in --data-dir
    to build a large distractor index once and reuse it), then asks each question as `kabar ask` does.
    """
    from bot.app import build, embedder_for, indexer_for

    if not qa_files and not ntrex_files:
        raise click.UsageError("give at least one --qa or --ntrex file")
    settings = ctx.settings
    require_llm(settings, use_llm)  # say so before spending minutes on the index
    try:
        ks = metrics.parse_ks(k_text)
    except KabarError as e:
        raise click.BadParameter(str(e), param_hint="--k") from None
    items: list[datasets.EvalItem] = []
    for path in qa_files:  # an NTREX file passed as --qa is recognised by its fields
        read = datasets.read_ntrex if datasets.is_ntrex(path) else datasets.read_qa
        items += read(path, limit)
    for path in ntrex_files:
        items += datasets.read_ntrex(path, limit)
    if len({it.source for it in items}) < len(qa_files) + len(ntrex_files):
        raise click.UsageError("two question files share a file name: metrics are reported per file name")

    if settings.chroma.url:  # its index is a scratch one, gold passages and all: never a shared collection
        raise click.UsageError("kabar eval builds its own index in --data-dir: unset KABAR_CHROMA_URL")
    temp = None if data_dir else Path(tempfile.mkdtemp(prefix="kabar-eval-"))
    show = not as_json and err.is_terminal
    try:
        with progress_bars(show) as progress:
            kabar = build(settings, data_dir or temp, progress=progress)
            bulk = indexer_for(settings, kabar.data_dir, embedder_for(settings, progress))
            index_info = prepare_index(kabar, items, list(corpora), absent_share, progress, bulk)
        try:
            kabar.store.require_nonempty()
            llm = kabar.engine.uses_llm(use_llm)
            with _question_bar(err if show else None, baselines) as tick:
                # extractive runs also score the support scorer the ranker replaced, on the same passages
                compare = None if llm else support_answerer(kabar.engine)
                results = run_questions(kabar.engine, items, max(ks), baselines, tick, llm, compare)
        finally:
            kabar.close()
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    if details is not None:
        datasets.write_jsonl((r.to_json() for r in results), details)
    summary = metrics.summarize(results, ks)
    report = {
        "ks": ks,
        "mode": "llm" if llm else "extractive",
        "absent_share": absent_share,
        "questions": len(items),
        "files": [str(p) for p in (*qa_files, *ntrex_files)],
        "corpora": [str(p) for p in corpora],
        "index": index_info,
        "metrics": summary,
    }
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
        return
    tables = [
        ("Retrieval (answerable questions whose gold passage is indexed)", *retrieval_rows(summary, ks)),
        ("Kabar's answers", *answer_rows(summary)),
    ]
    note = (
        f"{len(items)} question(s); index: {index_info['gold_documents']} gold passage(s) "
        f"({absent_share:.0%} held out) + distractors = {index_info['articles']} article(s), "
        f"{index_info['chunks']} chunk(s) in {data_dir or 'a temporary dir'}."
    )
    if llm:
        s = settings.llm
        note += f" Answers by the LLM ({s.backend}: {s.model or s.gguf or '?'})."
    if index_info["skipped"]:
        note += f" {len(index_info['skipped'])} record(s) could not be indexed (see --json)."
    if markdown:
        click.echo("\n\n".join(markdown_table(*t) for t in tables) + f"\n\n{note}")
        return
    out = Console() if Console().is_terminal else Console(width=170)  # a file gets the whole table
    for title, header, rows in tables:
        out.print(rich_table(title, header, rows))
    out.print(f"[dim]{note}[/dim]")


class _question_bar:
    """A progress(done, total) callback drawing one bar over the questions (or nothing)."""

    def __init__(self, console: Console | None, baselines: bool):
        self.console = console
        self.label = "Asking questions" + (" (+ baselines)" if baselines else "")
        self.bars: Progress | None = None

    def __enter__(self):
        if self.console is None:
            return None
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.bars.start()
        task = self.bars.add_task(self.label, total=None)
        bars = self.bars

        def tick(done: int, total: int) -> None:
            bars.update(task, completed=done, total=total)

        return tick

    def __exit__(self, *exc: object) -> None:
        if self.bars is not None:
            self.bars.stop()


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


Rows = list[list[str]]


def retrieval_rows(summary: dict[str, Any], ks: list[int]) -> tuple[list[str], Rows]:
    """One row per (file, system): recall@k, MRR, retrieval latency."""
    header = ["set", "system", "n", *(f"R@{k}" for k in ks), "MRR", "p50 ms", "p95 ms"]
    rows = []
    for name, group in summary.items():
        for i, (system, m) in enumerate(group["retrieval"].items()):
            rows.append(
                [
                    name if i == 0 else "",
                    system,
                    str(m["n"]),
                    *(_fmt(m[f"recall@{k}"]) for k in ks),
                    _fmt(m["mrr"]),
                    _fmt(m["retrieve_ms_p50"], 0),
                    _fmt(m["retrieve_ms_p95"], 0),
                ]
            )
    return header, rows


def answer_rows(summary: dict[str, Any]) -> tuple[list[str], Rows]:
    """One row per file: answer quality, citations, refusals, end-to-end latency (+ LLM verification)."""
    compared = any("answers_support" in group for group in summary.values())
    header = [
        "set", *(["scorer"] if compared else []), "n", "EM", "F1", "contains", "span marked", "span EM",
        "span F1", "cite prec",
        "refused answerable", "refuse impossible P/R (n)", "refuse absent P/R (n)", "p50 ms", "p95 ms",
    ]  # fmt: skip
    llm = any("verified_support" in group["answers"] for group in summary.values())
    if llm:
        header += [
            "answered/refused/fallback", "verified support", "unsupported removed", "by Kabar",
            "prompt tok p50", "first word s p50", "s/answer",
        ]  # fmt: skip
    rows = []
    for name, group in summary.items():
        a = group["answers"]
        rows.append([name, *(["ranker"] if compared else []), *_answer_cells(a)])
        if llm:
            first = a["first_token_ms_p50"]
            rows[-1] += [
                "/".join(_fmt(a[k], 2) for k in ("llm_answered", "llm_refused", "llm_fallback_share")),
                f"{_fmt(a['verified_support'])} ({a['sentences_checked']})",
                f"{_fmt(a['unsupported_removed'])} ({a['sentences_dropped']})",
                _fmt(a["attributed_by_kabar"], 2),
                _fmt(a["prompt_tokens_p50"], 0),
                _fmt(None if first is None else first / 1000, 1),
                _fmt(a["seconds_per_answer"], 1),
            ]
        if "answers_support" in group:
            rows.append(["", "support", *_answer_cells(group["answers_support"])])
    return header, rows


def _answer_cells(a: dict[str, Any]) -> list[str]:
    imp, absent = a["refusal_impossible"], a["refusal_absent"]
    return [
        str(a["n"]),
        _fmt(a["exact_match"]),
        _fmt(a["token_f1"]),
        _fmt(a["contains_answer"]),
        _fmt(a["span_marked"]),
        _fmt(a["span_exact_match"]),
        _fmt(a["span_f1"]),
        _fmt(a["citation_precision"]),
        _fmt(a["refused_answerable"]),
        f"{_fmt(imp['precision'], 2)}/{_fmt(imp['recall'], 2)} ({imp['n']})",
        f"{_fmt(absent['precision'], 2)}/{_fmt(absent['recall'], 2)} ({absent['n']})",
        _fmt(a["total_ms_p50"], 0),
        _fmt(a["total_ms_p95"], 0),
    ]


def rich_table(title: str, header: list[str], rows: Rows) -> Table:
    """A rich table; a new set starts a new section."""
    table = Table(title=title)
    for col in header:
        table.add_column(col, justify="left" if col in ("set", "system", "scorer") else "right")
    for i, row in enumerate(rows):
        last = i + 1 == len(rows) or rows[i + 1][0] != ""
        table.add_row(*row, end_section=last)
    return table


def markdown_table(title: str, header: list[str], rows: Rows) -> str:
    """A GitHub Markdown table under a bold title."""
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" if h in ("set", "system", "scorer") else "---:" for h in header) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
