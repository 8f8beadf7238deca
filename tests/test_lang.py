"""Question language decides the language of the answer's frame."""

from __future__ import annotations

import pytest

from index.lang import detect_language


@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("What does Cheong Seong-chang expect Kim Jong Un to gain?", "en"),
        ("Who won the 2022 World Cup?", "en"),
        ("and what did Peskov say about it?", "en"),
        ("Apa yang ingin diperoleh Kim Jong Un dari Rusia?", "id"),
        ("Siapa duta besar Rusia untuk Korea Selatan?", "id"),
        ("Berapa tentara yang dikirim?", "id"),
        ("Kapan pertemuan itu terjadi?", "id"),
    ],
)
def test_detect_language(question: str, language: str) -> None:
    assert detect_language(question) == language


def test_tie_goes_to_default() -> None:
    assert detect_language("Zinoviev?", default="en") == "en"
    assert detect_language("Zinoviev?") == "id"
