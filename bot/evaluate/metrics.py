"""Scores of `kabar eval`: recall@k and MRR per system, answer EM/F1/contains, citations, refusals."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.evaluate.datasets import EvalItem
from index.errors import KabarError

KABAR = "kabar"
BASELINES = ("bm25", "dense", "llama-index")


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
    mode: str = "extractive"  # how the answer was made ("llm", or "extractive" for a fallback)
    attributed_by_kabar: int = 0  # LLM mode: kept sentences whose citation Kabar found
    prompt_tokens: int | None = None  # LLM mode: tokens of the answer prompt
    first_token_ms: float | None = None  # LLM mode: from the question to the model's first streamed word
    span: str | None = None  # the answer phrase marked inside the quotes, when one was
    compare: QuestionResult | None = None  # the support scorer's answer from the same passages
    answerable: float | None = None  # the span reader's answerability logit (KABAR_SCORER=reader)

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
            "answerable": self.answerable,
            "prediction": self.prediction,
            "span": self.span,
            "cited": [a for a, _ in self.citations],
            "total_ms": round(self.total_ms, 1),
        }
        if self.compare is not None:
            c = self.compare
            compared: dict[str, Any] = {
                "refused": c.refused,
                "support": c.support,
                "prediction": c.prediction,
            }
            line["support_scorer"] = compared
        if self.llm:
            line.update(
                notice=self.notice,
                checked_sentences=self.checked_sentences,
                dropped_sentences=self.dropped_sentences,
                mode=self.mode,
                attributed_by_kabar=self.attributed_by_kabar,
                prompt_tokens=self.prompt_tokens,
            )
        return line


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


_NUMBER_MARK = re.compile(r"(?<=\d)[.,](?=\d)")


def words(text: str) -> str:
    """Lower case, punctuation read as a space but inside numbers ("1.500" -> "1500"), single spaces.

    Unlike `normalize` (SQuAD's, kept for EM and F1), a mark does not glue words together: Wikipedia's
    footnotes left "adalah X.[1]" as "x1" and "(1707-1718)" as "17071718", so a quote holding the answer
    verbatim did not contain it word for word.
    """
    return " ".join(_PUNCT.sub(" ", _NUMBER_MARK.sub("", text.lower())).split())


def contains_answer(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the prediction contains a gold answer span (word-aligned, after `words`)."""
    p = f" {words(prediction)} "
    return float(any(words(a) and f" {words(a)} " in p for a in answers))


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
    answered = [r for r in with_answers if not r.refused]
    marked = [r for r in answered if r.span]
    out = {
        "n": len(results),
        "n_answerable": len(answerable),
        "exact_match": _mean([exact_match(r.prediction, r.item.answers) for r in with_answers]),
        "token_f1": _mean([token_f1(r.prediction, r.item.answers) for r in with_answers]),
        "contains_answer": _mean([contains_answer(r.prediction, r.item.answers) for r in with_answers]),
        "span_marked": _ratio(len(marked), len(answered)),
        "span_exact_match": _mean([exact_match(r.span or "", r.item.answers) for r in marked]),
        "span_f1": _mean([token_f1(r.span or "", r.item.answers) for r in marked]),
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
    kept = checked - dropped
    n = len(results)
    fallbacks = [r for r in results if r.notice is not None]
    reasons: dict[str, int] = {}
    for r in fallbacks:  # the notice ends "... (reason), ..." in both languages
        reason = r.notice.split("(", 1)[-1].split(")", 1)[0] if r.notice and "(" in r.notice else "?"
        reasons[reason] = reasons.get(reason, 0) + 1
    tokens = [r.prompt_tokens for r in results if r.prompt_tokens is not None]
    first = [r.first_token_ms for r in results if r.first_token_ms is not None]
    return {
        "sentences_checked": checked,
        "sentences_dropped": dropped,
        "verified_support": _ratio(kept, checked),
        "unsupported_removed": _ratio(dropped, checked),
        "llm_fallbacks": len(fallbacks),
        "fallback_reasons": dict(sorted(reasons.items())),
        "llm_answered": _ratio(sum(r.mode == "llm" and not r.refused for r in results), n),
        "llm_refused": _ratio(sum(r.mode == "llm" and r.refused for r in results), n),
        "llm_fallback_share": _ratio(len(fallbacks), n),
        "attributed_by_kabar": _ratio(sum(r.attributed_by_kabar for r in results), kept),
        "prompt_tokens_p50": _percentile(tokens, 50),
        "first_token_ms_p50": _percentile(first, 50),
        "seconds_per_answer": _mean([r.total_ms / 1000 for r in results]),
    }


def summarize(results: Sequence[QuestionResult], ks: Sequence[int]) -> dict[str, Any]:
    """Metrics per source file and overall: {group: {"answers": ..., "retrieval": {system: ...}}}."""
    groups: dict[str, list[QuestionResult]] = {}
    for r in results:
        groups.setdefault(r.item.source, []).append(r)
    if len(groups) > 1 or not groups:
        groups["overall"] = list(results)
    systems = [KABAR, *(s for s in BASELINES if any(s in r.rankings for r in results))]
    out: dict[str, Any] = {}
    for name, rs in groups.items():
        out[name] = {
            "answers": answer_metrics(rs),
            "retrieval": {s: retrieval_metrics(rs, s, ks) for s in systems},
        }
        compared = [r.compare for r in rs if r.compare is not None]
        if compared:
            out[name]["answers_support"] = answer_metrics(compared)
    return out


def parse_ks(text: str) -> list[int]:
    """'1,5,10' -> [1, 5, 10]."""
    try:
        ks = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise KabarError(f"--k takes positive integers separated by commas, got {text!r}") from None
    if not ks or ks[0] < 1:
        raise KabarError(f"--k takes positive integers separated by commas, got {text!r}")
    return ks
