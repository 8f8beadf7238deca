"""Mark the answer inside a quoted sentence: the date, number or name a when/how-many/who question asks for.

No model: the question says what kind of answer it wants, and the answer is the phrase of that kind in the
quote that the question does not already name, nearest to the words it shares with the question. Other
questions (what, why, how) get no mark: the quote is the answer.
"""

from __future__ import annotations

import re

from bot.answer.evidence import fold
from index.keyword import tokenize

_MONTH = (
    r"(?:januari|februari|maret|april|mei|juni|juli|agustus|september|oktober|november|desember|"
    r"january|february|march|may|june|july|august|october|december|jan|feb|mar|apr|jun|jul|agu|aug|"
    r"sep|sept|okt|oct|nov|des|dec)\.?"
)
_DAY = (
    r"(?:senin|selasa|rabu|kamis|jumat|jum'at|sabtu|minggu|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
)
_DATE = re.compile(
    rf"\b(?:{_DAY},?\s*)?\(?\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?\)?"  # (21/10/2024), 12/9
    rf"|\b(?:{_DAY},?\s*)?(?:(?:antara\s+)?\d{{1,2}}\s*(?:-|–|hingga|sampai|dan|to|and)\s*)?\d{{1,2}}\s+{_MONTH}(?:\s+\d{{4}})?"
    rf"|\b{_MONTH}\s+\d{{1,2}},?\s+\d{{4}}|\b{_MONTH}\s+\d{{4}}"
    rf"|\b(?:{_MONTH}|pekan|minggu|bulan|tahun|week|month|year)\s+(?:lalu|depan|ini|silam|last|next)"
    rf"|\b(?:tahun\s+)?(?:1[5-9]|20)\d{{2}}(?:an)?\b|\b{_DAY}\b",
    re.IGNORECASE,
)
_NUMWORD = (
    r"(?:satu|dua|tiga|empat|lima|enam|tujuh|delapan|sembilan|sepuluh|sebelas|seratus|seribu|puluhan|"
    r"ratusan|ribuan|belasan|(?:dua|tiga|empat|lima|enam|tujuh|delapan|sembilan)\s+(?:puluh|ratus|belas))"
)
_NUMBER = re.compile(
    rf"(?:\b(?:rp|us\$|usd|idr)\.?\s?|\$)?(?:\b\d(?:[\d.,]*\d)?(?:\s?[-–]\s?\d(?:[\d.,]*\d)?)?(?:km²|km|m²|kg|cm|mm|ha|m)?|\b{_NUMWORD}\b)"
    r"(?:\s?(?:ribu|juta|miliar|milyar|triliun|thousand|million|billion|persen|percent|%))?"
    r"(?:\s(?!dan\b|dari\b|di\b|yang\b|and\b|of\b|pada\b|ke\b|untuk\b)[a-z][\w-]{1,14})?",
    re.IGNORECASE,
)
_CONNECT = r"(?:bin|binti|van|von|der|de|da|al|el|la|le)"
_NAME = re.compile(rf"\b[A-Z][\w.'’-]*(?:\s+(?:{_CONNECT}\s+)?[A-Z][\w.'’-]*)*")
# Capitalised at a sentence's start, or titles that are not the name asked for.
_NOT_NAMES = frozenset(
    "menurut pemerintah presiden menteri wakil kepala ketua juru bicara sebelumnya namun ia dia mereka di "
    "pada dalam sementara selain kemudian saat ketika "
    "setelah sebelum sejak bahkan hal ini itu tak tidak juga hingga the a an in on at it he she they this "
    "that however but and sumber baca ketiga kedua pertama keempat para sang selama bagi oleh dengan "
    "januari februari maret april mei juni juli agustus september oktober november desember "
    "senin selasa rabu kamis jumat sabtu minggu".split()
)
_KIND = [
    (
        "date",
        re.compile(
            r"\b(kapan|kapankah|when|what (year|date|day|month)|(tahun|tanggal|hari|bulan) (berapa|apa)"
            r"|(tahun|tanggal|hari|bulan) berapakah|pada (tahun|tanggal|hari|bulan))\b",
            re.I,
        ),
    ),
    ("number", re.compile(r"\b(berapa|berapakah|how (many|much|long|old|far|big|large))\b", re.I)),
    (
        "name",
        re.compile(
            r"\b(siapa|siapakah|who|whom|di ?mana|di ?manakah|ke ?mana|where|nama|name|which|mana|manakah)\b",
            re.I,
        ),
    ),
]
_WINDOW = 8  # tokens either side of a candidate in which the question's words count


def answer_kind(question: str) -> str | None:
    """'date', 'number', 'name' or None (a question whose answer is the quote itself)."""
    found = [(m.start(), kind) for kind, pattern in _KIND if (m := pattern.search(question))]
    return min(found)[1] if found else None  # the question word that comes first decides


def answer_span(question: str, quote: str) -> tuple[int, int] | None:
    """Character offsets in `quote` of the phrase answering `question`, or None when none stands out."""
    found = scored_spans(question, quote)
    return found[0][1] if found else None


def scored_spans(question: str, quote: str) -> list[tuple[float, tuple[int, int]]]:
    """Phrases of the asked kind in `quote` the question does not name, nearest its words first."""
    kind = answer_kind(question)
    if kind is None:
        return []
    asked = {fold(t) for t in tokenize(question, stem=False)}
    spans = [m.span() for m in _candidates(kind, quote)]
    if kind == "name":  # "Ketua Umum MTI Bambang Susantono" -> the name; "Korea Utara" -> not "Utara"
        spans = [t for m in spans if (t := _trim(quote, m, asked))]
        spans = [(a, b) for a, b in spans if not all(w.lower() in _NOT_NAMES for w in quote[a:b].split())]
    spans = [_strip(quote, a, b) for a, b in spans]
    spans = [(a, b) for a, b in spans if b > a and _new(quote[a:b], asked, kind)]
    words = [(m.start(), fold(m.group().lower())) for m in re.finditer(r"[\w'-]+", quote)]
    hits = [i for i, (_, w) in enumerate(words) if w in asked]

    def closeness(span: tuple[int, int]) -> float:
        first = next((i for i, (s, _) in enumerate(words) if s >= span[0]), len(words))
        last = next((i for i, (s, _) in enumerate(words) if s >= span[1]), len(words))
        near = [min(abs(h - first), abs(h - last)) for h in hits if h < first or h >= last]
        return sum(max(0, _WINDOW - d) for d in near)

    return sorted(((closeness(s), s) for s in spans), key=lambda c: (-c[0], c[1][0]))


def _candidates(kind: str, quote: str) -> list[re.Match[str]]:
    if kind == "date":
        return list(_DATE.finditer(quote))
    if kind == "number":
        return [m for m in _NUMBER.finditer(quote) if not _DATE.fullmatch(m.group().strip())]
    return list(_NAME.finditer(quote))


def _trim(quote: str, span: tuple[int, int], asked: set[str]) -> tuple[int, int] | None:
    """A name run without the question's words it opens with ("Ketua Umum MTI Bambang Susantono"), or None
    when it ends with them ("Presiden Korea Selatan Yoon Suk Yeol": a title and the name asked about) or
    one word of a longer name is all that would be left ("Korea Utara")."""
    a, b = span
    words = list(re.finditer(r"\S+", quote[a:b]))
    n = len(words)
    if fold(words[-1].group().lower().strip(",.()")) in asked:
        return None
    while words and fold(words[0].group().lower().strip(",.()")) in asked:
        words.pop(0)
    if not words or (len(words) == 1 < n):
        return None
    return a + words[0].start(), a + words[-1].end()


def _strip(quote: str, a: int, b: int) -> tuple[int, int]:
    """Without trailing sentence punctuation ("Zinoviev." -> "Zinoviev"; "Jr." stays)."""
    while b > a and (
        quote[b - 1] in ",;:" or (quote[b - 1] == "." and b - a > 4 and quote[b - 3 : b - 1].isalpha())
    ):
        b -= 1
    return a, b


def _new(phrase: str, asked: set[str], kind: str) -> bool:
    """Whether the phrase says something the question does not (for a number: its number is new)."""
    if kind == "number":
        digits = re.findall(r"\d+", phrase)
        if digits and all(fold(d) in asked for d in digits):
            return False
    words = [fold(t) for t in tokenize(phrase, stem=False)]
    return bool(words) and not all(w in asked for w in words)
