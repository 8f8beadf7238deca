"""The bot's memory file: bounded, expiring, shared safely by threads, and never fatal when unusable."""

from __future__ import annotations

import threading

from bot.answer.types import Answer, Citation, Turn
from bot.discordbot.memory import AnswerCache, Conversations, MemoryFile


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def answer(q: str) -> Answer:
    quote = f"Kutipan untuk {q}."
    c = Citation(1, "a1", "Judul", "Sumber", "2024-10-21", "x.txt", quote, 0.5, "P", None, "a1:0")
    return Answer(q, f"Kutipan untuk {q}. [1]", False, [c], "id", timings_ms={"total": 3.0}, support=0.5)


def test_turns_and_answers_come_back_whole_from_the_file(tmp_path):
    path = tmp_path / "m.sqlite"
    conv = Conversations(3, store=MemoryFile(path))
    conv.record(1, Turn("q1", answer("q1")), [11, 12])
    key = AnswerCache(store=conv.store).put(answer("q1"))
    conv.store.close()

    again = MemoryFile(path)
    reopened = Conversations(3, store=again)
    assert reopened.history(1) == [Turn("q1", answer("q1"))]
    assert reopened.conversation_of(12) == 1 and reopened.conversation_of(13) is None
    assert AnswerCache(store=again).get(key) == answer("q1")


def test_memory_is_bounded_in_turns_conversations_and_answers(tmp_path):
    clock = Clock()
    store = MemoryFile(tmp_path / "m.sqlite", clock)
    conv = Conversations(2, max_conversations=3, store=store)
    for key in range(5):
        for i in range(4):
            clock.now += 1
            conv.record(key, Turn(f"q{key}.{i}", answer("x")), [key * 100 + i])
    assert [t.question for t in conv.history(4)] == ["q4.2", "q4.3"]
    assert [k for k in range(5) if conv.knows(k)] == [2, 3, 4]  # least recently used forgotten first
    assert conv.conversation_of(100) is None and conv.conversation_of(403) == 4
    assert store.read("SELECT COUNT(*) FROM turns") == [(6,)]

    cache = AnswerCache(size=3, store=store)
    keys = [cache.put(answer(f"q{i}")) for i in range(5)]
    assert [cache.get(k) is not None for k in keys] == [False, False, True, True, True]


def test_entries_expire(tmp_path):
    clock = Clock()
    store = MemoryFile(tmp_path / "m.sqlite", clock)
    conv, cache = Conversations(2, store=store, ttl=60), AnswerCache(store=store, ttl=60)
    conv.record(1, Turn("q", answer("q")), [10])
    key = cache.put(answer("q"))
    clock.now += 59
    assert conv.knows(1) and cache.get(key) is not None
    conv.history(1)  # using a conversation keeps it
    clock.now += 59
    assert conv.knows(1) and conv.conversation_of(10) == 1 and cache.get(key) is None
    clock.now += 61
    assert not conv.knows(1) and conv.history(1) == [] and conv.conversation_of(10) is None
    conv.record(2, Turn("q", answer("q")))  # a write sweeps what expired
    assert store.read("SELECT key FROM conversations") == [(2,)]


def test_threads_share_one_memory_without_losing_a_turn(tmp_path):
    store = MemoryFile(tmp_path / "m.sqlite")
    conv, cache = Conversations(50, store=store), AnswerCache(size=10_000, store=store)
    keys: list[str] = []
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(40):
                conv.record(worker, Turn(f"{worker}.{i}", answer("x")), [worker * 1000 + i])
                keys.append(cache.put(answer(f"{worker}.{i}")))
                conv.history(worker)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert all(len(conv.history(w)) == 40 for w in range(8))
    assert len(keys) == 320 and all(cache.get(k) is not None for k in keys)


def test_a_second_process_view_of_the_file_sees_the_writes(tmp_path):
    path = tmp_path / "m.sqlite"
    a, b = Conversations(3, store=MemoryFile(path)), Conversations(3, store=MemoryFile(path))
    a.record(5, Turn("q", answer("q")), [50])
    assert b.conversation_of(50) == 5


def test_a_corrupt_file_falls_back_to_memory(tmp_path, caplog):
    bad = tmp_path / "m.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    store = MemoryFile(bad)
    assert store.path == ":memory:" and "bot memory" in caplog.text
    conv = Conversations(3, store=store)
    conv.record(1, Turn("q", answer("q")))
    assert conv.knows(1)
