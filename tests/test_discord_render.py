"""Discord rendering as pure functions: limits, splitting, links, sources (property-style and tables)."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.answer.types import Answer, Citation
from bot.discordbot.render import (
    EMBED_DESCRIPTION_LIMIT,
    EMBED_FIELDS_LIMIT,
    EMBED_TITLE_LIMIT,
    EMBED_TOTAL_LIMIT,
    EMBEDS_PER_MESSAGE,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FOOTER_LIMIT,
    MESSAGE_LIMIT,
    THREAD_NAME_LIMIT,
    answer_notes,
    clip,
    defuse,
    language_of,
    protected_spans,
    render_answer,
    render_sources_full,
    render_stats,
    safe_url,
    split_text,
    thread_name,
    wrap_links,
)

# --- strategies ----------------------------------------------------------------------------------------

WORDS = st.sampled_from(
    [
        "Pemerintah",
        "Korea",
        "Selatan",
        "memanggil",
        "duta",
        "besar",
        "Rusia",
        "pada",
        "Senin",
        "(21/10/2024)",
        "1.500",
        "prajurit",
        "“kutipan”",
        "Rp10",
        "juta",
        "é",
        "🇮🇩",
        "dan",
        "the",
        "minister",
        "said",
    ]
)
URLS = st.builds(
    lambda host, path: f"https://{host}.example.com/{path}",
    st.text("abcdefghij", min_size=1, max_size=12),
    st.text("abcdef0123456789-_/?=&.%", min_size=0, max_size=60),
)
MARKERS = st.integers(1, 40).map(lambda n: f"[{n}]")
CODE = st.text("abc xyz=+()", min_size=1, max_size=30).map(lambda s: f"`{s}`")
SEPARATORS = st.sampled_from([" ", " ", " ", "  ", ". ", "! ", "? ", "\n", "\n\n", " \n\n ", ".\n", "\t"])
TOKENS = st.one_of(WORDS, WORDS, WORDS, URLS, MARKERS, MARKERS, CODE, st.text(min_size=1, max_size=40))


@st.composite
def texts(draw, max_tokens: int = 400) -> str:
    """News-like text with markers, links and code spans in it (and some arbitrary unicode)."""
    tokens = draw(st.lists(TOKENS, max_size=max_tokens))
    out = []
    for tok in tokens:
        out += [tok, draw(SEPARATORS)]
    return "".join(out)


def cut_points(pieces: list[str]) -> list[int]:
    points, pos = [], 0
    for p in pieces[:-1]:
        pos += len(p)
        points.append(pos)
    return points


def squeeze(text: str) -> str:
    """Text without any whitespace: what must survive splitting and stripping."""
    return "".join(text.split())


# --- split_text ----------------------------------------------------------------------------------------


@pytest.mark.slow
@given(texts(), st.integers(10, 400))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example("Kalimat pertama. [1] Kalimat kedua. [2]", 20)
def test_split_text_stays_within_limit_loses_nothing_and_never_cuts_a_protected_span(text, limit):
    pieces = split_text(text, limit)
    assert "".join(pieces) == text
    assert all(0 < len(p) <= limit for p in pieces)
    for cut in cut_points(pieces):
        for start, end in protected_spans(text):
            if end - start <= limit:  # only a span longer than a whole piece may be cut
                assert not start < cut < end, (text[start:end], cut)


def unbreakable_run(text: str, cut: int) -> int:
    """Length of the unbreakable run a marker at `cut` belongs to (from the last allowed cut to its end)."""
    spans = protected_spans(text)
    allowed = [
        m.end()
        for m in re.finditer(r"\s+", text[:cut])
        if m.end() < cut and not any(s < m.end() < e for s, e in spans)
    ]
    end = next(e for s, e in spans if s <= cut < e)
    return end - max(allowed, default=0)


@given(texts(), st.integers(10, 400))
@settings(max_examples=300, deadline=None)
@example("https://aaaaaaaaaaaa.example.com/00000000000000 [1] ", 50)
def test_a_marker_stays_with_what_it_cites(text, limit):
    pieces = split_text(text, limit)
    for cut, before, piece in zip(cut_points(pieces), pieces, pieces[1:], strict=False):
        if re.match(r"[ \t]*\[\d+\]", piece):
            # only a marker that starts a line, or one glued to something too long for a piece, may lead
            assert before.endswith("\n") or unbreakable_run(text, cut) > limit, (before, piece)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("Satu dua.\n\nTiga empat lima.", 20, ["Satu dua.\n\n", "Tiga empat lima."]),
        (
            "Kalimat satu. [1] Kalimat dua panjang. [2]",
            30,
            ["Kalimat satu. [1] ", "Kalimat dua panjang. [2]"],
        ),
        ("aaa bbb ccc ddd", 8, ["aaa bbb ", "ccc ddd"]),
        (
            "lihat https://example.com/sangat/panjang sekarang",
            36,
            ["lihat ", "https://example.com/sangat/panjang ", "sekarang"],
        ),
        ("kode `a b c d e f` selesai", 16, ["kode ", "`a b c d e f` ", "selesai"]),
        ("x" * 25, 10, ["x" * 10, "x" * 10, "x" * 5]),
        ("", 10, []),
        ("pendek", 10, ["pendek"]),
    ],
)
def test_split_text_cases(text, limit, expected):
    pieces = split_text(text, limit)
    assert "".join(pieces) == text
    if expected is not None:
        assert pieces == expected


def test_split_text_keeps_a_link_whole_and_cuts_only_a_link_longer_than_the_limit():
    url = "https://example.com/" + "a" * 40
    assert split_text(f"lihat {url} sekarang", 70) == [f"lihat {url} ", "sekarang"]
    assert split_text(f"lihat {url} x", 30) == ["lihat ", url[:30], url[30:], " x"]


def test_split_prefers_paragraphs_then_sentences():
    para = "Kalimat pertama di sini. Kalimat kedua di sini. Kalimat ketiga di sini."
    text = f"{para}\n\n{para}"
    assert split_text(text, len(para) + 10) == [f"{para}\n\n", para]
    assert split_text(para, 55) == [
        "Kalimat pertama di sini. Kalimat kedua di sini. ",
        "Kalimat ketiga di sini.",
    ]


def test_split_text_rejects_a_non_positive_limit():
    with pytest.raises(ValueError):
        split_text("abc", 0)


# --- wrap_links and clip -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lihat https://a.id/x.", "lihat <https://a.id/x>."),
        ("(https://a.id/x), lalu", "(<https://a.id/x>), lalu"),
        ("sudah <https://a.id/x>", "sudah <https://a.id/x>"),
        ("[tautan](https://a.id/x)", "[tautan](<https://a.id/x>)"),
        ("`https://a.id/x` tetap", "`https://a.id/x` tetap"),
        ("tanpa tautan", "tanpa tautan"),
    ],
)
def test_wrap_links(text, expected):
    assert wrap_links(text) == expected


@pytest.mark.slow
@given(texts(max_tokens=60))
@settings(max_examples=200, deadline=None)
def test_wrap_links_is_idempotent_and_only_adds_angle_brackets(text):
    wrapped = wrap_links(text)
    assert wrap_links(wrapped) == wrapped
    assert wrapped.replace("<", "").replace(">", "") == text.replace("<", "").replace(">", "")
    outside_code = re.sub(r"```.*?```|`[^`\n]+`", "", wrapped, flags=re.S)
    assert not re.search(r"(?<![<\w])https?://", outside_code)


@given(texts(max_tokens=80), st.integers(2, 300))
@settings(max_examples=200, deadline=None)
def test_clip_fits_and_keeps_a_prefix(text, limit):
    clipped, cut = clip(text, limit)
    assert len(clipped) <= limit
    assert cut == (len(text) > limit)
    if cut:
        assert clipped.endswith("…") and text.startswith(clipped[:-1])
    else:
        assert clipped == text


# --- answers -------------------------------------------------------------------------------------------

OPTIONAL_TEXT = st.one_of(st.none(), st.just(""), st.text(max_size=400))


@st.composite
def citations(draw, n: int) -> Citation:
    return Citation(
        n=n,
        article_id=draw(st.text("abcdef0123456789", min_size=1, max_size=16)),
        title=draw(OPTIONAL_TEXT),
        source=draw(OPTIONAL_TEXT),
        date=draw(st.one_of(st.none(), st.just("2024-10-21"))),
        path=draw(st.one_of(st.none(), st.just("seeds/000_e425e8bd6ae908eb.txt"))),
        quote=draw(texts(max_tokens=draw(st.sampled_from([5, 40, 400])))),
        score=0.5,
        publisher=draw(OPTIONAL_TEXT),
        url=draw(
            st.one_of(
                st.none(),
                URLS,
                st.text("abc/", min_size=900, max_size=1000).map(lambda s: "https://x.id/" + s),
            )
        ),
    )


@st.composite
def answers(draw) -> Answer:
    n = draw(st.sampled_from([0, 1, 3, 5, 26, 40]))
    cites = [draw(citations(i + 1)) for i in range(n)]
    body = draw(st.one_of(texts(max_tokens=600), st.just("Menurut artikel yang diindeks:\n")))
    body += "\n".join(f"{c.quote} [{c.n}]" for c in cites[:5])
    return Answer(
        "pertanyaan?",
        body,
        refused=draw(st.booleans()) and not cites,
        citations=cites,
        language=draw(st.sampled_from(["id", "en"])),
        notice=draw(st.one_of(st.none(), st.sampled_from(NOTICES))),
        dropped_sentences=draw(st.sampled_from([0, 0, 1, 3])),
    )


NOTICES = [
    "Model bahasa tidak memberi jawaban yang dapat dipakai (timeout), jadi ini jawaban ekstraktif.",
    "The language model did not give a usable answer (HTTP 500), so this is the extractive answer.",
]


def assert_embed_within_limits(embed) -> None:
    assert len(embed.title or "") <= EMBED_TITLE_LIMIT
    assert len(embed.description or "") <= EMBED_DESCRIPTION_LIMIT
    assert len(embed.fields) <= EMBED_FIELDS_LIMIT
    for f in embed.fields:
        assert 0 < len(f.name) <= FIELD_NAME_LIMIT
        assert 0 < len(f.value) <= FIELD_VALUE_LIMIT
    assert len(embed.footer.text or "") <= FOOTER_LIMIT
    assert len(embed) <= EMBED_TOTAL_LIMIT


def many_answers(examples: int):
    """Run a test on `examples` generated answers (seconds: the slow tier)."""
    checks = [HealthCheck.too_slow, HealthCheck.data_too_large]

    def wrap(test):
        return pytest.mark.slow(
            given(answers())(
                settings(max_examples=examples, deadline=None, suppress_health_check=checks)(test)
            )
        )

    return wrap


@many_answers(150)
def test_every_rendered_message_is_within_discords_limits_and_loses_no_answer_text(answer):
    messages = render_answer(answer)
    assert messages
    for m in messages:
        assert len(m.content) <= MESSAGE_LIMIT
        assert m.content or m.embeds
        assert len(m.embeds) <= EMBEDS_PER_MESSAGE
        assert sum(len(e) for e in m.embeds) <= EMBED_TOTAL_LIMIT
        for e in m.embeds:
            assert_embed_within_limits(e)
    notice, removed = answer_notes(answer)
    assert bool(notice) == bool(answer.notice) and bool(removed) == bool(answer.dropped_sentences)
    if answer.answer.strip():
        expected = " ".join(p for p in (notice, wrap_links(defuse(answer.answer)), removed) if p)
        assert squeeze("".join(m.content for m in messages)) == squeeze(expected)
    # sources only with real citations, on the last message; the button exactly when something did not fit
    assert all(not m.embeds and not m.sources_button for m in messages[:-1])
    if answer.refused or not answer.citations:
        assert not messages[-1].embeds and not messages[-1].sources_button
        return
    (embed,) = messages[-1].embeds
    shown_in_full = len(embed.fields) == len(answer.citations) and all(
        " ".join(defuse(c.quote).split()) in f.value
        and (not safe_url(c.url) or f"<{' '.join((c.url or '').split())}>" in f.value)
        for c, f in zip(answer.citations, embed.fields, strict=False)
    )
    assert messages[-1].sources_button == (not shown_in_full)


@many_answers(100)
def test_all_sources_view_is_within_limits_and_holds_every_quote_in_full(answer):
    pages = render_sources_full(answer)
    if not answer.citations:
        assert pages == []
        return
    descriptions = ""
    for page in pages:
        assert not page.content and 0 < len(page.embeds) <= EMBEDS_PER_MESSAGE
        assert sum(len(e) for e in page.embeds) <= EMBED_TOTAL_LIMIT
        for e in page.embeds:
            assert_embed_within_limits(e)
            descriptions += e.description
    for c in answer.citations:
        assert squeeze(c.quote) in squeeze(descriptions.replace("\u200b", ""))  # what readers see
        assert f"[{c.n}]" in descriptions


CITATION = Citation(
    n=1,
    article_id="e425e8bd6ae908eb",
    title="Korsel panggil dubes Rusia",
    source="Channelnewsasia.com",
    date="2024-10-21",
    path="seeds/000_e425e8bd6ae908eb.txt",
    quote="Kementerian Luar Negeri Korsel mendesak agar pasukan Korea Utara segera ditarik.",
    score=0.8,
    publisher="INDOZONE.ID",
    url="https://www.indozone.id/news/korsel",
)


def test_a_typical_answer_renders_as_text_then_a_sources_embed():
    answer = Answer(
        "Apa desakan Korsel?",
        f"Menurut artikel yang diindeks:\n{CITATION.quote} [1]",
        refused=False,
        citations=[CITATION],
        language="id",
    )
    (message,) = render_answer(answer)
    assert message.content == f"Menurut artikel yang diindeks:\n{CITATION.quote} [1]"
    assert not message.sources_button
    (embed,) = message.embeds
    assert embed.to_dict()["title"] == "Sumber"
    assert [(f.name, f.value) for f in embed.fields] == [
        (
            "[1] Korsel panggil dubes Rusia",
            "INDOZONE.ID (via Channelnewsasia.com) · 2024-10-21\n<https://www.indozone.id/news/korsel>\n"
            f"> {CITATION.quote}",
        )
    ]


def test_a_refusal_is_the_engines_text_alone_in_the_questions_language():
    refusal = "I couldn't find this in the indexed articles, so I won't guess."
    messages = render_answer(Answer("Who won?", refusal, refused=True, language="en"))
    assert [(m.content, m.embeds, m.sources_button) for m in messages] == [(refusal, [], False)]


def test_a_fallback_answer_shows_the_llm_notice_above_the_text():
    notice = "Model bahasa tidak memberi jawaban yang dapat dipakai (HTTP 500), jadi ini jawaban ekstraktif."
    body = f"Menurut artikel yang diindeks:\n{CITATION.quote} [1]"
    answer = Answer("Apa desakan Korsel?", body, False, [CITATION], "id", notice=notice)
    (message,) = render_answer(answer)
    assert message.content == f"⚠️ *{notice}*\n\n{body}"
    assert len(message.embeds) == 1  # the sources still come with it


def test_a_fallback_refusal_keeps_its_notice():
    notice = "The language model did not give a usable answer (timeout), so this is the extractive answer."
    refusal = "I couldn't find this in the indexed articles, so I won't guess."
    (message,) = render_answer(Answer("Who won?", refusal, True, language="en", notice=notice))
    assert message.content == f"⚠️ *{notice}*\n\n{refusal}" and not message.embeds


@pytest.mark.parametrize(
    ("language", "dropped", "line"),
    [
        ("en", 1, "*1 unsupported sentence(s) removed by verification.*"),
        ("id", 2, "*2 kalimat tanpa dukungan sumber dihapus oleh verifikasi.*"),
    ],
)
def test_sentences_removed_by_verification_are_counted_below_the_text(language, dropped, line):
    body = "Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [1]."
    answer = Answer("q", body, False, [CITATION], language, mode="llm", dropped_sentences=dropped)
    (message,) = render_answer(answer)
    assert message.content == f"{body}\n\n{line}" and message.embeds


def test_an_answer_verification_emptied_is_the_refusal_and_the_count():
    refusal = "Maaf, informasinya tidak ada dalam artikel."
    answer = Answer("q", refusal, True, [], "id", mode="llm", checked_sentences=1, dropped_sentences=1)
    (message,) = render_answer(answer)
    assert message.content == f"{refusal}\n\n*1 kalimat tanpa dukungan sumber dihapus oleh verifikasi.*"


def test_a_long_quote_is_shortened_in_the_embed_and_offered_in_full_behind_the_button():
    long_quote = " ".join(["Kalimat yang sangat panjang tentang perang."] * 60)
    answer = Answer("q", "Jawaban [1]", False, [Citation(**{**CITATION.__dict__, "quote": long_quote})], "en")
    (message,) = render_answer(answer)
    assert message.sources_button
    (embed,) = message.embeds
    assert embed.fields[0].value.endswith("…")
    assert embed.footer.text == "Some quotes are shortened: press “All sources” for the full text."
    (page,) = render_sources_full(answer)
    assert long_quote in page.embeds[0].description


def test_more_citations_than_fields_are_counted_in_the_footer():
    cites = [Citation(**{**CITATION.__dict__, "n": i}) for i in range(1, 31)]
    (message,) = render_answer(Answer("q", "Jawaban", False, cites, "id"))
    (embed,) = message.embeds
    assert message.sources_button
    shown = len(embed.fields)
    assert 0 < shown <= EMBED_FIELDS_LIMIT
    assert embed.footer.text.startswith(f"{30 - shown} sumber lagi")


def test_a_long_answer_is_split_into_several_messages_with_the_sources_on_the_last():
    sentence = "Pemerintah Korea Selatan memanggil duta besar Rusia pada Senin. [1] "
    answer = Answer("q", sentence * 80, False, [CITATION], "id")
    messages = render_answer(answer)
    assert len(messages) == 3
    assert [bool(m.embeds) for m in messages] == [False, False, True]
    assert all(m.content.endswith("[1]") for m in messages)


def test_thread_name_stats_and_locale():
    assert thread_name("  Apa   kata\nKorsel? ") == "Apa kata Korsel?"
    assert len(thread_name("x " * 200)) <= THREAD_NAME_LIMIT
    assert thread_name("   ") == "Kabar"
    assert (language_of("id"), language_of("en-US"), language_of(None)) == ("id", "en", "en")
    embed = render_stats({"articles": 3, "chunks": 12, "embed_model": "m", "last_indexed": None}, "en")
    assert [(f.name, f.value) for f in embed.fields] == [
        ("Articles", "3"),
        ("Chunks", "12"),
        ("Embedding model", "m"),
        ("Last indexed", "—"),
    ]
