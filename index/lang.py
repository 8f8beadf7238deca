"""Tell Indonesian from English questions: for fusion weights and the language of the answer's frame."""

from __future__ import annotations

import re

_ID = frozenset(
    """
    apa apakah siapa kapan dimana di mana bagaimana mengapa kenapa berapa yang dan dengan untuk dari ke
    ini itu tersebut adalah tidak akan sudah telah oleh pada dalam juga atau saja bisa ingin menurut
    kah nya para sebagai karena bahwa ia dia mereka kami kita apakah manakah bagaimanakah
    """.split()
)
_EN = frozenset(
    """
    what who whom when where which why how does did do is are was were the a an of to in on for and
    with from about that this it he she they his her their expect say said will would can could has have
    """.split()
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def detect_language(text: str, default: str = "id") -> str:
    """'id' or 'en', by counting function words; ties go to `default`."""
    words = [w.lower() for w in _WORD.findall(text)]
    id_score = (
        sum(w in _ID for w in words)
        + sum(w.endswith("nya") or w.startswith(("meng", "memb", "di")) for w in words) * 0.3
    )
    en_score = sum(w in _EN for w in words)
    if en_score > id_score:
        return "en"
    if id_score > en_score:
        return "id"
    return default
