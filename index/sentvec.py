"""Sentence vectors stored with their chunk: int8 rows with a scale each, as one compact string.

Chroma metadata holds strings, so a chunk's sentence vectors travel with its record (embedded or server);
int8 keeps them at a quarter of float32, and the cosines they give differ by ~1e-3.
"""

from __future__ import annotations

import base64

import numpy as np

KEY = "sv"  # the chunk record's metadata key


def pack(vectors: np.ndarray) -> str:
    """Rows (L2-normalised float vectors) as base64 of float16 scales then int8 values."""
    rows = np.asarray(vectors, np.float32)
    scale = np.abs(rows).max(axis=1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(rows / scale), -127, 127).astype(np.int8)
    return base64.b64encode(scale.astype(np.float16).tobytes() + q.tobytes()).decode("ascii")


def unpack(text: str, dim: int) -> np.ndarray:
    """The rows of `pack`, L2-normalised again (float32)."""
    raw = base64.b64decode(text)
    n = len(raw) // (2 + dim)
    if n * (2 + dim) != len(raw):
        raise ValueError(f"sentence vectors of {len(raw)} bytes are not rows of {dim}")
    scale = np.frombuffer(raw[: 2 * n], np.float16).astype(np.float32).reshape(n, 1)
    rows = np.frombuffer(raw[2 * n :], np.int8).astype(np.float32).reshape(n, dim) * scale
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)
