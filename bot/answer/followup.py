"""Follow-up resolution without an LLM: a question that leans on the conversation borrows its subject."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.answer.types import Turn
from index.keyword import tokenize

# Follow-ups that lean on the conversation: pronouns and "and ...?" openings, in both languages.
_FOLLOWUP = re.compile(
    r"\b(it|its|he|him|his|she|her|they|them|their|that|this|those|these|there|then|also|"
    r"ia|dia|beliau|mereka|nya|itu|ini|tersebut|sana|juga)\b"
    r"|^(and|dan|lalu|kemudian|terus|bagaimana dengan|what about|how about)\b",
    re.IGNORECASE,
)


def standalone_question(question: str, history: Sequence[Turn]) -> str:
    """Resolve a follow-up against the conversation: prepend the previous question when it leans on it."""
    if not history:
        return question
    previous = history[-1].answer.standalone_question or history[-1].question
    if needs_rewrite(question):
        return f"{previous} {question}"
    return question


def needs_rewrite(question: str) -> bool:
    """Whether a question leans on the conversation: a pronoun, an "and ...?" opening, or two words."""
    return bool(_FOLLOWUP.search(question)) or len(tokenize(question)) <= 2
