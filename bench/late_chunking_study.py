"""Sentence vectors pooled from the chunk's forward pass ("late chunking") against sentences embedded alone.

    .venv/bin/python bench/late_chunking_study.py [--sets facqa_valid,tydiqa_id_valid] [--limit N]

For every answerable question whose gold passage has at least two sentences (index/sentences.py), the
passage is run through the default model once as "passage: " + text; each sentence's vector is the mean
of its tokens' final hidden states in that pass (windows of 510 tokens if the passage is longer, as the
embedder windows). Against it: each sentence embedded on its own with `embed_passages`, as the answer
engine does today, and the normalised sum of both. A question counts as a hit for a method when the
sentence with the highest cosine to the "query: " question contains one of the gold answers
(case-insensitive). Times are for the study's own passes on one torch thread: the late pass stands for work
the indexer's chunk pass already does, the separate pass for the extra cost of storing separate vectors.
Prints JSON and writes bench/results/late_chunking_study.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qa_data import DATA, read_jsonl  # noqa: E402

from bot.settings import Settings  # noqa: E402
from index.embed import load_embedder  # noqa: E402
from index.sentences import split_sentences  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "passage: "


def late_vectors(embedder, text: str, spans: list[tuple[int, int]]) -> np.ndarray:
    """Per-span mean of the final token states of one pass over PREFIX + text (L2-normalised)."""
    import torch

    tok = embedder.tokenizer
    enc = tok(PREFIX + text, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    bert = embedder.model[0].auto_model
    window = embedder.max_tokens - 2
    states = np.zeros((len(ids), embedder.dim), np.float32)
    with torch.inference_mode():
        for a in range(0, len(ids), window):
            seq = torch.tensor([[tok.cls_token_id, *ids[a : a + window], tok.sep_token_id]])
            out = bert(input_ids=seq, attention_mask=torch.ones_like(seq)).last_hidden_state[0]
            states[a : a + window] = out[1:-1].numpy()
    shift = len(PREFIX)
    vecs = np.zeros((len(spans), embedder.dim), np.float32)
    for k, (start, end) in enumerate(spans):
        rows = [i for i, (s, e) in enumerate(offsets) if e > start + shift and s < end + shift]
        v = states[rows].mean(0) if rows else np.zeros(embedder.dim, np.float32)
        vecs[k] = v / max(float(np.linalg.norm(v)), 1e-12)
    return vecs


def hit(sentence: str, answers: list[str]) -> bool:
    """Whether the sentence holds one of the gold answers."""
    low = sentence.lower()
    return any(a.strip().lower() in low for a in answers if a.strip())


def study(embedder, rows: list[dict]) -> dict:
    """Top-1 sentence hit rates of the three methods over questions with a multi-sentence gold passage."""
    counts = {"separate": 0, "late": 0, "sum": 0, "oracle": 0}
    n = skipped_single = skipped_no_answer = 0
    late_s = separate_s = 0.0
    only = {"late": 0, "separate": 0}
    for r in rows:
        if r.get("is_impossible") or not r["answers"]:
            continue
        sents = split_sentences(r["passage"])
        if len(sents) < 2:
            skipped_single += 1
            continue
        texts = [s.text for s in sents]
        holds = [hit(t, r["answers"]) for t in texts]
        if not any(holds):  # the answer spans a sentence boundary: no sentence can hold it
            skipped_no_answer += 1
            continue
        n += 1
        q = embedder.embed_queries([r["question"]])[0]
        t = time.perf_counter()
        sep = embedder.embed_passages(texts)
        separate_s += time.perf_counter() - t
        t = time.perf_counter()
        late = late_vectors(embedder, r["passage"], [(s.start, s.end) for s in sents])
        late_s += time.perf_counter() - t
        both = sep + late
        both /= np.linalg.norm(both, axis=1, keepdims=True)
        got = {}
        for name, vecs in (("separate", sep), ("late", late), ("sum", both)):
            got[name] = holds[int(np.argmax(vecs @ q))]
            counts[name] += got[name]
        counts["oracle"] += got["separate"] or got["late"]
        if got["late"] != got["separate"]:
            only["late" if got["late"] else "separate"] += 1
    return {
        "questions": n,
        "skipped_single_sentence": skipped_single,
        "skipped_answer_not_inside_one_sentence": skipped_no_answer,
        "top1_holds_answer": {k: round(v / max(n, 1), 4) for k, v in counts.items()},
        "hits": counts,
        "only_this_method_right": only,
        "seconds": {"separate_sentence_pass": round(separate_s, 1), "late_pooling_pass": round(late_s, 1)},
    }


def main() -> None:
    """Run the study on each set and print the report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="facqa_valid,tydiqa_id_valid")
    ap.add_argument("--limit", type=int, default=0, help="questions per set (0: all)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "late_chunking_study.json")
    args = ap.parse_args()
    embedder = load_embedder(None, Settings.load().index.cache_dir, engine="torch")  # needs its BertModel
    import torch

    # One thread for both methods (the embedder itself uses one for short texts): comparable timings, and
    # no two-thread stalls on a shared 2-core machine.
    torch.set_num_threads(1)
    report = {}
    for name in args.sets.split(","):
        rows = list(read_jsonl(DATA / "qa" / f"{name}.jsonl"))
        if args.limit:
            rows = rows[: args.limit]
        report[name] = study(embedder, rows)
        print(name, json.dumps(report[name]), file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
