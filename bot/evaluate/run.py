"""Asking an eval set: the eval index (gold passages + distractors), then every question through the engine.

The engine's searcher is wrapped (not swapped) in one that searches deeper, so recall@k can be scored on
exactly the ranking whose top_k the engine answered from.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.answer.engine import Engine
from bot.answer.extractive import ExtractiveAnswerer
from bot.evaluate.datasets import EvalItem, gold_corpus, read_jsonl, write_jsonl
from bot.evaluate.metrics import KABAR, QuestionResult, Ranking
from index.clean import sanitize_id
from index.lang import detect_language
from index.search import Searcher, SearchResult
from index.store import Store

if TYPE_CHECKING:
    from bot.app import Kabar
    from index.indexer import Indexer


class RecordingSearcher(Searcher):
    """The engine's searcher, asked `depth` deep so recall@k can be scored; hands the engine its top_k.

    Fusion ranks every candidate before cutting, so the engine's top_k are exactly the first top_k of
    the deeper ranking: the answers are those `kabar ask` gives.
    """

    def __init__(self, inner: Searcher, depth: int):
        super().__init__(inner.store, inner.embedder, inner.params)
        self.depth = depth
        self.last: SearchResult | None = None

    def search(self, query: str, top_k: int = 5, query_vector: np.ndarray | None = None) -> SearchResult:
        """Search `depth` deep, remember the ranking, return the top_k."""
        res = super().search(query, max(top_k, self.depth), query_vector)
        self.last = res
        return SearchResult(res.passages[:top_k], res.query_vector, res.timings_ms)


class Baselines:
    """BM25 alone, dense alone, and llama-index's VectorStoreIndex retriever as it comes (top-k 2)."""

    def __init__(self, searcher: Searcher, depth: int):
        from llama_index.core import VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter

        from index.llama_adapter import LlamaIndexEmbedding

        self.searcher = searcher
        self.depth = depth
        assert isinstance(searcher.store, Store)  # kabar eval runs embedded (eval_cmd refuses server mode)
        index = VectorStoreIndex.from_vector_store(
            searcher.store.vector_store,
            embed_model=LlamaIndexEmbedding(searcher.embedder),
            # Never used for retrieval, but the default splitter would download OpenAI's tokenizer.
            transformations=[SentenceSplitter(tokenizer=str.split)],
        )
        self.retriever = index.as_retriever()  # default similarity_top_k

    def run(self, question: str, query_vector: np.ndarray, embed_ms: float) -> dict[str, Ranking]:
        """Rankings of the three baselines; dense reuses Kabar's query vector (its embed time is added)."""
        out: dict[str, Ranking] = {}
        t0 = time.perf_counter()
        kw = self.searcher.keyword.search(question, self.depth)
        t1 = time.perf_counter()
        out["bm25"] = Ranking([_article_of(c) for c, _ in kw], (t1 - t0) * 1e3)
        dense = self.searcher.store.dense_search(query_vector, self.depth)
        t2 = time.perf_counter()
        out["dense"] = Ranking([_article_of(c) for c, _ in dense], embed_ms + (t2 - t1) * 1e3)
        nodes = self.retriever.retrieve(question)  # embeds the question itself, as out of the box
        t3 = time.perf_counter()
        ids = [str(n.node.metadata.get("article_id") or _article_of(n.node.node_id)) for n in nodes]
        out["llama-index"] = Ranking(ids, (t3 - t2) * 1e3)
        return out


def engine_order(retrieved: Sequence[str], res: SearchResult) -> list[str]:
    """Article ids in the order the engine ranked its passages (it may rerank the searcher's first few),
    followed by the rest of the deeper search."""
    article = {p.chunk_id: p.article_id for p in res.passages}
    head = [c for c in retrieved if c in article]
    seen = set(head)
    return [article[c] for c in head] + [p.article_id for p in res.passages if p.chunk_id not in seen]


def _article_of(chunk_id: str) -> str:
    return chunk_id.rsplit(":", 1)[0]


_MARKER = re.compile(r"\s*\[\d+\]")


def prediction_text(answer: Any) -> str:
    """What is scored against the gold answers: the quotes (extractive), else the text without markers."""
    if answer.refused:
        return ""
    if answer.mode == "extractive":
        return " ".join(c.quote for c in answer.citations)
    return _MARKER.sub("", answer.answer)


def marked_span(answer: Any) -> str | None:
    """The answer phrase marked in the first citation that has one."""
    for c in answer.citations:
        if c.answer_span:
            return c.quote[c.answer_span[0] : c.answer_span[1]]
    return None


def _ignore(piece: str) -> None:
    pass


def run_questions(
    engine: Engine,
    items: Sequence[EvalItem],
    depth: int,
    baselines: bool = False,
    progress: Callable[[int, int], None] | None = None,
    use_llm: bool | None = None,
    compare: ExtractiveAnswerer | None = None,
) -> list[QuestionResult]:
    """Ask every question through the engine (and the baselines); one result per question.

    `use_llm` as `Engine.answer` takes it: None answers with the LLM when one is configured. `compare`, an
    other extractive answerer, answers from the same passages too (its result in `QuestionResult.compare`).
    """
    llm = engine.uses_llm(use_llm)
    recorder = RecordingSearcher(engine.searcher, depth)
    asking = Engine(recorder, engine.extractive, engine.llm, top_k=engine.top_k)
    base = Baselines(engine.searcher, depth) if baselines else None
    results: list[QuestionResult] = []
    for i, it in enumerate(items):
        recorder.last = None
        # streamed, as a chat would be, so the time to the model's first word is measured
        answer = asking.answer(it.question, use_llm=llm, on_token=_ignore if llm else None)
        res = recorder.last or recorder.search(it.question, depth)
        timings = answer.timings_ms
        rankings = {KABAR: Ranking(engine_order(answer.retrieved, res), timings.get("retrieve", 0.0))}
        if base is not None:
            rankings.update(base.run(it.question, res.query_vector, res.timings_ms.get("embed", 0.0)))
        results.append(
            QuestionResult(
                it,
                rankings,
                answer.refused,
                prediction_text(answer),
                [(c.article_id, c.quote) for c in answer.citations],
                timings.get("total", 0.0),
                answer.support,
                llm,
                answer.notice,
                answer.checked_sentences,
                answer.dropped_sentences,
                answer.mode,
                answer.attributed_by_kabar,
                answer.prompt_tokens,
                timings.get("first_token"),
                marked_span(answer),
                answerable=answer.answerable,
            )
        )
        if compare is not None:
            results[-1].compare = _compared(compare, it, res, engine.top_k, timings.get("retrieve", 0.0))
        if progress is not None:
            progress(i + 1, len(items))
    return results


def _compared(
    answerer: ExtractiveAnswerer, it: EvalItem, res: SearchResult, top_k: int, retrieve_ms: float
) -> QuestionResult:
    """What `answerer` makes of the passages the engine answered from (timed with the same retrieval)."""
    t0 = time.perf_counter()
    depth = answerer.depth(it.question, top_k)
    shown = SearchResult(res.passages[:depth], res.query_vector, res.timings_ms)
    language = detect_language(it.question)
    answer = answerer.answer(it.question, it.question, language, shown, top_k)
    ms = (time.perf_counter() - t0) * 1e3 + retrieve_ms
    return QuestionResult(
        it,
        {},
        answer.refused,
        prediction_text(answer),
        [(c.article_id, c.quote) for c in answer.citations],
        ms,
        answer.support,
        span=marked_span(answer),
    )


def support_answerer(engine: Engine) -> ExtractiveAnswerer | None:
    """The extractive answerer the trained ranker replaced, for side-by-side scoring (None without one)."""
    ex = engine.extractive
    return None if ex.ranker is None else ExtractiveAnswerer(ex.scorer, ex.max_sentences, ex.rerank_depth)


# --- the eval index ----------------------------------------------------------------------------------

GOLD_FILE = "eval_gold.jsonl"


def prepare_index(
    kabar: Kabar,
    items: Sequence[EvalItem],
    corpora: Sequence[Path],
    absent_share: float,
    progress: Callable[[str, int, int], None] | None = None,
    indexer: Indexer | None = None,
) -> dict[str, Any]:
    """Index these items' gold passages plus the distractor corpora in the data dir.

    Incremental, so a reused `--data-dir` embeds only what changed. The gold passages of an earlier run
    that this one does not index are removed (they would be "absent" passages that are present);
    distractors of earlier runs are kept, so a big distractor index survives a run without `--corpus`.
    `indexer` (default: the one over Kabar's own embedder) embeds them, e.g. with the bulk embedder.
    """
    records = gold_corpus(items, absent_share)
    gold = kabar.data_dir / GOLD_FILE
    with (indexer or kabar.indexer()).writer() as w:
        keep = {sanitize_id(r["doc_id"]) for r in records}
        old = {sanitize_id(str(r.get("doc_id", ""))) for _, r in read_jsonl(gold)} if gold.exists() else set()
        indexed = w.store.article_hashes()
        stale = sorted(a for a in old - keep if a in indexed)
        w.remove(stale)
        write_jsonl(records, gold)
        report = w.sync([gold, *corpora], progress=progress)
    assert isinstance(kabar.store, Store)  # kabar eval runs embedded (eval_cmd refuses server mode)
    kabar.store.refresh()  # the engine's store sees what the writer's connection wrote
    indexed = kabar.store.article_hashes()
    lost = 0
    for it in items:  # a passage the loader rejected cannot be retrieved: score its questions as absent
        if it.gold_id is not None and it.gold_id not in indexed:
            it.gold_id = None
            lost += 1
    return {
        "gold_documents": len(records),
        "gold_not_indexed_questions": lost,
        "added": report.added,
        "updated": report.updated,
        "removed": len(stale),
        "chunks_embedded": report.chunks_embedded,
        "seconds": round(report.seconds, 1),
        "skipped": [f"{path}: {reason}" for path, reason in report.skipped],
        **kabar.store.stats(),
    }
