"""The one answer engine every front end calls: question (+ history) -> Answer with citations.

A question's way: resolve a follow-up (the LLM condenses it, or the heuristic does), retrieve once, then
hand the same passages to the LLM answerer or the extractive one. When the LLM gives nothing usable the
engine answers extractively from those passages, with a notice saying why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import prompts
from bot.answer.extractive import ExtractiveAnswerer
from bot.answer.followup import standalone_question
from bot.answer.generate import LLMAnswerer, OnProgress
from bot.answer.llm import LLMError, OnToken
from bot.answer.types import Answer, Turn
from index.errors import KabarError
from index.lang import detect_language
from index.search import Searcher

log = logging.getLogger(__name__)


class LLMNotConfigured(KabarError):
    """An LLM answer was asked for but KABAR_LLM is none."""


class Engine:
    """Retrieves passages and builds a cited answer, or refuses when the articles do not support one."""

    def __init__(
        self,
        searcher: Searcher,
        extractive: ExtractiveAnswerer,
        llm: LLMAnswerer | None = None,
        *,
        top_k: int = 5,
    ):
        self.searcher = searcher
        self.extractive = extractive
        self.llm = llm
        self.top_k = top_k

    def uses_llm(self, use_llm: bool | None = None) -> bool:
        """Whether an answer asked with `use_llm` is generated: None means "when an LLM is configured"."""
        return self.llm is not None if use_llm is None else use_llm

    def answer(
        self,
        question: str,
        history: Sequence[Turn] = (),
        top_k: int | None = None,
        use_llm: bool | None = None,
        on_token: OnToken | None = None,
        on_progress: OnProgress | None = None,
    ) -> Answer:
        """Answer one question; `history` holds the earlier turns of the same conversation.

        With an LLM (the default when one is configured; `use_llm` overrides) the answer is generated and
        its citations verified, streamed to `on_token` as it comes and to `on_progress` as the answer
        verified so far; otherwise it is extractive.
        """
        wanted = self.uses_llm(use_llm)
        if wanted and self.llm is None:
            raise LLMNotConfigured("no LLM is configured: set KABAR_LLM=openai or KABAR_LLM=llamacpp")
        llm = self.llm if wanted else None
        t0 = time.perf_counter()
        question = question.strip()
        language = detect_language(question, default=history[-1].answer.language if history else "id")
        failure: LLMError | None = None
        standalone = standalone_question(question, history)
        if llm is not None and llm.needs_condense(question, history):
            try:
                standalone = llm.condense(question, history, language)
            except LLMError as e:
                failure = e
        t1 = time.perf_counter()
        k = top_k or self.top_k
        result = self.searcher.search(standalone, self.extractive.depth(standalone, k))
        t2 = time.perf_counter()
        answer: Answer | None = None
        if llm is not None and failure is None:
            try:
                answer = llm.answer(question, standalone, language, result, k, on_token, on_progress)
                answer.retrieved = list(dict.fromkeys(p.chunk_id for p in result.passages[:k]))
            except LLMError as e:
                failure = e
        if answer is None:
            # a resolved follow-up asks for something new: what the previous answer quoted comes last
            previous = history[-1].answer if history and standalone != question else None
            answer = self.extractive.answer(question, standalone, language, result, k, previous)
        if failure is not None:
            log.warning("LLM answer failed, answering extractively: %s", failure)
            answer.notice = prompts.load("llm_notice", language).render(reason=failure.reason)
            # the model's sentences that verification removed, so `kabar eval --llm` counts them
            answer.checked_sentences = answer.dropped_sentences = failure.checked
        t3 = time.perf_counter()
        answer.standalone_question = standalone
        timings = {"retrieve": (t2 - t0) * 1e3, "answer": (t3 - t2) * 1e3, "total": (t3 - t0) * 1e3}
        if llm is not None:
            timings["condense"] = (t1 - t0) * 1e3
        answer.timings_ms = {**answer.timings_ms, **timings}
        return answer
