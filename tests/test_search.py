"""Fusion of the dense and keyword rankings."""

from __future__ import annotations

import pytest

from index.search import SearchParams, fuse

DENSE = [("a", 0.86), ("b", 0.855), ("c", 0.85), ("d", 0.84), ("e", 0.80)]  # a near-tie at the top
FLAT_BM25 = [("b", 5.0), ("a", 4.9), ("c", 4.8), ("d", 4.7)]


def ids(ranking: list[tuple[str, float]]) -> list[str]:
    return [c for c, _ in ranking]


def test_a_keyword_hit_that_stands_out_beats_a_near_tie_of_cosines() -> None:
    peaked = [("c", 20.0), ("a", 3.0), ("b", 2.5), ("d", 2.0)]  # the question's rare words are all in c
    assert ids(fuse(DENSE, peaked, 0.6))[0] == "c"


def test_a_clear_dense_winner_beats_a_flat_keyword_ranking() -> None:
    dense = [("e", 0.93), ("a", 0.80), ("b", 0.79), ("c", 0.79), ("d", 0.78)]
    assert ids(fuse(dense, FLAT_BM25, 0.6))[0] == "e"  # e is not even in the keyword list


def test_the_weights_span_dense_only_to_keyword_only() -> None:
    assert ids(fuse(DENSE, FLAT_BM25, 1.0))[:5] == ids(DENSE)
    assert ids(fuse(DENSE, FLAT_BM25, 0.0))[:4] == ids(FLAT_BM25)


def test_every_candidate_of_either_list_is_kept_once() -> None:
    fused = fuse(DENSE, [("z", 3.0), ("a", 1.0)], 0.5)
    assert sorted(ids(fused)) == ["a", "b", "c", "d", "e", "z"]


@pytest.mark.parametrize(("dense", "keyword"), [([], []), ([("a", 0.9)], []), ([], [("a", 2.0)])])
def test_empty_and_single_lists(dense, keyword) -> None:
    assert ids(fuse(dense, keyword, 0.6)) == ids(dense or keyword)


def test_english_questions_lean_on_dense() -> None:
    p = SearchParams(dense_weight=0.6, dense_weight_en=0.8)
    assert p.weight("What does Cheong Seong-chang expect Kim Jong Un to gain?") == 0.8
    assert p.weight("Apa yang diharapkan Kim Jong Un dari pengiriman pasukan?") == 0.6
