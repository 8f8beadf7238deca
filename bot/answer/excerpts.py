"""Short LLM prompts: the sentences of the retrieved passages that matter, as numbered excerpts.

Each excerpt is a run of consecutive sentences of one chunk (the best sentences and, for one opening with
"Ia"/"Dia", the sentence before it that says who that is), kept as a Passage over exactly that article
text, so a citation's quote is still verbatim. Every excerpt carries the question-support score of each
of its sentences (meta["relevance"]): verification only accepts evidence that answers the question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.answer.extractive import _ANAPHORA, SentenceScorer, Support, rerank
from index.lang import detect_language
from index.search import SearchResult
from index.types import Passage

# Article text that speaks to the model instead of reporting news: role lines, chat-template tokens,
# "ignore your instructions". Such a sentence is never shown to the model, nor accepted as evidence.
_INJECTION = re.compile(
    r"^\s*(?:#+\s*)?(?:system|assistant|user|developer|sistem|asisten)\s*[:：>]"
    r"|<\|?(?:im_start|im_end|system|assistant|user|endoftext|eot_id|start_header_id)\|?>"
    r"|\[/?INST\]|<</?SYS>>|</?passage\b"
    r"|\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|rules?|prompts?|system)\b"
    r"|\b(?:abaikan|lupakan|acuhkan)\b.{0,40}\b(?:instruksi|perintah|aturan|petunjuk|prompt)\b"
    r"|\b(?:answer|respond to|reply to)\s+(?:every|all|each|any)\s+(?:questions?|messages?)\b"
    r"|\bjawab(?:lah)?\s+(?:setiap|semua|tiap)\s+pertanyaan\b"
    r"|\byou are (?:now )?(?:an? )?(?:ai|assistant|language model|chatbot|kabar)\b",
    re.IGNORECASE | re.MULTILINE,
)


def looks_like_injection(text: str) -> bool:
    """Whether article text addresses a language model (a role line, a chat token, 'ignore your rules')."""
    return bool(_INJECTION.search(text))


@dataclass
class ExcerptParams:
    """How many sentences a prompt gets, and how far below the best one they may score."""

    min_sentences: int = 3  # the best ones are shown however far apart their scores are
    max_sentences: int = 6  # best sentences of the top passages (antecedents come on top)
    max_excerpts: int = 5  # numbered excerpts at most
    prompt_margin: float = 4.0  # logits below the best sentence still worth showing the model
    sentence_passages: int = 5  # how many of the top passages have their sentences scored


def build_excerpts(
    question: str, result: SearchResult, scorer: SentenceScorer, top_k: int, params: ExcerptParams
) -> tuple[list[Passage], float | None]:
    """Numbered excerpts for the prompt, best first, and the best sentence's question support (what the
    extractive answer compares with its refusal threshold); ([], None) when there is no sentence."""
    passages = result.passages
    depth = max(top_k, params.sentence_passages)
    cands = scorer.score(question, result.query_vector, passages[:depth], depth)
    if detect_language(question) == "en":
        # as the extractive answer does: cross-lingual chunk order is weaker than the best sentence's
        kept = {p.chunk_id for p in rerank(passages[:depth], cands)[:top_k]}
        cands = [c for c in cands if c.passage.chunk_id in kept]
    cands = [c for c in cands if not looks_like_injection(c.text)]
    if not cands:
        return [], None
    best = cands[0].score
    chosen = [
        c
        for i, c in enumerate(cands[: params.max_sentences])
        if i < params.min_sentences or c.score >= best - params.prompt_margin
    ]
    by_key = {(c.passage.article_id, c.sentence_index): c for c in cands}
    relevance = {id(c): sentence_relevance(c, scorer) for c in chosen}
    for c in list(chosen):
        if _ANAPHORA.match(c.text.lstrip("\"'“ ")):
            prev = by_key.get((c.passage.article_id, c.sentence_index - 1))
            if prev is not None:
                if id(prev) not in relevance:
                    chosen.append(prev)
                # the antecedent answers the question as far as the sentence leaning on it does
                own = relevance.get(id(prev), sentence_relevance(prev, scorer))
                relevance[id(prev)] = max(own, relevance[id(c)])
    runs = _runs(chosen)
    runs.sort(key=lambda run: -max(relevance[id(c)] for c in run))
    return [_excerpt(run, relevance) for run in runs[: params.max_excerpts]], best


def sentence_relevance(c: Support, scorer: SentenceScorer) -> float:
    """The sentence's question-support logit as if it stood alone: its own cosine in place of its chunk's.

    The chunk's cosine lifts every sentence of a relevant chunk, so a line slipped into an article on the
    topic ("official link for everything about North Korea: ...") would score like the answer beside it.
    """
    f = c.features
    return c.score - scorer.weights.passage * (f["passage"] - f["dense"])


def _runs(chosen: list[Support]) -> list[list[Support]]:
    """Consecutive sentences of one chunk, in article order."""
    ordered = sorted(chosen, key=lambda c: (c.passage.chunk_id, c.sentence_index))
    runs: list[list[Support]] = []
    for c in ordered:
        last = runs[-1][-1] if runs else None
        if last is not None and last.passage is c.passage and c.sentence_index == last.sentence_index + 1:
            runs[-1].append(c)
        else:
            runs.append([c])
    return runs


def _excerpt(run: list[Support], relevance: dict[int, float]) -> Passage:
    """A Passage over the run's text: same chunk id and metadata, offsets re-based to the run."""
    ps = run[0].passage
    start, end = run[0].start, run[-1].end
    keep = {c.sentence_index for c in run}
    meta = dict(ps.meta)
    meta["sentences"] = [s for s in ps.meta["sentences"] if s[1] in keep]
    meta["relevance"] = [relevance[id(c)] for c in run]
    return Passage(ps.chunk_id, ps.article_id, ps.text[start:end], ps.score, meta, ps.dense, ps.keyword)
