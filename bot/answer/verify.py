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
_WORD = re.compile(r"[^\W\d_][\w'-]*")
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
    # Evidence must answer the question, not only restate its passage (an article that says "answer
    # every question with <link>" supports a reply made of that link): the question-support logit of
    # its sentence standing alone (meta["relevance"] of an excerpt) must be within this margin of the
    # best excerpt sentence's. On the seed eval set every gold sentence is within 0.7 of the best.
    relevance_margin: float = 2.0
    # The LLM is asked only when the best sentence's support reaches this logit (None: the extractive
    # refusal threshold, SupportWeights.min_support); below it nothing answers the question.
    min_relevance: float | None = None
    # Kabar attributing a sentence the model cited wrongly or not at all: the support it needs on top.
    attribution_margin: float = 0.2
    cross_language_attribution_margin: float = 0.03
    # A claim needs this many words (not numbers): small models answer "13.000 kontainer." to "how many
    # soldiers?", a verbatim fragment that states nothing verification could tie to the question.
    min_claim_words: int = 3


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
    evidence: dict[int, Evidence] = field(default_factory=dict)  # passage number -> support
    attributed: bool = False  # Kabar found the supporting passage: the model cited none or a wrong one
    irrelevant: bool = False  # a passage supports it, but nothing it rests on answers the question

    @property
    def supported(self) -> bool:
        """At least one passage supports it (one it cites, or the one Kabar attributed it to)."""
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

    @property
    def attributed(self) -> int:
        """Kept sentences whose citation Kabar found (no marker, or a wrong one)."""
        return sum(c.supported and c.attributed for c in self.claims)


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


def claim_names(text: str, first: bool = False) -> set[str]:
    """Capitalised words other than the first (with `first`, it too), minus function words and generic
    title words."""
    words = _NAME.findall(text)
    opening = None if first else re.match(r"\W*([\w'-]+)", text)
    names = set()
    for w in words:
        if opening and w == opening.group(1) and text.count(w) == 1:
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

    def verify(self, reply: str, passages: list[Passage], attribute: bool = True) -> Verdict:
        """Parse the reply's claims and keep, per claim, the citations whose passage supports it.

        A claim that no cited passage supports (it cites none, or a wrong one) is attributed to the
        passage that supports it best, when `attribute`; only a claim that nothing supports is dropped.
        """
        return self.verify_claims(parse_claims(reply, len(passages)), passages, attribute)

    def verify_claims(
        self, claims: list[Claim], passages: list[Passage], attribute: bool = True, question: str = ""
    ) -> Verdict:
        """Verify parsed claims (see verify); a claim that only repeats `question` is removed."""
        asked = set(tokenize(question))
        cited = sorted({n for c in claims for n in c.cited})
        numbers = list(range(1, len(passages) + 1)) if attribute else cited
        checked = [c for c in claims if c.cited or attribute]
        spans = {n: _with_pairs(passage_sentences(passages[n - 1])) for n in numbers}
        texts = [c.text for c in checked]
        sentence_texts = [passages[n - 1].text[a:b] for n in numbers for a, b, _ in spans[n]]
        if not texts or not sentence_texts:
            return Verdict(claims)
        vecs = self._vectors(texts + sentence_texts)
        claim_vecs = dict(zip([id(c) for c in checked], vecs[: len(texts)], strict=True))
        offset = len(texts)
        sent_vecs: dict[int, np.ndarray] = {}
        for n in numbers:
            sent_vecs[n] = vecs[offset : offset + len(spans[n])]
            offset += len(spans[n])
        relevant = self._relevance(passages, spans)

        def answering(claim: Claim, candidates: list[int], attributing: bool = False) -> dict[int, Evidence]:
            found = {}
            for n in candidates:
                vec = claim_vecs[id(claim)]
                ev = self._support(claim, passages[n - 1], n, spans[n], sent_vecs[n], vec, attributing)
                if ev is not None and relevant(n, ev):
                    found[n] = ev
                elif ev is not None:
                    claim.irrelevant = True
            return found

        for claim in checked:
            if len(_WORD.findall(claim.text)) < self.params.min_claim_words:
                continue  # a fragment, not a statement: removed
            if asked and set(tokenize(claim.text)) <= asked:
                continue  # the question echoed back ("Pemerintah Korea Selatan memanggil duta besar Rusia?")
            mine = answering(claim, claim.cited)
            if mine:
                claim.evidence.update(mine)
            elif attribute:
                others = answering(claim, [n for n in numbers if n not in claim.cited], attributing=True)
                if others:
                    n, ev = max(others.items(), key=lambda item: item[1].score)
                    claim.evidence[n] = ev
                    claim.attributed = True
            if claim.evidence:
                claim.irrelevant = False
        return Verdict(claims)

    def _support(
        self,
        claim: Claim,
        ps: Passage,
        n: int,
        spans: list[tuple[int, int, bool]],
        sent_vecs: np.ndarray,
        claim_vec: np.ndarray,
        attributing: bool = False,
    ) -> Evidence | None:
        """The sentence (or pair) of passage `n` that supports the claim, or None.

        `attributing` (the model did not cite this passage): searching every passage is more chances to
        find a near miss, so the bar is higher: a margin on the score, and the claim's names, its first
        word too, must be in the supporting sentence itself ("NATO telah mengonfirmasi pengiriman pasukan
        Korea Utara" must not rest on a sentence about Korea Utara's troops that never names NATO).
        """
        p = self.params
        numbers = claim_numbers(claim.text)
        context = " ".join(filter(None, [ps.meta.get("title"), ps.meta.get("date"), ps.text]))
        if not numbers <= numbers_of(context):
            return None
        language = detect_language(claim.text)
        same_language = detect_language(ps.text) == language
        need = p.name_coverage if same_language else p.cross_language_name_coverage
        if coverage(claim_names(claim.text), context) < need:
            return None
        tokens = set(tokenize(claim.text)) - _DATE_TOKENS
        cos = sent_vecs @ claim_vec
        best: Evidence | None = None
        best_value = -1e9
        for i, (a, b, pair) in enumerate(spans):
            lex = len(tokens & set(tokenize(ps.text[a:b]))) / len(tokens) if tokens else 0.0
            score = p.lexical_weight * lex + p.dense_weight * float(cos[i])
            if same_language:
                value = score - (p.pair_penalty if pair else 0.0)
            else:
                value = float(cos[i]) - (p.cross_language_pair_penalty if pair else 0.0)
            if value > best_value:
                best, best_value = Evidence(n - 1, a, b, score, lex, float(cos[i])), value
        threshold = p.min_support if same_language else p.min_cross_language_dense
        if attributing:
            threshold += p.attribution_margin if same_language else p.cross_language_attribution_margin
        if best is None or best_value < threshold:
            return None
        where = " ".join(
            filter(None, [ps.meta.get("title"), ps.meta.get("date"), ps.text[best.start : best.end]])
        )
        if not numbers <= numbers_of(where):
            return None  # its numbers from one sentence, its words from another: a merge, not support
        if attributing and coverage(claim_names(claim.text, first=True), where) < need:
            return None
        if not self.same_polarity(claim.text, ps.text[best.start : best.end]):
            return None
        return best

    def _relevance(
        self, passages: list[Passage], spans: dict[int, list[tuple[int, int, bool]]]
    ) -> Callable[[int, Evidence], bool]:
        """Whether evidence answers the question: its sentences' question-support logits (excerpts carry
        them in meta["relevance"]); passages without them are not checked."""
        p = self.params
        scores: dict[int, list[tuple[int, int, float]]] = {}
        for n in spans:
            rel = passages[n - 1].meta.get("relevance")
            if rel is not None:
                singles = [(a, b) for a, b, pair in spans[n] if not pair]
                scores[n] = [(a, b, r) for (a, b), r in zip(singles, rel, strict=True)]
        everything = [r for rows in scores.values() for _, _, r in rows]
        if not everything:
            return lambda n, ev: True
        floor = max(everything) - p.relevance_margin

        def relevant(n: int, ev: Evidence) -> bool:
            if n not in scores:
                return True
            inside = [r for a, b, r in scores[n] if a >= ev.start and b <= ev.end]
            return bool(inside) and max(inside) >= floor

        return relevant

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
