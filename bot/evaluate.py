"""`kabar eval`: question sets -> an eval index (gold passages + distractors) -> answers -> metrics.

A question set is JSON Lines `{qid, question, answers[], is_impossible, passage_id, passage}` (the format
of ../shared/data/qa), or the NTREX corpus (`sentences_en`/`text_id`), turned into English questions
over Indonesian documents. Every unique gold passage becomes one document of the eval index; a share of
them (`absent_share`, chosen by a hash of the passage) is held out, so their questions measure refusal
when the answer is not in the articles. A record with no passage is such a question too.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import string
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bot.engine import Engine
from index.clean import sanitize_id
from index.errors import KabarError
from index.search import Searcher, SearchResult

if TYPE_CHECKING:
    from bot.app import Kabar

KABAR = "kabar"
BASELINES = ("bm25", "dense", "llama-index")

# --- question sets -----------------------------------------------------------------------------------


@dataclass
class EvalItem:
    """One question of a set, with where its gold passage sits in the eval index."""

    qid: str
    source: str  # the file it came from (metrics are reported per source)
    question: str
    answers: list[str]
    is_impossible: bool = False
    passage_id: str | None = None
    passage: str | None = None
    gold_id: str | None = None  # article id of the gold document in the index; None: absent

    @property
    def kind(self) -> str:
        """'answerable' (gold indexed, answer in it), 'impossible' (gold indexed, no answer), 'absent'."""
        if self.gold_id is None:
            return "absent"
        return "impossible" if self.is_impossible else "answerable"


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a .jsonl or .jsonl.gz file; a bad line says where it is."""
    opener: Callable[..., Any] = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise KabarError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(record, dict):
                raise KabarError(f"{path}:{n}: expected a JSON object")
            yield n, record


def is_ntrex(path: Path) -> bool:
    """True when the file holds NTREX documents (English sentences and an Indonesian text)."""
    for _, record in read_jsonl(path):
        return "sentences_en" in record and "text_id" in record
    return False


def read_qa(path: Path, limit: int | None = None) -> list[EvalItem]:
    """Questions of one QA file (at most `limit`)."""
    items: list[EvalItem] = []
    for n, r in read_jsonl(path):
        if limit is not None and len(items) >= limit:
            break
        question = r.get("question")
        if not isinstance(question, str) or not question.strip():
            raise KabarError(f"{path}:{n}: record has no question")
        answers = r.get("answers") or []
        if not isinstance(answers, list):
            raise KabarError(f"{path}:{n}: `answers` must be a list")
        passage = r.get("passage") or None
        items.append(
            EvalItem(
                qid=str(r.get("qid", f"{path.stem}-{n}")),
                source=path.name,
                question=question.strip(),
                answers=[str(a) for a in answers if str(a).strip()],
                is_impossible=bool(r.get("is_impossible")),
                passage_id=str(r["passage_id"]) if passage and r.get("passage_id") else None,
                passage=passage,
            )
        )
    return items


def read_ntrex(path: Path, limit: int | None = None, per_doc: int = 2, min_words: int = 8) -> list[EvalItem]:
    """English sentences (the first `per_doc` of >= `min_words` words) asking for their Indonesian text."""
    items: list[EvalItem] = []
    for n, r in read_jsonl(path):
        if "sentences_en" not in r or "text_id" not in r:
            raise KabarError(f"{path}:{n}: an NTREX record needs `sentences_en` and `text_id`")
        doc_id = str(r.get("doc_id", f"ntrex-{n}"))
        sentences = [s for s in r["sentences_en"] if len(s.split()) >= min_words][:per_doc]
        for i, s in enumerate(sentences):
            if limit is not None and len(items) >= limit:
                return items
            items.append(EvalItem(f"{doc_id}-{i}", path.name, s, [], False, doc_id, r["text_id"]))
    return items


def _unit(key: str) -> float:
    """A stable number in [0, 1) for a key."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def gold_corpus(items: Sequence[EvalItem], absent_share: float = 0.0) -> list[dict[str, str]]:
    """Corpus records of the unique gold passages (by text), minus the held-out share; sets `gold_id`.

    Two passage ids with the same text are one document (the first id names it), so a question is never
    counted as missing its passage because a twin of it was retrieved.
    """
    canonical: dict[str, str] = {}  # passage text -> doc id
    records: list[dict[str, str]] = []
    for it in items:
        it.gold_id = None
        if it.passage is None or it.passage_id is None:
            continue
        key = " ".join(it.passage.split())
        doc_id = canonical.get(key)
        if doc_id is None:
            doc_id = canonical[key] = it.passage_id
            if _unit(doc_id) >= absent_share:
                records.append({"doc_id": doc_id, "text": it.passage})
        if _unit(doc_id) >= absent_share:
            it.gold_id = sanitize_id(doc_id)
    return records


def write_jsonl(records: Iterable[dict[str, Any]], path: Path) -> None:
    """Write records as JSON Lines (atomically: a reused data dir never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


# --- running -----------------------------------------------------------------------------------------


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


@dataclass
class Ranking:
    """Article ids of the retrieved chunks (best first) and how long retrieval took."""

    article_ids: list[str]
    ms: float


@dataclass
class QuestionResult:
    """What one question produced: a ranking per system and Kabar's answer."""

    item: EvalItem
    rankings: dict[str, Ranking]
    refused: bool
    prediction: str  # the answer text scored against `answers`
    citations: list[tuple[str, str]] = field(default_factory=list)  # (article_id, quote)
    total_ms: float = 0.0
    support: float | None = None  # the engine's support score of its best sentence
    llm: bool = False  # asked in LLM mode (its answer may still be the extractive fallback)
    notice: str | None = None  # why the LLM answer fell back to the extractive one
    checked_sentences: int = 0  # LLM mode: reply sentences whose citations were verified
    dropped_sentences: int = 0  # LLM mode: of those, removed for lacking a supporting citation

    def to_json(self) -> dict[str, Any]:
        """One line of `--details`: the question, where each system ranked the gold document, the answer."""
        it = self.item
        line = {
            "qid": it.qid,
            "source": it.source,
            "kind": it.kind,
            "question": it.question,
            "answers": it.answers,
            "gold_id": it.gold_id,
            "rank": {
                s: _rank(r.article_ids, it.gold_id) if it.gold_id else None for s, r in self.rankings.items()
            },
            "refused": self.refused,
            "support": self.support,
            "prediction": self.prediction,
            "cited": [a for a, _ in self.citations],
            "total_ms": round(self.total_ms, 1),
        }
        if self.llm:
            line.update(
                notice=self.notice,
                checked_sentences=self.checked_sentences,
                dropped_sentences=self.dropped_sentences,
            )
        return line


class Baselines:
    """BM25 alone, dense alone, and llama-index's VectorStoreIndex retriever as it comes (top-k 2)."""

    def __init__(self, searcher: Searcher, depth: int):
        from llama_index.core import VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter

        from index.embed import LlamaIndexEmbedding

        self.searcher = searcher
        self.depth = depth
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


def run_questions(
    engine: Engine,
    items: Sequence[EvalItem],
    depth: int,
    baselines: bool = False,
    progress: Callable[[int, int], None] | None = None,
    use_llm: bool | None = None,
) -> list[QuestionResult]:
    """Ask every question through the engine (and the baselines); one result per question.

    `use_llm` as `Engine.answer` takes it: None answers with the LLM when one is configured.
    """
    llm = engine.uses_llm(use_llm)
    recorder = RecordingSearcher(engine.searcher, depth)
    original = engine.searcher
    engine.searcher = recorder
    base = Baselines(original, depth) if baselines else None
    results: list[QuestionResult] = []
    try:
        for i, it in enumerate(items):
            recorder.last = None
            answer = engine.answer(it.question, use_llm=llm)
            # LLM mode retrieves through its own reference to the searcher: rank with a search of our own
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
                )
            )
            if progress is not None:
                progress(i + 1, len(items))
    finally:
        engine.searcher = original
    return results


# --- metrics -----------------------------------------------------------------------------------------

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}“”‘’«»–—]")


def normalize(text: str) -> str:
    """Lower case, punctuation dropped ("1.500" -> "1500"), single spaces: SQuAD's, minus English articles."""
    return " ".join(_PUNCT.sub("", text.lower()).split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the prediction equals one gold answer after normalising."""
    p = normalize(prediction)
    return float(any(p == normalize(a) for a in answers))


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """Best token-overlap F1 of the prediction against the gold answers."""
    pred = normalize(prediction).split()
    best = 0.0
    for a in answers:
        gold = normalize(a).split()
        common = sum((Counter(pred) & Counter(gold)).values())
        if common:
            precision, recall = common / len(pred), common / len(gold)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def contains_answer(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the prediction contains a gold answer span (word-aligned, after normalising)."""
    p = f" {normalize(prediction)} "
    return float(any(normalize(a) and f" {normalize(a)} " in p for a in answers))


def _rank(article_ids: Sequence[str], gold: str) -> int | None:
    return next((i + 1 for i, a in enumerate(article_ids) if a == gold), None)


def _mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def retrieval_metrics(results: Sequence[QuestionResult], system: str, ks: Sequence[int]) -> dict[str, Any]:
    """recall@k and MRR of one system over the answerable questions whose gold passage is indexed."""
    scored = [r for r in results if r.item.kind == "answerable" and system in r.rankings]
    ranks = [_rank(r.rankings[system].article_ids, r.item.gold_id or "") for r in scored]
    out: dict[str, Any] = {"n": len(scored)}
    for k in ks:
        out[f"recall@{k}"] = _mean([float(rk is not None and rk <= k) for rk in ranks])
    out["mrr"] = _mean([1.0 / rk if rk else 0.0 for rk in ranks])
    lat = [r.rankings[system].ms for r in results if system in r.rankings]
    out["retrieve_ms_p50"] = _percentile(lat, 50)
    out["retrieve_ms_p95"] = _percentile(lat, 95)
    return out


def _refusal(results: Sequence[QuestionResult], kind: str) -> dict[str, Any]:
    """Refusal precision/recall with `kind` questions as the ones to refuse, answerable ones as the rest."""
    pos = [r for r in results if r.item.kind == kind]
    neg = [r for r in results if r.item.kind == "answerable"]
    tp = sum(r.refused for r in pos)
    fp = sum(r.refused for r in neg)
    return {"n": len(pos), "precision": _ratio(tp, tp + fp) if pos else None, "recall": _ratio(tp, len(pos))}


def answer_metrics(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """Kabar's answers: EM/F1/contains, citation precision, refusals, end-to-end latency."""
    answerable = [r for r in results if r.item.kind == "answerable"]
    with_answers = [r for r in answerable if r.item.answers]
    good = total = 0
    for r in answerable:
        if r.refused:
            continue
        for article_id, quote in r.citations:
            total += 1
            good += article_id == r.item.gold_id or contains_answer(quote, r.item.answers) > 0
    lat = [r.total_ms for r in results]
    out = {
        "n": len(results),
        "n_answerable": len(answerable),
        "exact_match": _mean([exact_match(r.prediction, r.item.answers) for r in with_answers]),
        "token_f1": _mean([token_f1(r.prediction, r.item.answers) for r in with_answers]),
        "contains_answer": _mean([contains_answer(r.prediction, r.item.answers) for r in with_answers]),
        "citation_precision": _ratio(good, total),
        "refused_answerable": _ratio(sum(r.refused for r in answerable), len(answerable)),
        "refusal_impossible": _refusal(results, "impossible"),
        "refusal_absent": _refusal(results, "absent"),
        "total_ms_p50": _percentile(lat, 50),
        "total_ms_p95": _percentile(lat, 95),
    }
    if any(r.llm for r in results):  # extractive runs report no LLM columns at all, not zeros
        out.update(llm_metrics(results))
    return out


def llm_metrics(results: Sequence[QuestionResult]) -> dict[str, Any]:
    """LLM mode: share of reply sentences whose citation verified, share removed, extractive fallbacks.

    Over every question asked (refusals and fallbacks verify no sentence, so they add nothing to the
    sentence shares). While verification removes every unsupported sentence the two shares sum to 1.
    """
    checked = sum(r.checked_sentences for r in results)
    dropped = sum(r.dropped_sentences for r in results)
    return {
        "sentences_checked": checked,
        "sentences_dropped": dropped,
        "verified_support": _ratio(checked - dropped, checked),
        "unsupported_removed": _ratio(dropped, checked),
        "llm_fallbacks": sum(r.notice is not None for r in results),
    }


def summarize(results: Sequence[QuestionResult], ks: Sequence[int]) -> dict[str, Any]:
    """Metrics per source file and overall: {group: {"answers": ..., "retrieval": {system: ...}}}."""
    groups: dict[str, list[QuestionResult]] = {}
    for r in results:
        groups.setdefault(r.item.source, []).append(r)
    if len(groups) > 1 or not groups:
        groups["overall"] = list(results)
    systems = [KABAR, *(s for s in BASELINES if any(s in r.rankings for r in results))]
    return {
        name: {
            "answers": answer_metrics(rs),
            "retrieval": {s: retrieval_metrics(rs, s, ks) for s in systems},
        }
        for name, rs in groups.items()
    }


def parse_ks(text: str) -> list[int]:
    """'1,5,10' -> [1, 5, 10]."""
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise KabarError(f"--k takes positive integers separated by commas, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise KabarError(f"--k takes positive integers separated by commas, got {text!r}")
    return ks


# --- the eval index ----------------------------------------------------------------------------------

GOLD_FILE = "eval_gold.jsonl"


def prepare_index(
    kabar: Kabar,
    items: Sequence[EvalItem],
    corpora: Sequence[Path],
    absent_share: float,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Index these items' gold passages plus the distractor corpora in the data dir.

    Incremental, so a reused `--data-dir` embeds only what changed. The gold passages of an earlier run
    that this one does not index are removed (they would be "absent" passages that are present);
    distractors of earlier runs are kept, so a big distractor index survives a run without `--corpus`.
    """
    from index.ingest import ChunkParams, index_paths
    from index.store import writer_lock

    records = gold_corpus(items, absent_share)
    gold = kabar.data_dir / GOLD_FILE
    with writer_lock(kabar.data_dir):
        keep = {sanitize_id(r["doc_id"]) for r in records}
        old = {sanitize_id(str(r.get("doc_id", ""))) for _, r in read_jsonl(gold)} if gold.exists() else set()
        indexed = kabar.store.article_hashes()
        stale = sorted(a for a in old - keep if a in indexed)
        for article_id in stale:
            kabar.store.remove_article(article_id)
        write_jsonl(records, gold)
        report = index_paths(
            [gold, *corpora],
            kabar.store,
            kabar.embedder,
            chunking=ChunkParams(kabar.settings.chunk_tokens, kabar.settings.chunk_overlap),
            progress=progress,
        )
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
