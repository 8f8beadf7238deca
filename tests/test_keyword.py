"""Keyword index: Indonesian-aware tokens, BM25 search, versioned saves."""

from __future__ import annotations

import pytest

from index.keyword import KeywordIndex, tokenize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sekitar 1.500 prajurit", ["sekitar", "1.500", "prajurit"]),
        ("lebih dari 13.000 kontainer", ["13.000", "kontainer"]),
        ("Georgiy Zinoviev", ["georgiy", "zinoviev"]),
        ("pada 21/10/2024", ["21/10/2024"]),
        ("tumbuh 3,5 persen", ["tumbuh", "3,5", "persen"]),
        ("Perang Dunia II dan 8 hingga 13 Oktober", ["perang", "dunia", "ii", "8", "13", "oktober"]),
        ("Dia menambahkan bahwa pengiriman itu", ["ambah", "irim"]),  # stop words go, stems stay
    ],
)
def test_tokenize_keeps_numbers_names_and_short_tokens(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_tokenize_without_stemming_keeps_words() -> None:
    assert tokenize("menambahkan pengiriman", stem=False) == ["menambahkan", "pengiriman"]


@pytest.fixture
def small_index() -> KeywordIndex:
    texts = [
        "Duta besar Rusia Georgiy Zinoviev dipanggil ke Seoul.",
        "Korea Utara mengirim lebih dari 13.000 kontainer amunisi.",
        "Sekitar 1.500 prajurit pasukan khusus sudah berada di Rusia.",
        "Harga beras naik di pasar tradisional.",
    ]
    return KeywordIndex.build([f"a:{i}" for i in range(len(texts))], texts)


@pytest.mark.parametrize(
    ("query", "best"),
    [("Zinoviev", "a:0"), ("13.000 kontainer", "a:1"), ("1.500", "a:2"), ("berapa harga beras?", "a:3")],
)
def test_search_finds_names_and_numbers(small_index: KeywordIndex, query: str, best: str) -> None:
    hits = small_index.search(query, 3)
    assert hits[0][0] == best
    assert all(score > 0 for _, score in hits)


def test_search_without_matches_is_empty(small_index: KeywordIndex) -> None:
    assert small_index.search("sepak bola", 3) == []
    assert small_index.search("yang dan di", 3) == []  # stop words only
    assert KeywordIndex([]).search("Zinoviev", 3) == []


def test_save_and_load_versions(tmp_path, small_index: KeywordIndex) -> None:
    root = tmp_path / "kw"
    assert KeywordIndex.load(root)[1] is None
    for version in (1, 2, 3):
        small_index.save(root, version)
    loaded, version = KeywordIndex.load(root)
    assert version == 3
    assert loaded.search("Zinoviev", 1)[0][0] == "a:0"
    assert sorted(p.name for p in root.glob("v*")) == ["v2", "v3"]  # older ones pruned, previous kept
    assert not list(root.glob(".tmp-*"))


def test_removal_publishes_a_version_over_the_same_bm25(tmp_path, small_index: KeywordIndex) -> None:
    root = tmp_path / "kw"
    assert KeywordIndex.publish_removal(root, ["a:0"]) is None  # nothing saved yet: caller rebuilds
    small_index.save(root, 1)
    assert KeywordIndex.publish_removal(root, ["a:0"]) == 2
    assert KeywordIndex.publish_removal(root, ["a:1"]) == 3
    assert KeywordIndex.publish_removal(root, ["a:2"]) == 4
    loaded, version = KeywordIndex.load(root)
    assert version == 4 and loaded.removed == {"a:0", "a:1", "a:2"}
    assert all(cid not in loaded.removed for cid, _ in loaded.search("Zinoviev", 3))
    assert len(loaded) == len(small_index) - 3 and "a:0" not in loaded.ids()
    assert sorted(p.name for p in root.glob("v*")) == ["v1", "v3", "v4"]  # v1 holds the BM25 data
    assert not (root / "v4" / "bm25").exists()
