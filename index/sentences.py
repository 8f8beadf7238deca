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

# (?<!...): a candidate starts where a run of stops starts, so a run of 100,000 dots costs linear time
_CANDIDATE = re.compile(r"(?<![.!?…])[.!?…]+[\"'”’)\]»]*(?=\s+(\S+))")
_CLOSING = "\"'”’)]»"
_OPENING = "\"“'‘([«"
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # "S.H", "a.n", "U.S" (the last period is the candidate)
_LIST_MARKER = re.compile(r"\(?(\d{1,3}|[A-Za-z])")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")
_PAREN = re.compile(r"[()]")
_NON_SPACE = re.compile(r"\S")


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


class _Scan:
    """Quote and parenthesis counts carried from one candidate to the next within a paragraph, so a long
    paragraph is read once, not once per candidate (which made a 2 MB paragraph take minutes)."""

    def __init__(self, text: str, p_start: int) -> None:
        self.text = text
        self.p_start = p_start
        self.quote_pos = p_start  # quotes counted in text[p_start:quote_pos]
        self.straight = self.curly_open = self.curly_close = 0
        self.paren_start = self.paren_pos = p_start  # depth counted in text[paren_start:paren_pos]
        self.depth = 0

    def quotes(self, end: int) -> tuple[bool, bool]:
        """Whether a straight / a curly quotation is open in text[p_start:end]."""
        part = self.text[self.quote_pos : end]
        self.straight += part.count('"')
        self.curly_open += part.count("“")
        self.curly_close += part.count("”")
        self.quote_pos = end
        return self.straight % 2 == 1, self.curly_open > self.curly_close

    def parenthesis_depth(self, sentence_start: int, end: int) -> int:
        """Open parentheses in text[sentence_start:end] (a ")" with none open is ignored)."""
        if sentence_start != self.paren_start:
            self.paren_start = self.paren_pos = sentence_start
            self.depth = 0
        for m in _PAREN.finditer(self.text, self.paren_pos, end):
            if m.group() == "(":
                self.depth += 1
            elif self.depth:
                self.depth -= 1
        self.paren_pos = end
        return self.depth


def _boundaries(text: str, p_start: int, p_end: int) -> list[int]:
    """Offsets (just after the terminal punctuation and closers) where a new sentence starts."""
    cuts: list[int] = []
    sentence_start = p_start
    scan = _Scan(text, p_start)
    for m in _CANDIDATE.finditer(text, p_start, p_end):
        if m.start(1) >= p_end:
            break
        if _is_boundary(text, m, sentence_start, p_end, scan):
            cuts.append(m.end())
            sentence_start = m.end()
    return cuts


def _is_boundary(text: str, m: re.Match[str], sentence_start: int, p_end: int, scan: _Scan) -> bool:
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
        if _LIST_MARKER.fullmatch(token) and not _NON_SPACE.search(
            text, sentence_start, m.start() - len(token)
        ):
            return False  # "1. Fotokopi ..." list item number
    return not (
        _inside_parentheses(text, sentence_start, m, p_end, scan) or _quote_continues(text, m, p_end, scan)
    )


def _token_before(text: str, end: int, floor: int) -> str:
    start = end
    while start > floor and not text[start - 1].isspace():
        start -= 1
    return text[start:end]


def _inside_parentheses(text: str, sentence_start: int, m: re.Match[str], p_end: int, scan: _Scan) -> bool:
    """True when the candidate sits in a parenthesis opened in this sentence that closes soon after."""
    if not scan.parenthesis_depth(sentence_start, m.end()):
        return False
    close = text.find(")", m.end(), min(p_end, m.end() + PAREN_SPAN))
    return close != -1


def _quote_continues(text: str, m: re.Match[str], p_end: int, scan: _Scan) -> bool:
    """True inside an open quotation whose close is followed by an attribution ('," kata Budi')."""
    straight_open, curly_open = scan.quotes(m.end())
    if not (straight_open or curly_open):
        return False
    limit = min(p_end, m.end() + QUOTE_ATTRIBUTION_SPAN)
    close = text.find('"' if straight_open else "”", m.end(), limit)
    if close == -1:
        return False
    after = text[close + 1 : limit].lstrip()
    return bool(after) and after[0].islower() and text[close - 1] in ",.!? "
