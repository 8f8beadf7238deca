"""Indonesian-aware sentence splitting with exact character offsets."""

from __future__ import annotations

import re

from index.types import Sentence

# Words that end in a period but do not end a sentence (compared lower-cased, without the period).
# Dotted forms ("S.H", "a.n", "U.S") and single-letter initials ("M. Yamin") are handled by rule.
ABBREVIATIONS = frozenset(
    """
    dll dsb dst dkk dgn tsb yth sdr sdri bpk bp ybs krn utk spt
    prof dr drs dra ir hj kh st sp spd mr mrs ms jr sr no jl jln gg kp rt rw kel kec kab prov
    rp tel telp hlm tgl thn kol brig jend pol vs etc inc ltd corp dept
    """.split()
)
# A single capital before a period is an initial ("M. Yamin", "Annesa K. Ramadhany") unless the next word
# is one that starts sentences rather than names ("... Serie A. Mereka ...").
SENTENCE_STARTERS = frozenset(
    """
    ia dia mereka kami kita saya aku anda beliau ini itu hal namun tetapi tapi sementara selain sedangkan
    padahal bahkan kemudian lalu setelah sebelum sebelumnya saat ketika sejak dengan dalam pada di ke dari
    untuk karena jika kalau meski walau adapun akibatnya sehingga the it he she they this that we
    """.split()
)
QUOTE_ATTRIBUTION_SPAN = 200  # a quoted sentence followed within this many chars by '," kata X' stays whole
PAREN_SPAN = 200  # no split inside parentheses that close within this many chars

_CANDIDATE = re.compile(r"[.!?…]+[\"'”’)\]»]*(?=\s+(\S+))")
_CLOSING = "\"'”’)]»"
_OPENING = "\"“'‘([«"
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # "S.H", "a.n", "U.S" (the last period is the candidate)
_LIST_MARKER = re.compile(r"\(?(\d{1,3}|[A-Za-z])")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


def split_sentences(text: str) -> list[Sentence]:
    """Sentences of `text` (paragraphs split on blank lines), with text[s.start:s.end] == s.text."""
    sentences: list[Sentence] = []
    for paragraph, (p_start, p_end) in enumerate(_paragraph_spans(text)):
        start = p_start
        for cut in _boundaries(text, p_start, p_end):
            _add(sentences, text, start, cut, paragraph)
            start = cut
        _add(sentences, text, start, p_end, paragraph)
    return sentences


def _paragraph_spans(text: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        spans.append((start, m.start()))
        start = m.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _add(sentences: list[Sentence], text: str, start: int, end: int, paragraph: int) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        sentences.append(Sentence(text[start:end], paragraph, len(sentences), start, end))


def _boundaries(text: str, p_start: int, p_end: int) -> list[int]:
    """Offsets (just after the terminal punctuation and closers) where a new sentence starts."""
    cuts: list[int] = []
    sentence_start = p_start
    for m in _CANDIDATE.finditer(text, p_start, p_end):
        if m.start(1) >= p_end:
            break
        if _is_boundary(text, m, sentence_start, p_end):
            cuts.append(m.end())
            sentence_start = m.end()
    return cuts


def _is_boundary(text: str, m: re.Match[str], sentence_start: int, p_end: int) -> bool:
    punct = m.group(0).rstrip(_CLOSING)
    nxt = m.group(1)
    if ".." in punct or "…" in punct:
        return False  # ellipsis: the sentence trails on
    if not (nxt[0].isupper() or nxt[0].isdigit() or nxt[0] in _OPENING):
        return False
    if punct == ".":
        token = _token_before(text, m.start(), sentence_start)
        bare = token.lstrip(_OPENING)
        if bare.lower() in ABBREVIATIONS or _DOTTED.fullmatch(bare):
            return False
        next_word = nxt.strip(_OPENING).rstrip(".,;:!?" + _CLOSING).lower()
        if len(bare) == 1 and bare.isupper() and next_word not in SENTENCE_STARTERS:
            return False  # an initial
        if text[sentence_start : m.start()].strip() == token and _LIST_MARKER.fullmatch(token):
            return False  # "1. Fotokopi ..." list item number
    return not (_inside_parentheses(text, sentence_start, m, p_end) or _quote_continues(text, m, p_end))


def _token_before(text: str, end: int, floor: int) -> str:
    start = end
    while start > floor and not text[start - 1].isspace():
        start -= 1
    return text[start:end]


def _inside_parentheses(text: str, sentence_start: int, m: re.Match[str], p_end: int) -> bool:
    """True when the candidate sits in a parenthesis opened in this sentence that closes soon after."""
    depth = 0
    for c in text[sentence_start : m.end()]:
        if c == "(":
            depth += 1
        elif c == ")" and depth:
            depth -= 1
    if not depth:
        return False
    close = text.find(")", m.end(), min(p_end, m.end() + PAREN_SPAN))
    return close != -1


def _quote_continues(text: str, m: re.Match[str], p_end: int) -> bool:
    """True inside an open quotation whose close is followed by an attribution ('," kata Budi')."""
    before = text[text.rfind("\n\n", 0, m.start()) + 1 : m.end()]
    straight_open = before.count('"') % 2 == 1
    curly_open = before.count("“") > before.count("”")
    if not (straight_open or curly_open):
        return False
    limit = min(p_end, m.end() + QUOTE_ATTRIBUTION_SPAN)
    close = text.find('"' if straight_open else "”", m.end(), limit)
    if close == -1:
        return False
    after = text[close + 1 : limit].lstrip()
    return bool(after) and after[0].islower() and text[close - 1] in ",.!? "
