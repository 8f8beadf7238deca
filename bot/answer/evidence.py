"""Evidence helpers shared by extractive scoring and LLM verification: sentence spans, names, numbers."""

from __future__ import annotations

import re

from index.sentences import split_sentences
from index.types import Passage

# Capitalised in English questions but not names ("North Korean", "the President"): not matched.
COMMON_CAPS = frozenset(
    "north south east west new united president minister prime foreign defense defence army the a an in on "
    "of and or for to is are was were does did do what who when where which why how many much".split()
)
# Names and numbers of a question: capitalised words (not the question's first word) and digits.
_ENTITY = re.compile(r"(?<!^)\b[A-Z][\w'-]*|\b\d[\d.,/]*\d\b|\b\d\b")
_QWORDS = frozenset(
    "apa apakah siapa kapan dimana bagaimana mengapa kenapa berapa what who when where which why how".split()
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_THOUSANDS = re.compile(r"\d{1,3}(?:[.,]\d{3})+")


def fold(word: str) -> str:
    """Spelling-tolerant key: doubled letters collapsed ("Russia" ~ "Rusia"), first four letters."""
    return re.sub(r"(.)\1+", r"\1", word)[:4]


def coverage(terms: set[str], text: str) -> float:
    """Share of lower-cased `terms` (names, numbers) found in `text`; 1.0 when there are none.

    Numbers and short words must match exactly; a longer name matches on its first four letters with
    doubled letters folded, so English "Korean" and "Russia" find Indonesian "Korea" and "Rusia".
    """
    if not terms:
        return 1.0
    words = set(re.findall(r"[\w'-]+", text.lower()))
    keys = {fold(w) for w in words if not w[0].isdigit()}
    found = sum(t in words or (not t[0].isdigit() and len(t) >= 4 and fold(t) in keys) for t in terms)
    return found / len(terms)


def question_entities(question: str) -> set[str]:
    """Lower-cased names and numbers the question mentions."""
    return {m.lower() for m in _ENTITY.findall(question.strip()) if m.lower() not in _QWORDS}


def passage_sentences(ps: Passage) -> list[tuple[int, int]]:
    """(start, end) offsets of the passage's sentences in its text."""
    spans = ps.meta.get("sentences")
    if spans:
        base = spans[0][2]
        return [(start - base, end - base) for _, _, start, end in spans]
    return [(s.start, s.end) for s in split_sentences(ps.text)]


def numbers_of(text: str) -> set[str]:
    """Numbers with thousands separators removed and decimal commas as points ('1.500' -> '1500')."""
    out = claim_numbers(text)
    for m in _NUMBER.findall(text):
        out.update(re.findall(r"\d+", m))  # "2,5" also offers "2" and "5"; a claim needs its whole numbers
    return out


def claim_numbers(text: str) -> set[str]:
    """The numbers a claim states (as numbers_of normalises them, whole ones only)."""
    out = set()
    for m in _NUMBER.findall(text):
        if _THOUSANDS.fullmatch(m):
            m = re.sub(r"[.,]", "", m)
        out.add(m.replace(",", "."))
    return out
