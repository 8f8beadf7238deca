"""Property-based tests of the text pipeline: any text in, no exception out (but "nothing left"), sentences
and chunks that are exact slices of the cleaned article and cover all of it, in order."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.chunk import chunk_article
from index.clean import clean_article
from index.errors import LoadError
from index.load import load_articles
from index.sentences import split_sentences
from index.types import Article

# Pieces that hit the cleaner's and splitter's rules, mixed with arbitrary text (lone surrogates included).
FRAGMENTS = [
    "Ia", "pergi", "ke", "Jakarta", "kata", "Budi", "dll.", "Dr.", "M.", "A.", "Rp1.000", "1.500", "(BPS)",
    ". ", "? ", "! ", "... ", "…", "“", "”", '"', "'", "(", ")", "[", "]", ",", ";", ":", " - ", " -- ",
    "JAKARTA, KOMPAS.com - ", "Baca juga: ", "Sumber: Reuters", "(ard)", "Senin (21/10/2024)", "Editor: X",
    "{", "}", "function(", "var x=1;", "<!--", "<! [CDATA [", "//]]>", "fbq('init');", ".a{color:red;}",
    "\u200b", "\u200d", "\u202e", "\u2066", "\ufeff", "\u00ad", "\x00", "\x1b[31m", "\x07",
    "\ud800", "\udc00",
    "😀", "👍🏽", "👨\u200d👩\u200d👧", "مرحبا", "שלום", "漢字", "e\u0301", "\u00a0", "\u3000",
    " ", "  ", "\t", "\n", "\n\n", "\r\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c",
]  # fmt: skip
ANY_CHAR = st.characters(exclude_categories=())  # surrogates too: JSON can carry them
TEXT = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(ANY_CHAR, max_size=8)), max_size=80).map(
    "".join
)
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def words(text: str) -> int:
    """The shared fake embedder's token count."""
    return int(len(text.split()) * 1.5) + 4


def clean_or_none(raw: str, title: str | None = None) -> Article | None:
    try:
        return clean_article(raw, title=title, path="x.txt")
    except LoadError as e:
        assert e.path == "x.txt" and e.reason == "no article text after cleaning"
        return None


@FAST
@given(raw=TEXT, title=st.one_of(st.none(), TEXT))
def test_cleaner_output_is_clean_text(raw, title):
    article = clean_or_none(raw, title)
    if article is None:
        return
    text = article.text
    text.encode("utf-8")  # no lone surrogates: storable and hashable
    assert text == unicodedata.normalize("NFC", text)
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") and c != "\n" for c in text)
    paragraphs = text.split("\n\n")
    assert all(p and p == p.strip() and "\n" not in p for p in paragraphs)
    assert all(any(c.isalnum() for c in p) for p in paragraphs)
    for field in (article.title, article.publisher, article.source):
        assert field is None or (field == field.strip() and "\n" not in field and field.encode("utf-8"))


@FAST
@given(raw=TEXT)
def test_sentences_are_exact_slices_that_cover_the_cleaned_article(raw):
    article = clean_or_none(raw)
    if article is None:
        return
    text = article.text
    sentences = split_sentences(text)
    assert sentences
    for s in sentences:
        assert text[s.start : s.end] == s.text and s.text == s.text.strip() and s.text
    assert [s.index for s in sentences] == list(range(len(sentences)))
    assert all(a.end <= b.start for a, b in zip(sentences, sentences[1:], strict=False))
    # between sentences only whitespace: every character of the article is in a sentence
    covered = "".join(text[a.end : b.start] for a, b in zip(sentences, sentences[1:], strict=False))
    assert not covered.strip() and not text[: sentences[0].start].strip() and not text[sentences[-1].end :]


@FAST
@given(raw=TEXT, max_tokens=st.sampled_from([24, 64, 512]), overlap=st.integers(0, 2))
def test_chunks_cover_the_article_in_order(raw, max_tokens, overlap):
    article = clean_or_none(raw)
    if article is None:
        return
    chunks = chunk_article(
        article, words, max_tokens=max_tokens, target_tokens=max_tokens // 3, overlap=overlap
    )
    assert chunks
    seen: dict[int, tuple[int, int]] = {}
    for c in chunks:
        assert words(c.embed_text) <= max_tokens
        assert c.text == article.text[c.sentences[0].start : c.sentences[-1].end]
        for s in c.sentences:
            assert article.text[s.start : s.end] == s.text
            assert seen.setdefault(s.index, (s.start, s.end)) == (s.start, s.end)  # the same unit everywhere
    # every unit (sentence or piece of one) is in some chunk, units are in order and tile the sentences
    units = [seen[i] for i in sorted(seen)]
    assert sorted(seen) == list(range(len(units)))
    assert all(a[1] <= b[0] for a, b in zip(units, units[1:], strict=False))
    spans = {(s.start, s.end) for s in split_sentences(article.text)}
    for start, end in spans:
        inside = [u for u in units if start <= u[0] and u[1] <= end]
        assert inside and inside[0][0] == start and inside[-1][1] == end
    assert all(a.first_sentence < b.first_sentence for a, b in zip(chunks, chunks[1:], strict=False))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.one_of(st.binary(max_size=600), TEXT.map(lambda t: t.encode("utf-8", "surrogatepass"))),
    suffix=st.sampled_from([".txt", ".md", ".html", ".json", ".jsonl"]),
)
def test_loader_never_raises_on_any_bytes(tmp_path_factory, data, suffix):
    folder = Path(tmp_path_factory.mktemp("any"))
    (folder / f"x{suffix}").write_bytes(data)
    (folder / "zz_good.txt").write_text("Berita yang baik.")
    skipped: list[tuple[str, str]] = []
    articles = list(load_articles([folder], on_skip=lambda p, r: skipped.append((p, r))))
    assert articles[-1].text == "Berita yang baik."
    assert all(p.startswith(str(folder / "x")) and r for p, r in skipped)
    for a in articles:
        a.text.encode("utf-8")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    record=st.dictionaries(
        st.sampled_from(["doc_id", "title", "text", "date", "url", "source", "publisher", "content"]),
        st.one_of(TEXT, st.integers(), st.none(), st.lists(st.integers(), max_size=3)),
    )
)
def test_any_jsonl_record_loads_or_is_reported_by_line(tmp_path_factory, record):
    path = Path(tmp_path_factory.mktemp("rec")) / "c.jsonl"
    good = {"doc_id": "zz-good", "text": "Berita yang baik."}
    path.write_text(json.dumps(record) + "\n" + json.dumps(good), encoding="utf-8")
    skipped: list[tuple[str, str]] = []
    articles = list(load_articles([path], on_skip=lambda p, r: skipped.append((p, r))))
    assert articles[-1].article_id == "zz-good"
    assert all(p == f"{path}:1" and r for p, r in skipped)
    for a in articles:
        a.text.encode("utf-8")
        assert a.title is None or a.title.encode("utf-8")
