"""How well the answer mark (bot/answer/span.py) finds the gold answer inside the gold sentence.

    .venv/bin/python bench/span_study.py FILE.jsonl[.gz] ... [--reader]

For each answerable question, the gold sentence is the passage sentence holding a gold answer; the mark is
computed on that sentence alone (retrieval and sentence choice left out). Reports the share of questions
marked, SQuAD-style EM/F1 of the mark (on the marked ones) against the whole sentence's F1, and with
--reader the trained reader (bot/answer/reader.py) reading the same sentence, for comparison.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.answer.span import answer_kind, answer_span  # noqa: E402
from bot.evaluate.metrics import exact_match, token_f1  # noqa: E402
from bot.settings import Settings  # noqa: E402
from index.sentences import split_sentences  # noqa: E402


def gold_sentences(path: Path) -> Iterator[tuple[str, str, list[str]]]:
    """(question, gold sentence, answers) of the file's answerable questions."""
    with gzip.open(path, "rt") if path.name.endswith(".gz") else open(path) as f:
        for line in f:
            d = json.loads(line)
            if d.get("is_impossible") or not d["answers"]:
                continue
            sents = split_sentences(d["passage"])
            gold = next((s.text for s in sents if any(a in s.text for a in d["answers"])), None)
            if gold:
                yield d["question"], gold, d["answers"]


def main() -> None:
    """Print one line per file."""
    ap = argparse.ArgumentParser()
    ap.add_argument("files", type=Path, nargs="+")
    ap.add_argument("--reader", action="store_true", help="Also read the marked sentences with the reader.")
    args = ap.parse_args()
    reader = None
    if args.reader:
        from bot.answer.reader import Reader

        reader = Reader.load(Settings.load().index.cache_dir)
    for path in args.files:
        kinds: collections.Counter[str | None] = collections.Counter()
        n = 0
        whole = 0.0
        marked: list[tuple[str, list[str]]] = []
        read: list[str] = []
        ms = 0.0
        for question, sentence, answers in gold_sentences(path):
            n += 1
            kinds[answer_kind(question)] += 1
            whole += token_f1(sentence, answers)
            if span := answer_span(question, sentence):
                marked.append((sentence[span[0] : span[1]], answers))
                if reader is not None:
                    t = time.perf_counter()
                    r = reader.read(question, [(sentence, [(0, len(sentence))])])[0]
                    ms += (time.perf_counter() - t) * 1e3
                    read.append(sentence[r.span[0] : r.span[1]])
        m = max(len(marked), 1)
        line = (
            f"{path.name}: n={n} marked={len(marked) / n:.3f} "
            f"EM={sum(exact_match(p, a) for p, a in marked) / m:.3f} "
            f"F1={sum(token_f1(p, a) for p, a in marked) / m:.3f} | whole sentence F1={whole / n:.3f} "
            f"| kinds {dict(kinds)}"
        )
        if reader is not None:
            pairs = [(p, a) for p, (_, a) in zip(read, marked, strict=True)]
            line += (
                f" | reader on the marked ones: EM={sum(exact_match(p, a) for p, a in pairs) / m:.3f}"
                f" F1={sum(token_f1(p, a) for p, a in pairs) / m:.3f} ({ms / m:.0f} ms each)"
            )
        print(line, flush=True)


if __name__ == "__main__":
    main()
