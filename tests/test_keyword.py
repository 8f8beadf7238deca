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
    assert KeywordIndex().search("Zinoviev", 3) == []


def test_save_and_load_versions(tmp_path, small_index: KeywordIndex) -> None:
    root = tmp_path / "kw"
    assert KeywordIndex.load(root)[1] is None and not KeywordIndex.exists(root)
    for version in (1, 2, 3):
        small_index.save(root, version)
    loaded, version = KeywordIndex.load(root)
    assert version == 3 and KeywordIndex.exists(root)
    assert loaded.search("Zinoviev", 1)[0][0] == "a:0"
    assert sorted(p.name for p in root.glob("v*")) == ["v2.json", "v3.json"]  # older pruned, previous kept
    assert not list(root.glob(".tmp-*"))


def test_an_older_layout_counts_as_absent(tmp_path) -> None:
    root = tmp_path / "kw"
    (root / "v4" / "bm25").mkdir(parents=True)  # what Kabar wrote before segments
    (root / "current").write_text("4")
    assert not KeywordIndex.exists(root)
    index, version = KeywordIndex.load(root)
    assert version is None and len(index) == 0


CORPUS = [
    "Korea Utara mengirim pasukan ke Rusia untuk membantu perang di Ukraina.",
    "Duta besar Rusia dipanggil oleh Kementerian Luar Negeri Korea Selatan.",
    "Harga beras naik di pasar tradisional Jakarta menjelang Lebaran.",
    "Presiden Joko Widodo meresmikan bendungan di Nusa Tenggara Timur.",
    "Bank Indonesia menahan suku bunga acuan di 6 persen.",
    "Timnas Indonesia menang 2-0 atas Vietnam di Stadion Gelora Bung Karno.",
    "Gempa bermagnitudo 5,6 mengguncang Cianjur, Jawa Barat.",
    "Korea Selatan mempertimbangkan mengirim senjata ke Ukraina.",
    "Harga cabai dan bawang merah turun di pasar Jakarta.",
    "Kim Jong Un meninjau uji coba rudal balistik Korea Utara.",
]
QUERIES = ["Korea Utara Rusia", "harga beras Jakarta", "Ukraina senjata", "suku bunga 6 persen", "rudal Kim"]


def test_scores_equal_bm25s_lucene() -> None:
    # the raw library on the same tokens: same BM25 variant, so the same scores
    import bm25s

    keys = [f"d:{i}" for i in range(len(CORPUS))]
    ours = KeywordIndex.build(keys, CORPUS)
    ref = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    ref.index([tokenize(t) for t in CORPUS], show_progress=False)
    for q in QUERIES:
        expected = ref.get_scores(tokenize(q))
        got = dict(ours.search(q, len(CORPUS)))
        assert got, q
        for i, key in enumerate(keys):
            assert got.get(key, 0.0) == pytest.approx(float(expected[i]), rel=1e-5, abs=1e-6), (q, key)


def grown(keys: list[str], texts: list[str], steps: int) -> KeywordIndex:
    """An index grown in `steps` additions, with a throw-away document added and removed on the way."""
    index = KeywordIndex()
    bounds = [round(i * len(keys) / steps) for i in range(steps + 1)]
    for n, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False)):
        index = index.updated(f"s{n}", dict(zip(keys[a:b], texts[a:b], strict=True)), ())
        index = index.updated(f"t{n}", {f"tmp:{n}": "Korea Utara harga beras Ukraina"}, ())
        index = index.updated(f"u{n}", {}, [f"tmp:{n}"])
    return index


@pytest.mark.parametrize("steps", [2, 5, 10])
def test_a_grown_index_scores_like_one_built_at_once(steps: int) -> None:
    keys = [f"d:{i}" for i in range(len(CORPUS))]
    fresh = KeywordIndex.build(keys, CORPUS)
    index = grown(keys, CORPUS, steps)
    assert len(index) == len(CORPUS) and index.keys() == set(keys)
    assert len(index.segments) <= 8  # merged along the way
    for q in QUERIES:
        assert index.search(q, 4) == fresh.search(q, 4)


def test_removed_documents_are_not_found_and_not_counted() -> None:
    keys = [f"d:{i}" for i in range(len(CORPUS))]
    index = KeywordIndex.build(keys, CORPUS).updated("s1", {}, ["d:0", "d:9"])
    fresh = KeywordIndex.build(keys[1:9], CORPUS[1:9])
    assert len(index) == 8 and "d:0" not in index.ids()
    for q in QUERIES:
        assert index.search(q, 10) == fresh.search(q, 10)  # idf and average length without them too


def test_a_key_removed_then_added_again_is_found_once() -> None:
    index = KeywordIndex.build(["a#1", "b#1"], CORPUS[:2])
    index = index.updated("s1", {}, ["a#1"]).updated("s2", {"a#1": CORPUS[0]}, [])
    assert index.keys() == {"a#1", "b#1"}
    assert [cid for cid, _ in index.search("Korea Utara Rusia", 5)] == ["a", "b"]


def test_many_removals_merge_the_dead_away(tmp_path) -> None:
    keys = [f"d:{i}" for i in range(len(CORPUS))]
    index = KeywordIndex.build(keys, CORPUS).updated("s1", {}, keys[:3])  # 30% dead: merged
    assert len(index.segments) == 1 and not index.dead and len(index.segments[0].keys) == 7
    fresh = KeywordIndex.build(keys[3:], CORPUS[3:])
    assert index.search("harga beras", 10) == fresh.search("harga beras", 10)


def test_versions_share_unchanged_segments_on_disk(tmp_path) -> None:
    root = tmp_path / "kw"
    keys = [f"d:{i}" for i in range(len(CORPUS))]
    v1 = KeywordIndex.build(keys[:8], CORPUS[:8], name="s1")
    v1.save(root, 1)
    v2 = v1.updated("s2", dict(zip(keys[8:], CORPUS[8:], strict=True)), ["d:0"])
    v2.save(root, 2)
    assert sorted(p.name for p in root.iterdir()) == ["current", "s1", "s2", "v1.json", "v2.json"]
    loaded, version = KeywordIndex.load(root, reuse=v1)
    assert version == 2 and loaded.segments[0] is v1.segments[0]  # not read again
    assert loaded.keys() == set(keys) - {"d:0"}
    assert loaded.search("rudal Kim", 1) == v2.search("rudal Kim", 1)
    v2.updated("s3", {}, ["d:1"]).save(root, 3)
    assert sorted(p.name for p in root.iterdir()) == ["current", "s1", "s2", "v2.json", "v3.json"]


def test_a_segment_left_by_a_killed_save_is_written_again(tmp_path) -> None:
    root = tmp_path / "kw"
    keys = [f"d:{i}" for i in range(len(CORPUS))]
    v1 = KeywordIndex.build(keys[:8], CORPUS[:8], name="s1")
    v1.save(root, 1)
    # a run killed after writing its new segment, before publishing version 2, with other chunks
    KeywordIndex.build(["x:0"], ["harga cabai"], name="s2").segments[0].save(root / "s2")
    v1.updated("s2", dict(zip(keys[8:], CORPUS[8:], strict=True)), []).save(root, 2)
    loaded, version = KeywordIndex.load(root)
    assert version == 2 and loaded.keys() == set(keys)
    assert loaded.search("rudal Kim", 1)[0][0] == "d:9"
