"""Reader latency on this machine: 1 and 3 passages of ~160 tokens, ONNX Runtime vs numpy, and by depth."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.answer.reader import ADAPTER, Reader  # noqa: E402
from index.e5file import parse_e5, source_path  # noqa: E402
from index.e5onnx import encoder_graph, in_out, layer_weights  # noqa: E402
from index.sentences import split_sentences  # noqa: E402

SEED = Path(__file__).resolve().parents[1] / "seeds" / "000_e425e8bd6ae908eb.txt"
QUESTIONS = [
    "Siapa duta besar Rusia untuk Korea Selatan?",
    "Apa yang diharapkan Kim Jong Un dari Rusia?",
    "What does Cheong Seong-chang expect Kim Jong Un to gain?",
    "Kapan Kim Jong Un bertemu Putin?",
    "Who is Russia's ambassador to South Korea?",
    "Berapa lama kunjungan itu berlangsung?",
]


def chunks(reader: Reader, text: str, tokens: int = 160) -> list[tuple[str, list[tuple[int, int]]]]:
    """Consecutive sentences grouped into passages of about `tokens` tokens, as the indexer chunks."""
    out, cur = [], []
    for s in split_sentences(text):
        cur.append(s.text)
        if len(reader.tokenizer.encode(" ".join(cur), add_special_tokens=False).ids) >= tokens:
            out.append(" ".join(cur))
            cur = []
    if cur:
        out.append(" ".join(cur))
    return [(c, [(s.start, s.end) for s in split_sentences(c)]) for c in out]


def timed(fn, reps: int) -> dict[str, float]:
    """p50/p95 milliseconds of fn over reps calls after two warm-up calls."""
    fn(0)
    fn(1)
    ts = []
    for i in range(reps):
        t0 = time.perf_counter()
        fn(i)
        ts.append(1000 * (time.perf_counter() - t0))
    return {"p50": round(float(np.percentile(ts, 50)), 1), "p95": round(float(np.percentile(ts, 95)), 1)}


def depth_table(reps: int, tokens: int) -> dict[str, dict[str, float]]:
    """ONNX Runtime time for 3 x `tokens` tokens with the first L base layers (weights as shipped)."""
    import onnx
    import onnxruntime as ort

    buf = source_path().read_bytes()
    f = parse_e5(buf)

    h = f.hidden
    x = np.random.default_rng(0).standard_normal((3, tokens, h)).astype(np.float32)
    bias = np.zeros((3, 1, 1, tokens), np.float32)
    out = {}
    for layers in (2, 4, 6, 8, 12):
        w = in_out(layer_weights(f, buf, layers))
        w["head.w"] = np.zeros((h, 2), np.float32)
        w["head.b"] = np.zeros(2, np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.onnx"
            onnx.save(encoder_graph(w, layers, f.heads, "span"), str(path))
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = int(os.environ.get("KABAR_READER_THREADS", "1"))
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            out[str(layers)] = timed(lambda i, sess=sess: sess.run(None, {"x": x, "bias": bias}), reps)
    return out


def main() -> None:
    """Print a JSON table of timings."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--adapter", type=Path, default=ADAPTER)
    ap.add_argument("--cache-dir", type=Path, default=Path("/work/cache/kabar"))
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--depth", action="store_true", help="also time 2-12 base layers")
    args = ap.parse_args()
    report: dict = {"threads": int(os.environ.get("KABAR_READER_THREADS", "1")), "load_avg": os.getloadavg()}
    for engine in ("onnx", "numpy"):
        reader = Reader.load(args.cache_dir, args.adapter, engine=engine)
        passages = chunks(reader, SEED.read_text(encoding="utf-8"))[:3]
        report["passage_tokens"] = [len(reader.tokenizer.encode(p[0]).ids) for p in passages]
        for n in (1, 3):
            report[f"{engine}_{n}_passages_ms"] = timed(
                lambda i, n=n, r=reader, ps=passages: r.read(QUESTIONS[i % len(QUESTIONS)], ps[:n]), args.reps
            )
    if args.depth:
        report["onnx_3x185_tokens_by_layers_ms"] = depth_table(max(5, args.reps // 3), 185)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
