"""Two-turn dialogues over the seed article: does the follow-up get its own answer (or a refusal)?

    .venv/bin/kabar index --data-dir DIR seeds/
    .venv/bin/python bench/dialogues.py DIR [--file tests/data/seed_dialogues.jsonl]

A follow-up is right when its quoted sentences hold one of its answers (or, when it has none, when it is
refused); "SAME" marks a follow-up that quoted exactly what the first turn did.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.answer.types import Turn  # noqa: E402
from bot.app import build  # noqa: E402
from bot.settings import Settings  # noqa: E402


def main() -> None:
    """Print each turn and the share of follow-ups answered right."""
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--file", type=Path, default=ROOT / "tests" / "data" / "seed_dialogues.jsonl")
    args = ap.parse_args()
    kabar = build(Settings.load(), args.data_dir)
    right = total = 0
    for line in args.file.read_text(encoding="utf-8").splitlines():
        dialogue = json.loads(line)
        history: list[Turn] = []
        for i, turn in enumerate(dialogue["turns"]):
            answer = kabar.engine.answer(turn["question"], history)
            quote = " ".join(c.quote for c in answer.citations)
            if turn.get("is_impossible"):
                ok = answer.refused
            else:
                ok = any(a.lower() in quote.lower() for a in turn["answers"])
            same = bool(history) and quote == " ".join(c.quote for c in history[-1].answer.citations)
            print(
                f"{dialogue['id']} turn {i + 1}: {'right' if ok else 'WRONG'}{' SAME' if same else ''}"
                f" | {turn['question']} -> {quote[:120]!r}"
            )
            if i:
                total += 1
                right += ok
            history.append(Turn(turn["question"], answer))
    print(f"follow-ups right: {right}/{total}")


if __name__ == "__main__":
    main()
