"""Chunking: exact spans, overlap, paragraph preference and the hard token limit."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.chunk import chunk_article, context_line
from index.clean import clean_article
from index.sentences import split_sentences
from index.types import Article, Chunk

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_e425e8bd6ae908eb.txt"


def words(text: str) -> int:
    """The test token counter: whitespace words x 1.5, rounded up."""
    return math.ceil(len(text.split()) * 1.5)


def chars(text: str) -> int:
    """A counter that also sees inside long words: one token per 4 characters, plus 2 specials."""
    return len(text) // 4 + 2


def check_invariants(article: Article, chunks: list[Chunk], count, max_tokens: int) -> None:
    """What every chunking must satisfy."""
    assert [c.chunk_no for c in chunks] == list(range(len(chunks)))
    assert all(c.article_id == article.article_id for c in chunks)
    for c in chunks:
        assert count(c.embed_text) <= max_tokens
        assert c.text == article.text[c.sentences[0].start : c.sentences[-1].end]
        assert all(article.text[s.start : s.end] == s.text for s in c.sentences)
        assert [s.index for s in c.sentences] == list(range(c.first_sentence, c.last_sentence + 1))
    # every bit of article text is in some chunk
    covered = [False] * len(article.text)
    for c in chunks:
        start, end = c.sentences[0].start, c.sentences[-1].end
        covered[start:end] = [True] * (end - start)
    assert all(covered[i] for i, ch in enumerate(article.text) if not ch.isspace())
    # chunks move forward
    assert all(a.first_sentence < b.first_sentence for a, b in zip(chunks, chunks[1:], strict=False))
    assert all(a.last_sentence < b.last_sentence for a, b in zip(chunks, chunks[1:], strict=False))


@pytest.fixture(scope="module")
def seed() -> Article:
    return clean_article(SEED.read_text(encoding="utf-8"), path=str(SEED))


def test_seed_chunks(seed):
    chunks = chunk_article(seed, words, max_tokens=512, target_tokens=160, overlap=1)
    check_invariants(seed, chunks, words, 512)
    assert 5 <= len(chunks) <= 12
    assert all(c.context == "Tanggal: 2024-10-21" for c in chunks)
    assert [c.chunk_id for c in chunks][:2] == [f"{seed.article_id}:0", f"{seed.article_id}:1"]


def test_seed_anaphora_shares_a_chunk_with_its_antecedent(seed):
    chunks = chunk_article(seed, words)
    together = [
        c
        for c in chunks
        if "Cheong Seong-chang dari Institut Sejong" in c.text
        and "Ia menambahkan bahwa Kim Jong Un kemungkinan ingin memperoleh" in c.text
    ]
    assert together


@pytest.mark.parametrize("overlap", [0, 1, 2])
@pytest.mark.parametrize("target", [20, 60, 160, 400])
def test_overlap(seed, overlap, target):
    chunks = chunk_article(seed, words, max_tokens=512, target_tokens=target, overlap=overlap)
    check_invariants(seed, chunks, words, 512)
    for a, b in zip(chunks, chunks[1:], strict=False):
        shared = a.last_sentence - b.first_sentence + 1
        assert shared == overlap  # each chunk repeats the last `overlap` sentences of the one before


def test_every_sentence_shares_a_chunk_with_its_predecessor(seed):
    chunks = chunk_article(seed, words, target_tokens=40)
    pairs = {(s.index - 1, s.index) for c in chunks for s in c.sentences[1:]}
    n = len(split_sentences(seed.text))
    assert pairs == {(i - 1, i) for i in range(1, n)}


def test_deterministic(seed):
    assert chunk_article(seed, words) == chunk_article(seed, words)


def test_prefers_paragraph_ends():
    # two paragraphs of 4 sentences x 6 words (9 tokens each: 36 tokens a paragraph)
    para = " ".join(f"Kalimat nomor {i} ada di sini." for i in range(4))
    article = Article("a", f"{para}\n\n{para}\n\n{para}")
    chunks = chunk_article(article, words, max_tokens=512, target_tokens=45, overlap=0)
    check_invariants(article, chunks, words, 512)
    assert [c.text for c in chunks] == [
        para,
        para,
        para,
    ]  # 36 tokens at a paragraph end beats 45 mid-paragraph


@pytest.mark.parametrize(
    ("title", "date", "context"),
    [
        (
            "Korsel Panggil Dubes Rusia",
            "2024-10-21",
            "Judul: Korsel Panggil Dubes Rusia | Tanggal: 2024-10-21",
        ),
        ("Korsel Panggil Dubes Rusia", None, "Judul: Korsel Panggil Dubes Rusia"),
        (None, "2024-10-21", "Tanggal: 2024-10-21"),
        (None, None, ""),
    ],
)
def test_context(title, date, context):
    article = Article("a", "Isi berita.", title=title, date=date)
    assert context_line(article, words, 512) == context
    (chunk,) = chunk_article(article, words)
    assert chunk.context == context
    assert chunk.embed_text == (f"{context}\nIsi berita." if context else "Isi berita.")


def test_absurd_title_is_shortened_to_a_quarter_of_the_budget():
    article = Article("a", "Isi berita.", title=" ".join(["panjang"] * 500), date="2024-10-21")
    context = context_line(article, words, 64)
    assert context.startswith("Judul: panjang") and context.endswith("| Tanggal: 2024-10-21")
    assert words(context) <= 16
    check_invariants(article, chunk_article(article, words, max_tokens=64), words, 64)


def test_long_sentence_is_cut_at_word_boundaries():
    sentence = " ".join(f"kata{i}" for i in range(300)) + "."
    article = Article("a", f"Awal berita.\n\n{sentence}\n\nAkhir berita.", title="Judul")
    chunks = chunk_article(article, words, max_tokens=64, target_tokens=30)
    check_invariants(article, chunks, words, 64)
    pieces = [s for c in chunks for s in c.sentences if s.paragraph == 1]
    pieces = list({s.index: s for s in pieces}.values())
    assert len(pieces) > 1
    assert " ".join(p.text for p in pieces) == sentence  # cut only between words
    assert all(p.text.split()[0].startswith("kata") for p in pieces)


def test_long_word_is_cut_by_characters():
    article = Article("a", "Tautan: " + "x" * 3000 + " selesai.")
    chunks = chunk_article(article, chars, max_tokens=100, target_tokens=50)
    check_invariants(article, chunks, chars, 100)
    assert "".join(s.text for c in chunks for s in c.sentences if "x" in s.text).count("x") >= 3000


def test_budget_too_small_raises():
    article = Article("a", "Kata.")
    with pytest.raises(ValueError, match="too small"):
        chunk_article(article, lambda text: 10 + len(text), max_tokens=5)


def test_empty_article_has_no_chunks():
    assert chunk_article(Article("a", ""), words) == []


def test_with_the_shared_fake_embedder_counter(seed, fake_embedder):
    chunks = chunk_article(seed, fake_embedder.count_tokens, max_tokens=fake_embedder.max_tokens)
    check_invariants(seed, chunks, fake_embedder.count_tokens, fake_embedder.max_tokens)


SENTENCE = st.lists(
    st.sampled_from(
        ["Ia", "pergi", "ke", "Jakarta", "1.500", "Rp1.000.000", "dll.", "kata", "Budi", "M.", "(BPS)"]
    ),
    min_size=1,
    max_size=120,
).map(lambda ws: " ".join(ws) + ".")


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(
    paragraphs=st.lists(st.lists(SENTENCE, min_size=1, max_size=6), min_size=1, max_size=6),
    max_tokens=st.integers(min_value=24, max_value=300),
    target=st.integers(min_value=1, max_value=400),
    overlap=st.integers(min_value=0, max_value=3),
    title=st.one_of(st.none(), st.text(alphabet="abc ", min_size=1, max_size=80)),
)
def test_property_limits_coverage_and_exact_slices(paragraphs, max_tokens, target, overlap, title):
    text = "\n\n".join(" ".join(p) for p in paragraphs)
    article = Article("prop", text, title=(title or "").strip() or None, date="2024-10-21")
    chunks = chunk_article(article, words, max_tokens=max_tokens, target_tokens=target, overlap=overlap)
    check_invariants(article, chunks, words, max_tokens)
    assert chunks
    if overlap:  # a sentence shares a chunk with its predecessor whenever the two fit together
        units = {s.index: s for c in chunks for s in c.sentences}
        pairs = {(s.index - 1, s.index) for c in chunks for s in c.sentences[1:]}
        for i in range(1, len(units)):
            two = text[units[i - 1].start : units[i].end]
            if words(f"{chunks[0].context}\n{two}") <= max_tokens:
                assert (i - 1, i) in pairs
