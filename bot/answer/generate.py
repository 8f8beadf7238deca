"""LLM answers: condense a follow-up, answer from numbered passages, keep only verified sentences.

Failures (unreachable, too slow, an error, a reply citing nothing) raise LLMError with a typed reason;
the engine then answers extractively from the same passages, so a front end always gets an Answer.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence

import prompts
from bot.answer.followup import standalone_question
from bot.answer.llm import LLM, LLMError, Message, OnToken
from bot.answer.types import Answer, Citation, Failure, Turn
from bot.answer.verify import MARKER, MarkerHoldback, Verdict, Verifier, is_refusal
from index.lang import detect_language
from index.types import Passage

log = logging.getLogger(__name__)

_LABEL = re.compile(r"^\s*(standalone question|pertanyaan mandiri|question|pertanyaan)\s*:\s*", re.I)


class LLMAnswerer:
    """Writes the answer with an LLM over the engine's passages and keeps only its verified sentences."""

    def __init__(self, llm: LLM, verifier: Verifier, *, history_turns: int = 4):
        self.llm = llm
        self.verifier = verifier
        self.history_turns = history_turns

    def answer(
        self,
        question: str,
        standalone: str,
        language: str,
        passages: list[Passage],
        on_token: OnToken | None = None,
    ) -> Answer:
        """A verified LLM answer or a refusal; LLMError when the model gave nothing usable."""
        t0 = time.perf_counter()
        if not passages:
            return Answer.refusal(question, language, mode="llm")
        hold = MarkerHoldback(on_token) if on_token else None
        reply = self.llm.chat(
            self.messages(standalone, language, passages), on_token=hold.feed if hold else None
        )
        if hold:
            hold.flush()
        t1 = time.perf_counter()
        if is_refusal(reply):
            answer = Answer.refusal(question, language, mode="llm")
        else:
            verdict = self.verifier.verify(reply, passages)
            if not verdict.cites_anything:
                raise LLMError(f"LLM reply cites no passage: {reply[:200]!r}", Failure.NO_CITATIONS)
            answer = _render(question, language, verdict, passages)
            answer.checked_sentences = len(verdict.claims)
            answer.dropped_sentences = verdict.dropped
        answer.timings_ms = {"generate": (t1 - t0) * 1e3, "verify": (time.perf_counter() - t1) * 1e3}
        return answer

    def condense(self, question: str, history: Sequence[Turn], language: str) -> str:
        """The follow-up as a standalone question in its own language; without history, the question."""
        if not history:
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

    def messages(self, question: str, language: str, passages: list[Passage]) -> list[Message]:
        """System and user messages: the passages numbered [1]..[k], then the question."""
        blocks = []
        for i, ps in enumerate(passages, 1):
            head = " · ".join(filter(None, [ps.meta.get("title"), ps.meta.get("date")]))
            blocks.append(f"[{i}] {head}\n{ps.text.strip()}" if head else f"[{i}] {ps.text.strip()}")
        user = prompts.load("answer", language).render(passages="\n\n".join(blocks), question=question)
        return [
            {"role": "system", "content": prompts.load("system", language).render()},
            {"role": "user", "content": user},
        ]


def _first_line(reply: str) -> str:
    for line in reply.strip().splitlines():
        line = _LABEL.sub("", line).strip().strip("\"'“”*").strip()
        if line:
            return line
    return ""


def _render(question: str, language: str, verdict: Verdict, passages: list[Passage]) -> Answer:
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
    return Answer(question, " ".join(sentences), False, citations, language, mode="llm")
