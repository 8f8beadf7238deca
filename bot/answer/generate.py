"""LLM answers: condense a follow-up, answer from numbered excerpts, keep only verified sentences.

Failures (unreachable, too slow, an error, a reply with no verified sentence) raise LLMError with a typed
reason; the engine then answers extractively from the same passages, so a front end always gets an Answer.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import prompts
from bot.answer.excerpts import ExcerptParams, build_excerpts
from bot.answer.extractive import SentenceScorer
from bot.answer.followup import needs_rewrite, standalone_question
from bot.answer.llm import LLM, LLMError, Message, OnToken
from bot.answer.types import Answer, Citation, Failure, Turn
from bot.answer.verify import MARKER, Claim, MarkerHoldback, Verdict, Verifier, is_refusal, parse_claims
from index.lang import detect_language
from index.search import SearchResult
from index.types import Passage

log = logging.getLogger(__name__)

_LABEL = re.compile(r"^\s*(standalone question|pertanyaan mandiri|question|pertanyaan)\s*:\s*", re.I)
# Markers and role-like openings inside article text: shown to the model defused, never as instructions.
_FAKE_MARKER = re.compile(r"\[(\s*\d{1,3}(?:\s*[,;]\s*\d{1,3})*\s*)\]")
_ROLE_LINE = re.compile(r"^(\s*)(system|assistant|user|developer|sistem|asisten)(\s*[:：>])", re.I | re.M)

# The structured reply (OpenAI-style json_schema, llama.cpp grammars): sentences with their passages;
# an empty list means the excerpts do not answer the question.
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sentences": {
            "type": "array",
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {
                    "sentence": {"type": "string"},
                    "passages": {"type": "array", "items": {"type": "integer"}},
                },
                "required": ["sentence", "passages"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["sentences"],
    "additionalProperties": False,
}

OnProgress = Callable[[Answer], None]


class LLMAnswerer:
    """Writes the answer with an LLM over short excerpts of the passages; keeps only verified sentences."""

    def __init__(
        self,
        llm: LLM,
        verifier: Verifier,
        scorer: SentenceScorer,
        *,
        excerpts: ExcerptParams | None = None,
        history_turns: int = 4,
    ):
        self.llm = llm
        self.verifier = verifier
        self.scorer = scorer
        self.excerpt_params = excerpts or ExcerptParams()
        self.history_turns = history_turns

    def excerpts(self, standalone: str, result: SearchResult, top_k: int) -> list[Passage]:
        """The numbered excerpts the model is given for this question ([] when nothing answers it)."""
        excerpts, best = build_excerpts(standalone, result, self.scorer, top_k, self.excerpt_params)
        floor = self.verifier.params.min_relevance
        if best is None or best < (self.scorer.weights.min_support if floor is None else floor):
            return []  # the extractive answer would refuse: a slow model call would be for nothing
        return excerpts

    def answer(
        self,
        question: str,
        standalone: str,
        language: str,
        result: SearchResult,
        top_k: int = 5,
        on_token: OnToken | None = None,
        on_progress: OnProgress | None = None,
    ) -> Answer:
        """A verified LLM answer or a refusal; LLMError when the model gave nothing usable.

        `on_token` gets the draft as it streams (structured replies as their sentences); `on_progress`
        the answer so far each time a streamed sentence is complete and verified.
        """
        t0 = time.perf_counter()
        excerpts = self.excerpts(standalone, result, top_k)
        if not excerpts:
            return Answer.refusal(question, language, mode="llm")
        messages = self.messages(standalone, language, excerpts)
        sink = _Draft(
            on_token, on_progress, lambda text: self._partial(question, standalone, language, text, excerpts)
        )
        streaming = on_token is not None or on_progress is not None
        reply = self.llm.chat(messages, on_token=sink.feed if streaming else None, schema=ANSWER_SCHEMA)
        sink.flush()
        t1 = time.perf_counter()
        claims, structured = parse_reply(reply, len(excerpts))
        if (structured and not claims) or (not structured and is_refusal(reply)):
            answer = Answer.refusal(question, language, mode="llm")
        else:
            verdict = self.verifier.verify_claims(claims, excerpts, question=standalone)
            if not verdict.kept:
                failure = Failure.NO_CITATIONS if not verdict.cites_anything else Failure.UNSUPPORTED
                error = LLMError(f"no verified sentence in the LLM reply: {reply[:200]!r}", failure)
                error.checked = len(verdict.claims)
                raise error
            answer = render(question, language, verdict, excerpts)
        answer.prompt_tokens = prompt_tokens(messages, self.scorer.embedder)
        answer.timings_ms = {"generate": (t1 - t0) * 1e3, "verify": (time.perf_counter() - t1) * 1e3}
        if sink.first_token is not None:
            answer.timings_ms["first_token"] = (sink.first_token - t0) * 1e3
        return answer

    def _partial(
        self, question: str, standalone: str, language: str, text: str, excerpts: list[Passage]
    ) -> Answer | None:
        """The answer verified so far from a partial draft (complete sentences only)."""
        claims, _ = parse_reply(text, len(excerpts))
        verdict = self.verifier.verify_claims(claims, excerpts, question=standalone)
        return render(question, language, verdict, excerpts) if verdict.kept else None

    def needs_condense(self, question: str, history: Sequence[Turn]) -> bool:
        """Whether the follow-up leans on the conversation (else it is asked as it is, with no LLM call)."""
        return bool(history) and needs_rewrite(question)

    def condense(self, question: str, history: Sequence[Turn], language: str) -> str:
        """The follow-up as a standalone question in its own language; without history, the question."""
        if not self.needs_condense(question, history):
            return question
        turns = list(history)[-self.history_turns :]
        lines = []
        for turn in turns:
            said = " ".join(MARKER.sub("", turn.answer.answer).split())
            lines.append(f"Q: {turn.question}\nA: {said[:400]}")
        prompt = prompts.load("condense", language).render(history="\n".join(lines), question=question)
        reply = self.llm.chat([{"role": "user", "content": prompt}])
        condensed = _first_line(reply)
        if not condensed or len(condensed) > 400 or detect_language(condensed, default=language) != language:
            # The known failure: condensing into English. The heuristic keeps the user's own words.
            log.info("condensed question %r rejected; using the heuristic", condensed)
            return standalone_question(question, history)
        return condensed

    def messages(self, question: str, language: str, excerpts: list[Passage]) -> list[Message]:
        """System and user messages: the excerpts as delimited, numbered data, then the question."""
        blocks = []
        previous = None
        for i, ps in enumerate(excerpts, 1):
            head = {k: ps.meta.get(k) for k in ("title", "date")}
            # title and date as attributes (a small model copies a line of its own as an answer), once per
            # run of excerpts from one article: short prompts are fast prompts
            attrs = "".join(
                f' {k}="{defuse(v).replace(chr(34), chr(39))}"'
                for k, v in head.items()
                if v and head != previous
            )
            previous = head
            blocks.append(f'<passage id="{i}"{attrs}>\n{defuse(" ".join(ps.text.split()))}\n</passage>')
        user = prompts.load("answer", language).render(passages="\n".join(blocks), question=question)
        return [
            {"role": "system", "content": prompts.load("system", language).render()},
            {"role": "user", "content": user},
        ]


def defuse(text: str) -> str:
    """Article text as inert data: no citation markers, no passage tags, no role lines, no chat tokens."""
    text = _FAKE_MARKER.sub(r"(\1)", text)
    text = text.replace("<", "‹").replace(">", "›")
    return _ROLE_LINE.sub(r"\1\2 -", text)


def parse_reply(reply: str, n_passages: int) -> tuple[list[Claim], bool]:
    """The reply's claims, and whether it was a structured (JSON) reply."""
    data = _json_object(reply)
    if data is None and _STRUCTURED_START.match(reply):
        # cut off at max_tokens inside the JSON: its complete sentences still count
        found = _OBJECT.findall(reply)
        data = {"sentences": [{"sentence": _unescape(t), "passages": _ints(p)} for t, p in found]}
    if data is None or not isinstance(data.get("sentences"), list):
        return parse_claims(reply, n_passages), False
    claims: list[Claim] = []
    for item in data["sentences"]:
        if not isinstance(item, dict) or not isinstance(item.get("sentence"), str):
            continue
        numbers = [n for n in item.get("passages") or [] if isinstance(n, int) and not isinstance(n, bool)]
        marks = "".join(f"[{n}]" for n in numbers)
        for claim in parse_claims(f"{item['sentence'].strip()} {marks}", n_passages):
            claims.append(claim)
    return claims, True


_STRUCTURED_START = re.compile(r'\s*(?:```(?:json)?\s*)?\{\s*"sentences"')
# One complete {"sentence": ..., "passages": [...]} object of a structured reply, even in a cut-off one.
_OBJECT = re.compile(r'\{\s*"sentence"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"passages"\s*:\s*\[([\d,\s]*)\]')


def _ints(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", text)]


def _json_object(reply: str) -> dict[str, Any] | None:
    text = reply.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def prompt_tokens(messages: list[Message], embedder: Any) -> int:
    """Tokens of the prompt's messages as the answer embedder's tokenizer counts them (e5's SentencePiece
    is close to a Llama-family tokenizer on Indonesian news: within ~15%)."""
    count = getattr(embedder, "count_tokens", None)
    if count is None:
        return sum(len(m["content"].split()) for m in messages)
    return sum(count(m["content"]) for m in messages)


class _Draft:
    """The streamed reply: passed on as text (structured replies as their sentences, with markers), and
    verified sentence by sentence for `on_progress`."""

    _SENTENCE_END = re.compile(r"[.!?…](?:\s*\[[\d,;\s]+\])*(?=\s+\S)")

    def __init__(
        self,
        on_token: OnToken | None,
        on_progress: OnProgress | None,
        verify: Callable[[str], Answer | None],
    ):
        self.hold = MarkerHoldback(on_token) if on_token else None
        self.on_progress = on_progress
        self.verify = verify
        self.raw = ""
        self.text = ""  # the readable draft so far
        self.first_token: float | None = None
        self._emitted = 0  # characters of self.text passed on
        self._verified_upto = 0

    def feed(self, piece: str) -> None:
        """Take one streamed piece."""
        if self.first_token is None and piece.strip():
            self.first_token = time.perf_counter()
        self.raw += piece
        if self.raw.lstrip().startswith("{"):
            sentences = [(_unescape(s), nums) for s, nums in _OBJECT.findall(self.raw)]
            self.text = "".join(
                f"{s.strip()} {''.join(f'[{n.strip()}]' for n in nums.split(',') if n.strip())} "
                for s, nums in sentences
            )
            complete = len(self.text)
        else:
            self.text = self.raw
            ends = list(self._SENTENCE_END.finditer(self.text))
            complete = ends[-1].end() if ends else 0
        if self.hold and len(self.text) > self._emitted:
            self.hold.feed(self.text[self._emitted :])
            self._emitted = len(self.text)
        if self.on_progress and complete > self._verified_upto:
            self._verified_upto = complete
            partial = self.verify(self.text[:complete])
            if partial is not None:
                self.on_progress(partial)

    def flush(self) -> None:
        """The stream ended."""
        if self.hold:
            self.hold.flush()


def _unescape(json_string_body: str) -> str:
    try:
        return str(json.loads(f'"{json_string_body}"'))
    except ValueError:
        return json_string_body


def _first_line(reply: str) -> str:
    for line in reply.strip().splitlines():
        line = _LABEL.sub("", line).strip().strip("\"'“”*").strip()
        if line:
            return line
    return ""


def render(question: str, language: str, verdict: Verdict, passages: list[Passage]) -> Answer:
    """Kept sentences with their markers renumbered; one citation per supporting passage sentence."""
    kept = verdict.kept
    if not kept:
        return Answer.refusal(question, language, mode="llm")
    numbers: dict[tuple[int, int], int] = {}
    citations: list[Citation] = []
    sentences = []
    for claim in kept:
        marks = []
        for ev in claim.evidence.values():
            key = (ev.passage, ev.start)
            if key not in numbers:
                numbers[key] = len(citations) + 1
                citations.append(Citation.of(numbers[key], passages[ev.passage], ev.start, ev.end, ev.score))
            if f"[{numbers[key]}]" not in marks:
                marks.append(f"[{numbers[key]}]")
        sentences.append(f"{claim.text} {''.join(marks)}{claim.punctuation}")
    answer = Answer(question, " ".join(sentences), False, citations, language, mode="llm")
    answer.checked_sentences = len(verdict.claims)
    answer.dropped_sentences = verdict.dropped
    answer.attributed_by_kabar = verdict.attributed
    answer.attributed_by_model = len(kept) - verdict.attributed
    return answer
