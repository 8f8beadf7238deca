"""Prompt and answer templates, stored as files; loaded by name with their variables checked."""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent


class Template:
    """A `str.format` template whose variables are known and checked."""

    def __init__(self, name: str, text: str, expected: frozenset[str]):
        self.name = name
        self.text = text
        found = {f for _, f, _, _ in string.Formatter().parse(text) if f}
        if found != expected:
            raise ValueError(
                f"prompt {name}: variables {sorted(found)} but the code passes {sorted(expected)}"
            )
        self.variables = expected

    def render(self, **values: object) -> str:
        """Fill in the variables (all of them, no others)."""
        if set(values) != self.variables:
            raise ValueError(f"prompt {self.name}: got {sorted(values)}, needs {sorted(self.variables)}")
        return self.text.format(**values)


# Which variables each template takes: a template file that disagrees fails at load time.
VARIABLES: dict[str, frozenset[str]] = {
    "extractive_frame": frozenset({"sentences"}),
    "refusal": frozenset(),
    # LLM answers (bot/generate.py)
    "system": frozenset(),
    "answer": frozenset({"passages", "question"}),
    "condense": frozenset({"history", "question"}),
    "llm_notice": frozenset({"reason"}),
}


@cache
def load(name: str, language: str = "en") -> Template:
    """Template `name` in `language` ('id'/'en'), falling back to the language-neutral file."""
    if name not in VARIABLES:
        raise KeyError(f"unknown prompt {name!r}")
    for candidate in (HERE / f"{name}.{language}.txt", HERE / f"{name}.txt"):
        if candidate.exists():
            return Template(name, candidate.read_text(encoding="utf-8").rstrip("\n"), VARIABLES[name])
    raise FileNotFoundError(f"no template {name} for language {language} in {HERE}")
