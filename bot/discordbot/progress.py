"""The deferred /ask reply edited with the LLM answer verified so far, within Discord's rate limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.answer.types import Answer
from bot.discordbot.render import MESSAGE_LIMIT

Edit = Callable[[str], Awaitable[Any]]


def preview(answer: Answer) -> str:
    """What a progress edit shows: the sentences verified so far, and that more may come."""
    text = answer.answer
    limit = MESSAGE_LIMIT - 2
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"{text} …"


class ProgressEdits:
    """Offered answers (from the worker thread) become edits: at most one per `interval` seconds, the
    latest offered text winning, none after `stop()`. Discord allows about five edits per 5 s per
    message; one per 1.5 s leaves room for the final answer."""

    def __init__(
        self,
        edit: Edit,
        loop: asyncio.AbstractEventLoop,
        interval: float = 1.5,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.edit = edit
        self.loop = loop
        self.interval = interval
        self.clock = clock
        self.edits = 0  # edits made
        self._latest: str | None = None
        self._shown: str | None = None
        self._wake = asyncio.Event()
        self._editing = False
        self._task = loop.create_task(self._run())

    def offer(self, answer: Answer) -> None:
        """The answer verified so far; callable from any thread."""
        text = preview(answer)
        self.loop.call_soon_threadsafe(self._take, text)

    def _take(self, text: str) -> None:
        self._latest = text
        self._wake.set()

    async def _run(self) -> None:
        last = -float("inf")
        while True:
            await self._wake.wait()
            await asyncio.sleep(max(0.0, last + self.interval - self.clock()))
            self._wake.clear()
            text = self._latest
            if text is None or text == self._shown:
                continue
            last = self.clock()
            self._shown = text
            self.edits += 1
            self._editing = True
            try:
                await self.edit(text)
            finally:
                self._editing = False

    async def stop(self) -> None:
        """No more edits (the final answer follows); an edit already under way is let finish first."""
        while self._editing:
            await asyncio.sleep(0.01)
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
