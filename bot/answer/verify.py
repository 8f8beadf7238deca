"""Citation verification of an LLM answer: every kept sentence is supported by the passage it cites."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bot.answer.evidence import COMMON_CAPS, claim_numbers, coverage, numbers_of, passage_sentences
from index.embed import Embedder
from index.keyword import tokenize
from index.lang import detect_language
from index.sentences import split_sentences
from index.types import Passage

# "[1]", "[1, 2]", "[1;2]": one or more passage numbers in brackets.
MARKER = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\]")
# Markers written after the full stop ("... Seoul. [1]") belong to the sentence before it.
_MARKERS_AFTER_STOP = re.compile(r"([.!?…]+)((?:\s*\[\d{1,3}\])+)")
# A stream ending in a marker that may not be complete yet: "[", "[1", "[1, 2".
_PARTIAL_MARKER = re.compile(r"\[(?:\d{1,3}(?:\s*[,;]\s*)?){0,8}$")
_NAME = re.compile(r"\b[A-Z][\w'-]*")
# Months and days: a date is checked through its numbers ("21 Oktober" against "21/10/2024").
_DATE_WORDS = (
    "januari februari maret april mei juni juli agustus september oktober november desember january "
    "february march may june july august october december senin selasa rabu kamis jumat sabtu minggu "
    "monday tuesday wednesday thursday friday saturday sunday"
)
_STOP_CAPS = frozenset(
    "i it he she they we this that these those there however but and also according menurut namun ia dia "
    "mereka ini itu hal sementara selain pada di dalam dari yang dan juga kemudian lalu".split()
    + _DATE_WORDS.split()
)
_DATE_TOKENS = frozenset(tokenize(_DATE_WORDS))
# Clear negators, Indonesian and English, so an English claim is checked against an Indonesian passage too.
# "tidak hanya" / "not only" add rather than deny; "No. 5" and "UU No. 1" are numbers.
_NEGATOR = re.compile(
    r"(?:\b(?:tidak|tak|bukan|belum|tanpa|jangan|tiada|nggak|enggak)(?:lah)?"
    r"|\b(?:not|never|without|none|neither|nor|cannot)|\bno(?!\.?\s*\d)|n[’']t)\b"
    r"(?!\s+(?:hanya|cuma|sekadar|only|just|merely)\b)",
    re.IGNORECASE,
)
# Where a sentence turns: "X belum mengonfirmasi ..., tetapi Y menyatakan ..." holds two polarities.
_CONTRAST = (
    r"\s(?=(?:tetapi|tapi|namun|sedangkan|sementara|padahal|meskipun|walaupun"
    r"|but|while|whereas|although|though)\b)"
)
_CLAUSE_BREAK = re.compile(rf"[,;:](?=\s)|{_CONTRAST}", re.IGNORECASE)
_PART_BREAK = re.compile(rf";(?=\s)|{_CONTRAST}", re.IGNORECASE)
CANNOT_ANSWER = "NOT_IN_ARTICLES"  # the reply the system prompts ask for when the passages lack the answer
_REFUSAL = re.compile(
    r"NOT_IN_ARTICLES|\b(i cannot answer|cannot be answered|(is|are) not (mentioned |found )?in the "
    r"(passages|articles)|do(es)? not (contain|mention|say)|tidak (dapat|bisa) (di)?jawab|"
    r"tidak (ada|terdapat|disebutkan|ditemukan|dijelaskan) (dalam|di) (cuplikan|artikel))",
    re.IGNORECASE,
)


@dataclass
class VerifyParams:
    """When a passage supports a sentence; see docs/llm.md for how these were measured."""

    lexical_weight: float = 1.0  # share of the sentence's content words found in the passage's best sentence
    dense_weight: float = 1.0  # cosine(sentence, the passage's best sentence)
    min_support: float = 1.5  # weighted sum at or above which the best sentence supports the claim
    # An answer in another language than the passage shares almost no words with it: the cosine alone.
    min_cross_language_dense: float = 0.86
    # Share of the sentence's names the passage must contain: all of them in the passage's language;
    # an answer in another language translates some ("Moscow" for "Moskow"), so half of them.
    name_coverage: float = 1.0
    cross_language_name_coverage: float = 0.5
    # A claim may merge two neighbouring sentences ("the ministry ... summoned ..."): a pair of sentences is
    # evidence too, at this cost (a single sentence is the tighter quote).
    pair_penalty: float = 0.1
    cross_language_pair_penalty: float = 0.01


@dataclass
class Evidence:
    """The passage sentence that supports a claim."""

    passage: int  # 0-based index into the passages given to the model
    start: int  # offsets into the passage's text
    end: int
    score: float
    lexical: float = 0.0
    dense: float = 0.0


@dataclass
class Claim:
    """One answer sentence: its text without markers, the passages it cites, what verification found."""

    text: str
    punctuation: str
    cited: list[int]  # 1-based passage numbers as written
    invalid: list[int] = field(default_factory=list)  # numbers pointing at no passage
    evidence: dict[int, Evidence] = field(default_factory=dict)  # cited number -> support

    @property
    def supported(self) -> bool:
        """At least one cited passage supports it."""
        return bool(self.evidence)


@dataclass
class Verdict:
    """The verified claims of a reply."""

    claims: list[Claim]

    @property
    def kept(self) -> list[Claim]:
        """Claims with at least one supporting citation."""
        return [c for c in self.claims if c.supported]

    @property
    def dropped(self) -> int:
        """How many sentences were removed."""
        return sum(not c.supported for c in self.claims)

    @property
    def cites_anything(self) -> bool:
        """Whether the reply used any marker at all (valid or not)."""
        return any(c.cited or c.invalid for c in self.claims)


def is_refusal(reply: str) -> bool:
    """The model says the passages do not answer the question (and cites nothing)."""
    return bool(_REFUSAL.search(reply)) and not MARKER.search(reply)


def normalize_markers(text: str) -> str:
    """'[1, 2]' becomes '[1][2]', and markers after a full stop move before it."""
    text = MARKER.sub(lambda m: "".join(f"[{n}]" for n in re.split(r"\s*[,;]\s*", m.group(1))), text)
    return _MARKERS_AFTER_STOP.sub(lambda m: m.group(2) + m.group(1), text)


def parse_claims(reply: str, n_passages: int) -> list[Claim]:
    """The reply's sentences with their markers; markers outside 1..n_passages are set aside as invalid."""
    text = normalize_markers(reply.strip())
    claims = []
    for s in split_sentences(text):
        numbers = [int(n) for n in re.findall(r"\[(\d{1,3})\]", s.text)]
        body = " ".join(MARKER.sub(" ", s.text).split())
        stripped = body.rstrip(".!?… ")
        punctuation = body[len(stripped) :].strip() or "."
        if not re.search(r"\w", stripped):
            continue  # a stray marker or bullet on its own
        valid = list(dict.fromkeys(n for n in numbers if 1 <= n <= n_passages))
        invalid = list(dict.fromkeys(n for n in numbers if not 1 <= n <= n_passages))
        claims.append(Claim(stripped, punctuation, valid, invalid))
    return claims


def claim_names(text: str) -> set[str]:
    """Capitalised words other than the first, minus function words and generic title words."""
    words = _NAME.findall(text)
    first = re.match(r"\W*([\w'-]+)", text)
    names = set()
    for w in words:
        if first and w == first.group(1) and text.count(w) == 1:
            continue  # sentence-initial capital says nothing
        low = w.lower()
        if low not in _STOP_CAPS and low not in COMMON_CAPS and len(low) > 1:
            names.add(low)
    return names


def negated(text: str) -> bool:
    """Whether the text holds a clear negator ('belum', 'tidak', 'not', "n't", ...)."""
    return bool(_NEGATOR.search(text))


def clauses(text: str) -> list[str]:
    """The text cut at commas, semicolons and colons, and before contrastive conjunctions."""
    return [c.strip() for c in _CLAUSE_BREAK.split(text) if c.strip()]


def claim_parts(text: str) -> list[str]:
    """A claim cut only where it turns (semicolons, contrastive conjunctions): commas keep one statement."""
    return [c.strip() for c in _PART_BREAK.split(text) if c.strip()] or [text]


def _with_pairs(spans: list[tuple[int, int]]) -> list[tuple[int, int, bool]]:
    """Each sentence, then each pair of neighbouring sentences (flagged)."""
    singles = [(a, b, False) for a, b in spans]
    pairs = [(a, spans[i + 1][1], True) for i, (a, _) in enumerate(spans[:-1])]
    return singles + pairs


class Verifier:
    """Checks each cited sentence against the passage it cites (lexical + embedding + names and numbers)."""

    def __init__(
        self,
        embedder: Embedder,
        params: VerifyParams | None = None,
        vectors: Callable[[list[str]], np.ndarray] | None = None,
    ):
        self.embedder = embedder
        self.params = params or VerifyParams()
        self._vectors = vectors or embedder.embed_passages

    def verify(self, reply: str, passages: list[Passage]) -> Verdict:
        """Parse the reply's claims and keep, per claim, the citations whose passage supports it."""
        claims = parse_claims(reply, len(passages))
        cited = sorted({n for c in claims for n in c.cited})
        spans = {n: _with_pairs(passage_sentences(passages[n - 1])) for n in cited}
        texts = [c.text for c in claims if c.cited]
        sentence_texts = [passages[n - 1].text[a:b] for n in cited for a, b, _ in spans[n]]
        if not texts or not sentence_texts:
            return Verdict(claims)
        vecs = self._vectors(texts + sentence_texts)
        claim_vecs = dict(zip([id(c) for c in claims if c.cited], vecs[: len(texts)], strict=True))
        offset = len(texts)
        sent_vecs: dict[int, np.ndarray] = {}
        for n in cited:
            sent_vecs[n] = vecs[offset : offset + len(spans[n])]
            offset += len(spans[n])
        p = self.params
        for claim in claims:
            if not claim.cited:
                continue
            tokens = set(tokenize(claim.text)) - _DATE_TOKENS
            numbers = claim_numbers(claim.text)
            names = claim_names(claim.text)
            language = detect_language(claim.text)
            for n in claim.cited:
                ps = passages[n - 1]
                context = " ".join(filter(None, [ps.meta.get("title"), ps.meta.get("date"), ps.text]))
                if not numbers <= numbers_of(context):
                    continue
                same_language = detect_language(ps.text) == language
                need = p.name_coverage if same_language else p.cross_language_name_coverage
                if coverage(names, context) < need:
                    continue
                cos = sent_vecs[n] @ claim_vecs[id(claim)]
                best: Evidence | None = None
                best_value = -1e9
                for i, (a, b, pair) in enumerate(spans[n]):
                    lex = len(tokens & set(tokenize(ps.text[a:b]))) / len(tokens) if tokens else 0.0
                    score = p.lexical_weight * lex + p.dense_weight * float(cos[i])
                    if same_language:
                        value = score - (p.pair_penalty if pair else 0.0)
                    else:
                        value = float(cos[i]) - (p.cross_language_pair_penalty if pair else 0.0)
                    if value > best_value:
                        best, best_value = Evidence(n - 1, a, b, score, lex, float(cos[i])), value
                threshold = p.min_support if same_language else p.min_cross_language_dense
                if (
                    best is not None
                    and best_value >= threshold
                    and self.same_polarity(claim.text, ps.text[best.start : best.end])
                ):
                    claim.evidence[n] = best
        return Verdict(claims)

    def same_polarity(self, claim: str, evidence: str) -> bool:
        """Each part of the claim is negated exactly when the evidence clause closest to it is.

        "Korea Utara telah mengonfirmasi" shares almost every word with "Korea Utara belum mengonfirmasi":
        the overlap scores cannot see the flip, so it is checked here.
        """
        pieces = clauses(evidence) or [evidence]
        polarity = [negated(p) for p in pieces]
        parts = claim_parts(claim)
        if len(set(polarity)) == 1:  # one polarity throughout: no need to find the matching clause
            return all(negated(part) == polarity[0] for part in parts)
        # Mixed ("NATO belum mengonfirmasi ..., tetapi Rutte menyatakan ..."): each part against its clause.
        vecs = self._vectors(parts + pieces)
        piece_tokens = [set(tokenize(p)) for p in pieces]
        for part, vec in zip(parts, vecs[: len(parts)], strict=True):
            tokens = set(tokenize(part))
            sims = [
                (len(tokens & pt) / len(tokens) if tokens else 0.0) + float(v @ vec)
                for pt, v in zip(piece_tokens, vecs[len(parts) :], strict=True)
            ]
            if negated(part) != polarity[int(np.argmax(sims))]:
                return False
        return True


class MarkerHoldback:
    """Passes streamed text on, holding back a trailing '[1' until the marker is complete."""

    def __init__(self, emit: Callable[[str], None]):
        self.emit = emit
        self._buffer = ""

    def feed(self, piece: str) -> None:
        """Take one streamed piece; emit what cannot be part of an unfinished marker."""
        self._buffer += piece
        m = _PARTIAL_MARKER.search(self._buffer)
        cut = m.start() if m else len(self._buffer)
        if cut:
            self.emit(self._buffer[:cut])
            self._buffer = self._buffer[cut:]

    def flush(self) -> None:
        """Emit whatever is left at the end of the stream."""
        if self._buffer:
            self.emit(self._buffer)
            self._buffer = ""
