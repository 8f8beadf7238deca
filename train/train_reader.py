"""Train Kabar's reader: LoRA adapters plus a SQuAD-2.0 span head on the first layers of multilingual-e5-small

Deterministic (seeded, single process). Writes the float16 adapter `.npz` and its `.sha256`; the torch-free
inference in bot/answer/reader.py merges it into the bundled base weights. Usage: see train/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.e5model import ensure_e5_model  # noqa: E402
from train.eval_reader import auc  # noqa: E402
from train.reader_data import Example, load_split  # noqa: E402

TARGETS = {  # transformers BertLayer module path -> short name used in the adapter file
    "attention.self.query": "q",
    "attention.self.key": "k",
    "attention.self.value": "v",
    "attention.output.dense": "ao",
    "intermediate.dense": "fi",
    "output.dense": "fo",
}
Q_PREFIX = "query: "
P_PREFIX = "passage: "


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update scale * B @ A (B starts at zero)."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, gen: torch.Generator) -> None:
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.A = nn.Parameter(
            torch.randn(rank, base.in_features, generator=gen) / math.sqrt(base.in_features)
        )
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Base output plus the low-rank correction."""
        return self.base(x) + (x @ self.A.t() @ self.B.t()) * self.scale


class Reader(nn.Module):
    """Truncated encoder with LoRA and a start/end head; position 0 (<s>) is the no-answer position."""

    def __init__(self, model_dir: Path, layers: int, rank: int, alpha: float, seed: int) -> None:
        super().__init__()
        from transformers import AutoModel

        enc = AutoModel.from_pretrained(str(model_dir), add_pooling_layer=False)
        enc.encoder.layer = enc.encoder.layer[:layers]
        enc.config.num_hidden_layers = layers
        for p in enc.parameters():
            p.requires_grad_(False)
        gen = torch.Generator().manual_seed(seed)
        for layer in enc.encoder.layer:
            for path in TARGETS:
                parent_path, _, leaf = path.rpartition(".")
                parent = layer.get_submodule(parent_path)
                setattr(parent, leaf, LoRALinear(getattr(parent, leaf), rank, alpha, gen))
        self.enc = enc
        self.head = nn.Linear(enc.config.hidden_size, 2)
        # answerability: a logit on the <s> state, trained with its own binary loss (the span head's null
        # score only learns "how good is the best span", not "is this answered": train/README.md)
        self.answer = nn.Linear(enc.config.hidden_size, 1)
        with torch.no_grad():
            self.head.weight.normal_(0.0, 0.02, generator=gen)
            self.head.bias.zero_()
            self.answer.weight.normal_(0.0, 0.02, generator=gen)
            self.answer.bias.zero_()

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Start and end logits, one per token, and the answerability logit, one per input."""
        h = self.enc(input_ids=ids, attention_mask=mask).last_hidden_state
        logits = self.head(h)
        return logits[..., 0], logits[..., 1], self.answer(h[:, 0]).squeeze(-1)

    def load_adapter(self, path: Path) -> None:
        """Start from a saved adapter (LoRA factors and heads; B is stored already scaled).

        An adapter of fewer layers fills the first ones; the rest keep B = 0 (their base layer unchanged).
        """
        with np.load(path) as z:
            for li, layer in enumerate(self.enc.encoder.layer):
                if f"l{li}.q.A" not in z.files:
                    break
                for tpath, short in TARGETS.items():
                    mod = layer.get_submodule(tpath)
                    with torch.no_grad():
                        mod.A.copy_(torch.from_numpy(z[f"l{li}.{short}.A"].astype(np.float32)))
                        mod.B.copy_(torch.from_numpy(z[f"l{li}.{short}.B"].astype(np.float32)) / mod.scale)
            with torch.no_grad():
                self.head.weight.copy_(torch.from_numpy(z["head.w"].astype(np.float32)))
                self.head.bias.copy_(torch.from_numpy(z["head.b"].astype(np.float32)))
                if "answer.w" in z.files:
                    self.answer.weight.copy_(torch.from_numpy(z["answer.w"].astype(np.float32)))
                    self.answer.bias.copy_(torch.from_numpy(z["answer.b"].astype(np.float32)))


def featurize(ex: Example, tok, max_len: int, q_max: int) -> dict | None:
    """Token ids <s> query </s></s> passage </s>, the answer's token positions (0 = none), passage mask."""
    q = tok.encode(Q_PREFIX + ex.question, add_special_tokens=False).ids[:q_max]
    p = tok.encode(P_PREFIX + ex.passage, add_special_tokens=False)
    shift = len(P_PREFIX)
    p_ids, p_off = p.ids, [(a - shift, b - shift) for a, b in p.offsets]
    room = max_len - len(q) - 4
    lo = 0
    if len(p_ids) > room:
        if ex.answerable:  # a window holding the answer, placed at a seeded-free spot (its middle)
            first = next(i for i, (a, b) in enumerate(p_off) if b > ex.start)
            lo = max(0, min(first - room // 2, len(p_ids) - room))
    p_ids, p_off = p_ids[lo : lo + room], p_off[lo : lo + room]
    base = len(q) + 3
    ids = [0, *q, 2, 2, *p_ids, 2]
    allowed = [0] * len(ids)
    allowed[0] = 1
    for i, (a, b) in enumerate(p_off):
        if b > 0 and b > a:  # skip the "passage: " prefix pieces and empty pieces
            allowed[base + i] = 1
    s = e = 0
    if ex.answerable:
        starts = [i for i, (a, b) in enumerate(p_off) if a <= ex.start < b or (a >= ex.start and b > a)]
        ends = [i for i, (a, b) in enumerate(p_off) if a < ex.end <= b or (b <= ex.end and b > a)]
        if not starts or not ends:
            return None
        s_tok = starts[0]
        e_tok = max(i for i in ends if p_off[i][0] < ex.end)
        if e_tok < s_tok or p_off[s_tok][0] > ex.start + 1:
            return None
        s, e = base + s_tok, base + e_tok
    return {"ids": ids, "allowed": allowed, "start": s, "end": e, "kind": ex.kind}


def batches(feats: list[dict], bs: int, rng: random.Random) -> list[list[dict]]:
    """Shuffled batches of similar length (less padding), deterministic under rng."""
    order = feats[:]
    rng.shuffle(order)
    out = []
    for i in range(0, len(order), bs * 50):
        chunk = sorted(order[i : i + bs * 50], key=lambda f: len(f["ids"]))
        out += [chunk[j : j + bs] for j in range(0, len(chunk), bs)]
    rng.shuffle(out)
    return out


def collate(batch: list[dict]) -> tuple[torch.Tensor, ...]:
    """Pad a batch to its longest member (pad id 1)."""
    n = max(len(f["ids"]) for f in batch)
    ids = torch.full((len(batch), n), 1, dtype=torch.long)
    mask = torch.zeros((len(batch), n), dtype=torch.long)
    allowed = torch.zeros((len(batch), n), dtype=torch.bool)
    for i, f in enumerate(batch):
        ids[i, : len(f["ids"])] = torch.tensor(f["ids"])
        mask[i, : len(f["ids"])] = 1
        allowed[i, : len(f["ids"])] = torch.tensor(f["allowed"], dtype=torch.bool)
    start = torch.tensor([f["start"] for f in batch])
    end = torch.tensor([f["end"] for f in batch])
    return ids, mask, allowed, start, end


def evaluate(model: Reader, feats: list[dict], max_span: int = 30) -> dict:
    """Dev loss, exact token-span match on answerable, and the null-vs-span margin per example."""
    model.eval()
    hits = n_ans = 0
    margins, labels, answer, loss_sum = [], [], [], 0.0
    with torch.no_grad():
        for i in range(0, len(feats), 32):
            ids, mask, allowed, start, end = collate(feats[i : i + 32])
            s, e, a = model(ids, mask)
            answer += a.tolist()
            s = s.masked_fill(~allowed, -1e4)
            e = e.masked_fill(~allowed, -1e4)
            loss_sum += float(nn.functional.cross_entropy(s, start) + nn.functional.cross_entropy(e, end)) / 2
            n = s.shape[1]
            pair = s[:, :, None] + e[:, None, :]
            band = torch.triu(torch.ones(n, n, dtype=torch.bool)) & ~torch.triu(
                torch.ones(n, n, dtype=torch.bool), max_span
            )
            band[0, :] = False
            pair = pair.masked_fill(~band, -1e9)
            best = pair.flatten(1).max(1)
            null = s[:, 0] + e[:, 0]
            for j in range(len(ids)):
                bs, be = divmod(int(best.indices[j]), n)
                margins.append(float(best.values[j] - null[j]))
                labels.append(int(start[j]) > 0)
                if int(start[j]) > 0:
                    n_ans += 1
                    hits += int(bs == int(start[j]) and be == int(end[j]))
    model.train()
    m, lab = np.array(margins), np.array(labels)
    return {
        "loss": loss_sum / math.ceil(len(feats) / 32),
        "span_exact": hits / max(n_ans, 1),
        "margins": m,
        "labels": lab,
        "answer": np.array(answer),
    }


def save_adapter(model: Reader, out: Path, meta: dict) -> str:
    """Write LoRA factors and the head as float16 npz (+ meta json) and a .sha256 beside it."""
    arrays: dict[str, np.ndarray] = {}
    for li, layer in enumerate(model.enc.encoder.layer):
        for path, short in TARGETS.items():
            mod = layer.get_submodule(path)
            arrays[f"l{li}.{short}.A"] = mod.A.detach().numpy().astype(np.float16)
            arrays[f"l{li}.{short}.B"] = (mod.B.detach() * mod.scale).numpy().astype(np.float16)
    arrays["head.w"] = model.head.weight.detach().numpy().astype(np.float16)
    arrays["head.b"] = model.head.bias.detach().numpy().astype(np.float16)
    arrays["answer.w"] = model.answer.weight.detach().numpy().astype(np.float16)
    arrays["answer.b"] = model.answer.bias.detach().numpy().astype(np.float16)
    arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as fh:  # np.savez writes zip entries with fixed timestamps: same weights, same bytes
        np.savez_compressed(fh, **arrays)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    out.with_suffix(out.suffix + ".sha256").write_text(f"{digest}  {out.name}\n")
    return digest


def main() -> None:
    """Parse arguments, train, evaluate on the dev split and write the adapter."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=Path("bot/answer/reader_adapter.npz"))
    ap.add_argument("--cache-dir", type=Path, default=Path("/work/cache/kabar"))
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--q-max", type=int, default=48)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=8e-4)
    ap.add_argument("--limit", type=int, default=0, help="use only this many train examples (smoke runs)")
    ap.add_argument("--dev-limit", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument(
        "--init", type=Path, help="continue from this adapter (same rank; fewer layers fill the first ones)"
    )
    ap.add_argument("--twist-share", type=float, default=0.0, help="share of questions also asked twisted")
    ap.add_argument("--answer-weight", type=float, default=0.0, help="weight of the answerability loss")
    args = ap.parse_args()

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    t0 = time.time()
    model_dir = ensure_e5_model(args.cache_dir)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    train_ex, dev_ex = load_split(seed=args.seed, twist_share=args.twist_share)
    rng = random.Random(args.seed)
    if args.limit:
        train_ex = rng.sample(train_ex, args.limit)
    if args.dev_limit:
        dev_ex = random.Random(args.seed).sample(dev_ex, args.dev_limit)
    train_f = [f for f in (featurize(e, tok, args.max_len, args.q_max) for e in train_ex) if f]
    dev_f = [f for f in (featurize(e, tok, args.max_len, args.q_max) for e in dev_ex) if f]
    print(f"train {len(train_f)}/{len(train_ex)} dev {len(dev_f)}/{len(dev_ex)} features", flush=True)

    model = Reader(model_dir, args.layers, args.rank, args.alpha, args.seed)
    if args.init:
        model.load_adapter(args.init)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    print(f"trainable parameters: {sum(p.numel() for p in params):,}", flush=True)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    plan = []
    whole, frac = int(args.epochs), args.epochs - int(args.epochs)
    for ep in range(whole + (1 if frac else 0)):
        bb = batches(train_f, args.batch, rng)
        plan += bb if ep < whole else bb[: int(len(bb) * frac)]
    total = len(plan)
    warm = max(1, total // 16)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min((k + 1) / warm, max(0.0, (total - k) / max(1, total - warm)))
    )
    run = 0.0
    for step, batch in enumerate(plan, 1):
        ids, mask, allowed, start, end = collate(batch)
        s, e, a = model(ids, mask)
        s = s.masked_fill(~allowed, -1e4)
        e = e.masked_fill(~allowed, -1e4)
        loss = (nn.functional.cross_entropy(s, start) + nn.functional.cross_entropy(e, end)) / 2
        if args.answer_weight:
            target = (start > 0).float()
            loss = loss + args.answer_weight * nn.functional.binary_cross_entropy_with_logits(a, target)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        run = 0.98 * run + 0.02 * loss.item() if step > 1 else loss.item()
        if step % 20 == 0 or step == total or step <= 3:
            print(f"step {step}/{total} loss {run:.3f} {time.time() - t0:.0f}s", flush=True)
    train_s = time.time() - t0
    res = evaluate(model, dev_f)
    m, lab = res["margins"], res["labels"]
    thr = float(np.quantile(m[lab], 0.05)) if lab.any() else 0.0  # refuse at most ~5% of dev answerable
    refused_unans = float((m[~lab] < thr).mean()) if (~lab).any() else float("nan")
    print(
        f"dev loss {res['loss']:.3f} span_exact {res['span_exact']:.3f} threshold@5% {thr:.2f} "
        f"unanswerable refused {refused_unans:.3f} train {train_s:.0f}s",
        flush=True,
    )
    kinds = np.array([f["kind"] for f in dev_f])
    for kind in ("cut", "other", "twisted"):
        pick = lab | (kinds == kind)
        if (kinds == kind).any():
            print(
                f"dev AUC vs {kind}: margin {auc(m[pick & lab], m[pick & ~lab]):.3f} "
                f"answer head {auc(res['answer'][pick & lab], res['answer'][pick & ~lab]):.3f}",
                flush=True,
            )
    meta = {
        "base": model_dir.name,
        "layers": args.layers,
        "rank": args.rank,
        "alpha": args.alpha,
        "max_len": args.max_len,
        "q_max": args.q_max,
        "q_prefix": Q_PREFIX,
        "p_prefix": P_PREFIX,
        "seed": args.seed,
        "dev_threshold": round(thr, 4),
        "train_seconds": round(train_s),
        "train_examples": len(train_f),
        "epochs": args.epochs,
        "lr": args.lr,
        "init": args.init.name if args.init else None,
        "twist_share": args.twist_share,
        "answer_weight": args.answer_weight,
    }
    digest = save_adapter(model, args.out, meta)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB) sha256 {digest[:16]}", flush=True)


if __name__ == "__main__":
    main()
