"""Marking the answer inside a quoted sentence, and every front end showing the mark."""

from __future__ import annotations

import pytest
from rich.console import Console

from bot.answer.extractive import Support, render
from bot.answer.span import answer_kind, answer_span
from bot.cli.render import render_answer
from bot.discordbot import render as discord_render
from index.types import Passage

ZINOVIEV = (
    "Wakil Menteri Luar Negeri Korea Selatan, Kim Hong-kyun, menyatakan keprihatinan yang serius terkait "
    "pengiriman pasukan Korea Utara tersebut dan mendesak penarikan segera dalam pertemuan dengan duta besar "
    "Rusia untuk Korea Selatan, Georgiy Zinoviev."
)


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        ("Siapa duta besar Rusia untuk Korea Selatan?", ZINOVIEV, "Georgiy Zinoviev"),
        (
            "Berapa kontainer amunisi yang dikirim Korea Utara?",
            "Sejak Agustus lalu, Korea Utara juga dilaporkan telah mengirim lebih dari 13.000 kontainer "
            "berisi amunisi artileri.",
            "13.000 kontainer",
        ),
        (
            "Kapan Korea Utara mengirim pasukan khususnya ke Rusia?",
            "Intelijen Korea Selatan menyebutkan bahwa antara 8 hingga 13 Oktober, Korea Utara mengirim "
            "pasukan khususnya ke Rusia.",
            "antara 8 hingga 13 Oktober",
        ),
        (
            "Siapa nama Ketua Umum Masyarakat Transportasi Indonesia?",
            "Hal itu dikatakan Ketua Umum Masyarakat Transportasi Indonesia Bambang Susantono di Jakarta.",
            "Bambang Susantono",
        ),
        (
            "Berapa denda maksimal yang mengancam Sigit Yugoharto?",
            "Dia terancam hukuman maksimal penjara seumur hidup dan denda maksimal Rp 1 miliar.",
            "Rp 1 miliar",
        ),
    ],
)
def test_the_phrase_of_the_asked_kind_is_marked(question: str, sentence: str, expected: str) -> None:
    span = answer_span(question, sentence)
    assert span is not None
    assert sentence[span[0] : span[1]] == expected


def test_names_the_question_already_gives_are_not_the_answer() -> None:
    sentence = "Presiden Korea Selatan Yoon Suk Yeol berbicara dengan Kepala NATO Mark Rutte."
    span = answer_span("Siapa yang diajak bicara Yoon Suk Yeol?", sentence)
    assert span is not None and sentence[span[0] : span[1]] == "Kepala NATO Mark Rutte"
    assert answer_span("Siapa Yoon Suk Yeol?", "Yoon Suk Yeol berbicara.") is None


def test_questions_answered_by_the_whole_sentence_get_no_mark() -> None:
    assert answer_kind("Mengapa Korea Selatan menolak memasok senjata?") is None
    assert answer_span("Why does South Korea refuse?", "Hal ini disebabkan kebijakan domestik.") is None
    assert answer_kind("Berapakah usia kota Padang pada tanggal 7 Agustus 2005?") == "number"


def _support(text: str, start: int, end: int, index: int, score: float) -> Support:
    passage = Passage("a:0", "a", text, {"title": "T", "sentences": []})
    return Support(passage, 0, start, end, index, score)


def test_the_mark_reaches_json_and_the_terminal() -> None:
    intro = "Pertemuan itu berlangsung di Seoul."
    text = f"{intro} {ZINOVIEV}"
    first = _support(text, 0, len(intro), 0, 1.0)
    second = _support(text, len(intro) + 1, len(text), 1, 0.9)
    answer = render("Siapa duta besar Rusia untuk Korea Selatan?", "id", [first, second])
    (citation,) = answer.citations  # adjacent sentences: one quote
    a, b = citation.answer_span
    assert citation.quote[a:b] == "Georgiy Zinoviev"
    assert answer.to_json()["citations"][0]["answer_span"] == (a, b)
    ((start, end),) = answer.marked_spans()
    assert answer.answer[start:end] == "Georgiy Zinoviev"
    console = Console(force_terminal=True, color_system="standard", width=200, record=True)
    console.print(render_answer(answer))
    styled = console.export_text(styles=True)
    assert "\x1b[1mGeorgiy Zinoviev\x1b[0m" in styled  # bold in the answer text
    assert "\x1b[1;3mGeorgiy Zinoviev" in styled  # bold italic in the source's quote


def test_the_mark_is_bold_in_discord() -> None:
    text = f"Pertemuan itu berlangsung di Seoul. {ZINOVIEV}"
    passage = Passage("a:0", "a", text, {"title": "T", "sentences": []})
    best = Support(passage, 0, len("Pertemuan itu berlangsung di Seoul. "), len(text), 1, 1.0)
    answer = render("Siapa duta besar Rusia untuk Korea Selatan?", "id", [best])
    (message,) = discord_render.render_answer(answer)
    assert "Korea Selatan, **Georgiy Zinoviev**." in message.content
    assert message.content.count("**") == 2
