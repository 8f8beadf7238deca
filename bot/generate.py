"""LLM answers: condense a follow-up, answer from numbered passages, keep only verified sentences.

Any failure of the LLM (unreachable, too slow, an error, a reply citing nothing) falls back to the
extractive answer with a notice, so a front end always gets an Answer in bounded time.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import prompts
from bot.llm import LLM, LLMError, LLMTimeout, Message, OnToken
from bot.verify import MARKER, MarkerHoldback, Verdict, Verifier, is_refusal
from index.lang import detect_language
from index.search import Searcher
from index.types import Answer, Citation, Passage

if TYPE_CHECKING:
    from bot.engine import Turn

log = logging.getLogger(__name__)

Fallback = Callable[[str, Sequence["Turn"], "int | None"], Answer]
_LABEL = re.compile(r"^\s*(standalone question|pertanyaan mandiri|question|pertanyaan)\s*:\s*", re.I)


class Generator:
    """The LLM answer pipeline over one searcher; `fallback` gives the extractive answer."""

    def __init__(
        self,
        llm: LLM,
        searcher: Searcher,
        verifier: Verifier,
        fallback: Fallback,
        *,
        top_k: int = 5,
        history_turns: int = 4,
    ):
        self.llm = llm
        self.searcher = searcher
        self.verifier = verifier
        self.fallback = fallback
        self.top_k = top_k
        self.history_turns = history_turns

    def answer(
        self,
        question: str,
        history: Sequence[Turn] = (),
        top_k: int | None = None,
        on_token: OnToken | None = None,
    ) -> Answer:
        """A verified LLM answer, a refusal, or the extractive answer with a notice."""
        t0 = time.perf_counter()
        question = question.strip()
        language = detect_language(question, default=history[-1].answer.language if history else "id")
        try:
            standalone = self.condense(question, history, language)
            t1 = time.perf_counter()
            passages = self.searcher.search(standalone, top_k or self.top_k).passages
            t2 = time.perf_counter()
            if not passages:
                return _refused(question, language, standalone, mode="llm")
            hold = MarkerHoldback(on_token) if on_token else None
            reply = self.llm.chat(
                self.messages(standalone, language, passages), on_token=hold.feed if hold else None
            )
            if hold:
                hold.flush()
        except LLMError as e:
            log.warning("LLM answer failed, falling back to the extractive answer: %s", e)
            return self._fall_back(question, history, top_k, language, _reason(e))
        t3 = time.perf_counter()
        if is_refusal(reply):
            answer = _refused(question, language, standalone, mode="llm")
        else:
            verdict = self.verifier.verify(reply, passages)
            if not verdict.cites_anything:
                log.warning("LLM reply cites no passage: %.200r", reply)
                return self._fall_back(question, history, top_k, language, "no citations")
            answer = _render(question, language, verdict, passages)
            answer.checked_sentences = len(verdict.claims)
            answer.dropped_sentences = verdict.dropped
        answer.standalone_question = standalone
        t4 = time.perf_counter()
        answer.timings_ms = {
            "condense": (t1 - t0) * 1e3,
            "retrieve": (t2 - t0) * 1e3,
            "generate": (t3 - t2) * 1e3,
            "verify": (t4 - t3) * 1e3,
            "answer": (t4 - t2) * 1e3,
            "total": (t4 - t0) * 1e3,
        }
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
            from bot.engine import standalone_question

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

    def _fall_back(
        self, question: str, history: Sequence[Turn], top_k: int | None, language: str, reason: str
    ) -> Answer:
        answer = self.fallback(question, history, top_k)
        answer.notice = prompts.load("llm_notice", language).render(reason=reason)
        return answer


def _reason(e: LLMError) -> str:
    if isinstance(e, LLMTimeout):
        return "timeout"
    text = str(e)
    m = re.search(r"HTTP \d{3}", text)
    if m:
        return m.group(0)
    if "malformed" in text:
        return "malformed reply"
    if "empty" in text:
        return "empty reply"
    return "unreachable"


def _first_line(reply: str) -> str:
    for line in reply.strip().splitlines():
        line = _LABEL.sub("", line).strip().strip("\"'“”*").strip()
        if line:
            return line
    return ""


def _refused(question: str, language: str, standalone: str, mode: str) -> Answer:
    answer = Answer(question, prompts.load("refusal", language).render(), True, [], language, mode=mode)
    answer.standalone_question = standalone
    return answer


def _render(question: str, language: str, verdict: Verdict, passages: list[Passage]) -> Answer:
    """Kept sentences with their markers renumbered; one citation per supporting passage sentence."""
    kept = verdict.kept
    if not kept:
        return _refused(question, language, question, mode="llm")
    numbers: dict[tuple[int, int], int] = {}
    citations: list[Citation] = []
    sentences = []
    for claim in kept:
        marks = []
        for ev in claim.evidence.values():
            key = (ev.passage, ev.start)
            if key not in numbers:
                numbers[key] = len(citations) + 1
                ps = passages[ev.passage]
                citations.append(
                    Citation(
                        n=numbers[key],
                        article_id=ps.article_id,
                        title=ps.meta.get("title"),
                        source=ps.meta.get("source"),
                        date=ps.meta.get("date"),
                        path=ps.meta.get("path"),
                        quote=ps.text[ev.start : ev.end],
                        score=round(ev.score, 4),
                        publisher=ps.meta.get("publisher"),
                        url=ps.meta.get("url"),
                        chunk_id=ps.chunk_id,
                    )
                )
            if f"[{numbers[key]}]" not in marks:
                marks.append(f"[{numbers[key]}]")
        sentences.append(f"{claim.text} {''.join(marks)}{claim.punctuation}")
    return Answer(question, " ".join(sentences), False, citations, language, mode="llm")
