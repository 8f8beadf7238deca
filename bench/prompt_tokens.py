"""Prompt tokens of LLM answers: the short excerpt prompt against the old five-whole-chunks prompt.

    python bench/prompt_tokens.py --qa tests/data/seed_eval.jsonl [--qa ...] [--limit N] [--gguf FILE]

Indexes each set's gold passages (plus tests/data/indosum_sample.jsonl as distractors) in a temporary
dir with the answer embedder, builds the prompt each question would get, and counts its tokens with the
e5 tokenizer and, given a GGUF (llama-cpp-python installed), with that model's own tokenizer.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.answer.generate import prompt_tokens  # noqa: E402
from bot.app import answer_embedder_for, engine_for  # noqa: E402
from bot.evaluate import datasets  # noqa: E402
from bot.settings import Settings  # noqa: E402
from index.ingest import index_paths  # noqa: E402
from index.lang import detect_language  # noqa: E402
from index.search import Searcher  # noqa: E402
from index.store import Store  # noqa: E402


class _NoLLM:
    name = "none"

    def chat(self, messages, *, on_token=None, schema=None):  # pragma: no cover - never called
        raise AssertionError

    def close(self) -> None:
        pass


def old_messages(question: str, language: str, passages) -> list[dict[str, str]]:
    """The prompt before short excerpts (commit d2ca2ac): five whole chunks numbered [1]..[5]."""
    system = subprocess.run(
        ["git", "show", f"d2ca2ac:prompts/system.{language}.txt"], capture_output=True, text=True, cwd=ROOT
    ).stdout
    answer = subprocess.run(
        ["git", "show", f"d2ca2ac:prompts/answer.{language}.txt"], capture_output=True, text=True, cwd=ROOT
    ).stdout
    blocks = []
    for i, ps in enumerate(passages, 1):
        head = " · ".join(filter(None, [ps.meta.get("title"), ps.meta.get("date")]))
        blocks.append(f"[{i}] {head}\n{ps.text.strip()}" if head else f"[{i}] {ps.text.strip()}")
    user = answer.format(passages="\n\n".join(blocks), question=question)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--qa", action="append", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--gguf", type=Path, default=None)
    args = ap.parse_args()
    settings = Settings.load(None)
    embedder = answer_embedder_for(settings)
    llama = None
    if args.gguf:
        from llama_cpp import Llama

        llama = Llama(model_path=str(args.gguf), vocab_only=True, verbose=False)

    def llama_count(messages) -> int:
        assert llama is not None
        return sum(len(llama.tokenize(m["content"].encode(), add_bos=False)) for m in messages)

    distractors = ROOT / "tests" / "data" / "indosum_sample.jsonl"
    for qa in args.qa:
        items = datasets.read_qa(qa, args.limit)
        with tempfile.TemporaryDirectory() as tmp:
            gold = Path(tmp) / "gold.jsonl"
            datasets.write_jsonl(datasets.gold_corpus(items, 0.0), gold)
            store = Store(Path(tmp) / "data", embedder.name, embedder.dim)
            index_paths([gold, distractors], store, embedder)
            engine = engine_for(Searcher(store, embedder), _NoLLM())  # type: ignore[arg-type]
            assert engine.llm is not None
            new, old, new_llama, old_llama, asked = [], [], [], [], 0
            for it in items:
                q = it.question
                language = detect_language(q)
                result = engine.searcher.search(q, engine.extractive.depth(q, engine.top_k))
                excerpts = engine.llm.excerpts(q, result, engine.top_k)
                before = old_messages(q, language, result.passages[: engine.top_k])
                old.append(prompt_tokens(before, embedder))  # type: ignore[arg-type]
                if llama:
                    old_llama.append(llama_count(before))
                if not excerpts:
                    continue  # nothing answers it: the model is not asked
                asked += 1
                messages = engine.llm.messages(q, language, excerpts)
                new.append(prompt_tokens(messages, embedder))
                if llama:
                    new_llama.append(llama_count(messages))
            store.close()
        line = (
            f"{qa.name}: {len(items)} questions, {asked} sent to the model; prompt tokens p50 (e5) "
            f"{statistics.median(new):.0f} (max {max(new)}), old prompt {statistics.median(old):.0f}"
        )
        if llama:
            line += (
                f"; with {args.gguf.name}'s tokenizer p50 {statistics.median(new_llama):.0f}"
                f" (max {max(new_llama)}), old prompt {statistics.median(old_llama):.0f}"
            )
        print(line)


if __name__ == "__main__":
    main()
