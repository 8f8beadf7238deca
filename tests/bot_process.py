"""One life of the Discord bot in its own process, for the restart test (tests/test_discord_restart.py).

`python tests/bot_process.py HOME ask|follow` builds the bot on HOME with Discord faked (the spec_set fakes
of test_discord_cogs) and an engine that records the history it is given, handles one step of a
conversation, prints what happened as JSON and exits at once (os._exit: no clean shutdown, as a crash).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import discord  # noqa: E402
from test_discord_cogs import (  # noqa: E402
    CITATION,
    FakeEngine,
    fake,
    interaction,
    member,
    mention_of_me,
    message,
    start_bot,
    thread,
)

from bot.answer.types import Answer, Citation  # noqa: E402
from bot.discordbot.delivery import SourcesButton  # noqa: E402

THREAD = 7007
LONG_QUOTE = " ".join(["Pasukan khusus Korea Utara sudah berada di Rusia untuk pelatihan."] * 40)


def long_answer(question: str) -> Answer:
    """An answer too long for one embed, so it carries the "All sources" button."""
    c = Citation(**{**CITATION.__dict__, "quote": LONG_QUOTE})
    return Answer(question, f"Menurut artikel yang diindeks:\n{LONG_QUOTE} [1]", False, [c], "id")


async def ask(home: Path) -> dict:
    """A mention opens a thread and is answered there."""
    bot = await start_bot(home, long_answer("Apa desakan Korsel?"))
    msg = message("<@999> Apa desakan Korsel?", mentions=(mention_of_me(),))
    msg.create_thread.return_value = thread(THREAD)
    await bot.get_cog("Mentions").on_message(msg)
    sent = msg.create_thread.return_value.send.call_args_list
    button = next(c.kwargs["view"].children[0] for c in sent if "view" in c.kwargs)
    return {"key": button.key, "history": [], "answered": len(sent)}


async def follow(home: Path, key: str) -> dict:
    """A follow-up in the thread, then a press of the first life's "All sources" button."""
    engine = FakeEngine(long_answer("Kapan?"))
    bot = await start_bot(home)
    bot.kabar.engine = engine  # type: ignore[assignment]
    t = thread(THREAD, owner_id=12345)  # not the bot's own: only the memory says it is a conversation
    await bot.get_cog("Mentions").on_message(message("Kapan itu terjadi?", channel=t))
    press = interaction(bot, user=member(2))
    await SourcesButton(key).callback(press)
    (shown,) = press.response.send_message.call_args_list
    embeds = shown.kwargs.get("embeds") or []
    return {
        "history": [[turn.question for turn in h] for _, h in engine.calls],
        "sources": "".join(e.description or "" for e in embeds),
        "answered": t.send.await_count,
    }


def main() -> None:
    home, step = Path(sys.argv[1]), sys.argv[2]
    result = asyncio.run(ask(home) if step == "ask" else follow(home, sys.argv[3]))
    print(json.dumps(result), flush=True)
    os._exit(0)  # no close(): the next life must not depend on a clean shutdown


if __name__ == "__main__":
    _ = (discord, fake)
    main()
