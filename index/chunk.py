"""Cut an article into overlapping runs of sentences that fit the embedding model."""

from __future__ import annotations

import logging
from collections.abc import Callable

from index.sentences import split_sentences
from index.types import Article, Chunk, Sentence

log = logging.getLogger(__name__)

CountTokens = Callable[[str], int]

MAX_CONTEXT_SHARE = 4  # the title/date line may use at most 1/4 of the token budget


def chunk_article(
    article: Article,
    count_tokens: CountTokens,
    max_tokens: int = 512,
    target_tokens: int = 160,
    overlap: int = 1,
) -> list[Chunk]:
    """Chunks of consecutive sentences, about `target_tokens` each, ending at paragraph ends when they can.

    Each chunk repeats the last `overlap` sentences of the one before, so a sentence and its predecessor
    share a chunk. Guaranteed: count_tokens(chunk.embed_text) <= max_tokens. A sentence too long to embed
    is cut at word boundaries into pieces that count as sentences (indices stay unique and consecutive).
    """
    context = context_line(article, count_tokens, max_tokens)
    units = _fit_sentences(article.text, split_sentences(article.text), context, count_tokens, max_tokens)

    def size(a: int, b: int) -> int:
        return count_tokens(_embed_text(context, article.text[units[a].start : units[b - 1].end]))

    chunks: list[Chunk] = []
    new = 0  # first sentence not yet in any chunk
    prev_start = -1
    while new < len(units):
        start = max(new - overlap, prev_start + 1, 0)
        while start < new and size(start, new + 1) > max_tokens:
            start += 1  # the overlap does not fit next to this sentence: drop it
        min_end = min(len(units), max(new + 1, start + overlap + 1))
        end = _choose_end(units, start, new, min_end, size, max_tokens, target_tokens)
        span = units[start:end]
        text = article.text[span[0].start : span[-1].end]
        chunks.append(Chunk(article.article_id, len(chunks), text, span, context))
        prev_start, new = start, end
    return chunks


def context_line(article: Article, count_tokens: CountTokens, max_tokens: int) -> str:
    """'Judul: ... | Tanggal: YYYY-MM-DD' (missing parts left out), shortened to fit its share of tokens."""
    budget = max_tokens // MAX_CONTEXT_SHARE
    words = (article.title or "").split()
    while True:
        parts = [f"Judul: {' '.join(words)}"] if words else []
        if article.date:
            parts.append(f"Tanggal: {article.date}")
        line = " | ".join(parts)
        if not line or count_tokens(line) <= budget:
            return line
        if not words:
            return ""
        words = words[: len(words) * 3 // 4]  # an absurdly long title: shorten it


def _embed_text(context: str, text: str) -> str:
    return f"{context}\n{text}" if context else text


def _choose_end(
    units: list[Sentence],
    start: int,
    new: int,
    min_end: int,
    size: Callable[[int, int], int],
    max_tokens: int,
    target_tokens: int,
) -> int:
    """Exclusive end of the chunk that starts at `start` and must take in sentence `new`.

    The end is at least `min_end` when that fits, so that the next chunk, which repeats the overlap,
    does not swallow this one whole.
    """
    end = new + 1
    sizes = {end: size(start, end)}  # fits: the caller dropped overlap until it did
    limit = min(max_tokens, int(target_tokens * 1.5))  # no end past this is chosen (but min_end)
    while end < len(units):
        s = size(start, end + 1)
        if s > max_tokens or (s > limit and end >= min_end):
            break
        end += 1
        sizes[end] = s
    # everything left fits and is not much over target: take it
    if end == len(units) and sizes[end] <= target_tokens * 1.25:
        return end
    ends = {e: s for e, s in sizes.items() if e >= min_end} or {end: sizes[end]}
    at_target = max((e for e, s in ends.items() if s <= target_tokens), default=min(ends))
    paragraph_ends = [e for e in ends if e == len(units) or units[e].paragraph != units[e - 1].paragraph]
    before = [e for e in paragraph_ends if e <= at_target and ends[e] >= target_tokens / 2]
    if before:
        return max(before)
    after = [e for e in paragraph_ends if e > at_target and ends[e] <= target_tokens * 1.5]
    if after:
        return min(after)
    return at_target


def _fit_sentences(
    text: str, sentences: list[Sentence], context: str, count_tokens: CountTokens, max_tokens: int
) -> list[Sentence]:
    """The sentences, with any that cannot be embedded alone cut into pieces of at most half the budget."""
    units: list[Sentence] = []
    for s in sentences:
        if count_tokens(_embed_text(context, s.text)) <= max_tokens:
            units.append(s)
            continue
        log.debug("sentence %d (%d chars) is too long to embed: cutting it", s.index, len(s.text))
        for start, end in _pieces(text, s.start, s.end, context, count_tokens, max_tokens):
            units.append(Sentence(text[start:end], s.paragraph, 0, start, end))
    for i, u in enumerate(units):
        u.index = i
    return units


def _pieces(
    text: str, start: int, end: int, context: str, count_tokens: CountTokens, max_tokens: int
) -> list[tuple[int, int]]:
    """Cut text[start:end] at word boundaries into pieces that fit in half the budget (with the context)."""

    def fits(a: int, b: int) -> bool:
        return count_tokens(_embed_text(context, text[a:b])) <= max_tokens // 2

    def fits_at_all(a: int, b: int) -> bool:
        return count_tokens(_embed_text(context, text[a:b])) <= max_tokens

    # word boundaries (piece ends), found once: a 2 MB sentence must not be rescanned for every piece
    cuts = [i for i in range(start + 1, end) if text[i].isspace() and not text[i - 1].isspace()] + [end]
    pieces = []
    first = 0  # cuts[first] is the first cut after `start`
    while start < end:
        while cuts[first] <= start:
            first += 1
        # gallop to a cut that does not fit, then binary search below it: the count is never taken over
        # much more text than the piece, however long the sentence
        lo, step = first, 1
        while lo + step < len(cuts) and fits(start, cuts[lo + step]):
            lo, step = lo + step, step * 2
        hi = min(lo + step, len(cuts) - 1)
        best = lo if fits(start, cuts[lo]) else -1
        if best >= 0:
            lo = best + 1
            while lo <= hi:
                mid = (lo + hi) // 2
                if fits(start, cuts[mid]):
                    best, lo = mid, mid + 1
                else:
                    hi = mid - 1
        # one word longer than the budget: cut it by characters
        stop = cuts[best] if best >= 0 else _longest_prefix(start, cuts[first], fits, fits_at_all)
        if stop is None:
            raise ValueError(f"max_tokens={max_tokens} is too small to embed a single character")
        pieces.append((start, stop))
        start = stop
        while start < end and text[start].isspace():
            start += 1
    return pieces


def _longest_prefix(start: int, end: int, *tests: Callable[[int, int], bool]) -> int | None:
    """Largest stop with text[start:stop] passing the first test that any prefix passes, or None."""
    for fits in tests:
        stop = _bisect(start, end, fits)
        if stop is not None:
            return stop
    return None


def _bisect(start: int, end: int, fits: Callable[[int, int], bool]) -> int | None:
    lo, hi, best = start + 1, end, None
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(start, mid):
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return best
