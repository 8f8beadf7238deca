"""Drive many /ask interactions through the cogs at once and account for each (tests and bench/load_bench.py).

Discord is the spec_set fakes of test_discord_cogs; what each interaction got back is timed: the
acknowledgement (defer, or an ephemeral refusal such as the cooldown's "wait N seconds"), and the answer.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_discord_cogs import interaction, invoke, member, text_channel  # noqa: E402

from bot.discordbot.client import KabarBot  # noqa: E402


@dataclass
class Outcome:
    """What one interaction got: when it was acknowledged, answered, or told to wait."""

    user: int
    channel: int
    question: str
    arrived: float = 0.0
    acked: float | None = None
    answers: list[float] = field(default_factory=list)  # times of public answer messages
    contents: list[str] = field(default_factory=list)  # and what they said
    refusals: list[str] = field(default_factory=list)  # ephemeral texts (cooldown, errors)
    error: str | None = None

    @property
    def answered(self) -> bool:
        return bool(self.answers)


def timed_interaction(bot: KabarBot, outcome: Outcome, channels: dict[int, Any]) -> Any:
    """An /ask interaction whose replies are stamped on `outcome` as they happen."""
    inter = interaction(bot, user=member(outcome.user), channel=channels[outcome.channel])
    defer, send_message, followup = inter.response.defer, inter.response.send_message, inter.followup.send
    defer_effect, send_effect = defer.side_effect, send_message.side_effect
    follow_effect = followup.side_effect

    def on_defer(*a: Any, **k: Any) -> Any:
        outcome.acked = outcome.acked or time.perf_counter()
        return defer_effect(*a, **k)

    def on_send(*a: Any, **k: Any) -> Any:
        outcome.acked = outcome.acked or time.perf_counter()
        outcome.refusals.append(k.get("content") or (a[0] if a else ""))
        return send_effect(*a, **k)

    def on_followup(*a: Any, **k: Any) -> Any:
        now = time.perf_counter()
        if k.get("ephemeral"):
            outcome.refusals.append(k.get("content") or (a[0] if a else ""))
        else:
            outcome.answers.append(now)
            outcome.contents.append(str(k.get("content")))
        return follow_effect(*a, **k)

    defer.side_effect, send_message.side_effect, followup.side_effect = on_defer, on_send, on_followup
    return inter


async def ask_all(
    bot: KabarBot, questions: list[str], users: int, channels: int, rate: float
) -> list[Outcome]:
    """Question i from user i % users in channel i % channels, arriving at i / rate seconds; all outcomes."""
    chans = {c: text_channel(100 + c) for c in range(channels)}
    outcomes = [Outcome(1000 + i % users, i % channels, q) for i, q in enumerate(questions)]
    t0 = time.perf_counter()

    async def one(i: int, o: Outcome) -> None:
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()) if rate else 0)
        o.arrived = time.perf_counter()
        try:
            await invoke(bot, "ask", timed_interaction(bot, o, chans), question=o.question)
        except Exception as e:  # noqa: BLE001 - counted as lost below
            o.error = f"{type(e).__name__}: {e}"

    await asyncio.gather(*(one(i, o) for i, o in enumerate(outcomes)))
    return outcomes


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values, in the same unit; 0 for none."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, max(0, round(q * 100) - 1))]


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    """Counts and latencies (ms): acknowledged, answered, told to wait, lost, answered twice."""
    ack = [1000 * (o.acked - o.arrived) for o in outcomes if o.acked is not None]
    answer = [1000 * (o.answers[0] - o.arrived) for o in outcomes if o.answers]
    waits = [o for o in outcomes if not o.answered and o.refusals]
    return {
        "questions": len(outcomes),
        "users": len({o.user for o in outcomes}),
        "channels": len({o.channel for o in outcomes}),
        "acknowledged": len(ack),
        "answered": sum(o.answered for o in outcomes),
        "told_to_wait": len(waits),
        "lost": sum(not o.answered and not o.refusals for o in outcomes),
        # one answer may take several messages, never the same message twice
        "answered_twice": sum(len(set(o.contents)) != len(o.contents) for o in outcomes),
        "both_answered_and_refused": sum(o.answered and bool(o.refusals) for o in outcomes),
        "errors": [o.error for o in outcomes if o.error],
        "ack_ms": {"p50": pct(ack, 0.5), "p95": pct(ack, 0.95), "max": max(ack, default=0.0)},
        "answer_ms": {"p50": pct(answer, 0.5), "p95": pct(answer, 0.95), "max": max(answer, default=0.0)},
    }
