"""Keyword index: BM25 (bm25s) over chunk texts, with Indonesian-aware tokens."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# Words, and numbers with their separators kept ("1.500", "13.000", "21/10/2024", "3,5") so that they
# stay findable; bm25s's default tokenizer drops 1-character tokens and splits "1.500" into "500".
_TOKEN = re.compile(r"\d+(?:[.,/:-]\d+)*|[^\W\d_]+(?:[-'’][^\W\d_]+)*|\d+", re.UNICODE)

# Function words that carry no topic, in the two languages questions come in.
STOPWORDS = frozenset(
    """
    yang dan di ke dari ini itu dengan untuk pada adalah dalam tidak akan juga atau oleh sebagai telah
    karena sudah bahwa saat ia dia mereka kami kita kamu anda nya pun lah kah tersebut bagi hingga antara
    para sang si serta namun tetapi jika maka agar supaya sebuah seorang suatu ada bisa dapat masih lebih
    apa siapa kapan dimana mana bagaimana mengapa kenapa berapa apakah manakah
    the a an of to in on at for and or is are was were be been by with from that this these those it its
    what who whom when where which why how does did do has have had will would can could about into
    """.split()
)


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer: Snowball's Indonesian stemmer

    return Stemmer.Stemmer("indonesian")


def tokenize(text: str, *, stem: bool = True) -> list[str]:
    """Lower-cased content tokens of a text, stemmed (numbers and names kept whole)."""
    words = [w for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS]
    if not stem:
        return words
    stemmer = _stemmer()
    return [w if w[0].isdigit() else stemmer.stemWord(w) for w in words]


class KeywordIndex:
    """BM25 over chunks; saved in versioned folders so readers never see a half-written index.

    A version is either a full index or, after removals, a pointer to a base version plus the chunk ids
    removed since (skipped at search time), so removing an article does not rebuild the whole index.
    """

    def __init__(self, chunk_ids: Sequence[str], bm25=None, removed: Iterable[str] = ()):
        self.chunk_ids = list(chunk_ids)
        self._bm25 = bm25
        self.removed = frozenset(removed)

    @classmethod
    def build(cls, chunk_ids: Sequence[str], texts: Sequence[str]) -> KeywordIndex:
        """Index texts (one per chunk id)."""
        import bm25s

        if not chunk_ids:
            return cls([])
        bm25 = bm25s.BM25()
        # bm25s needs a non-empty token list per document; a placeholder keeps positions aligned.
        bm25.index([tokenize(t) or ["\x00"] for t in texts], show_progress=False)
        return cls(chunk_ids, bm25)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Top-k (chunk_id, score) with a positive score."""
        if self._bm25 is None or k <= 0:
            return []
        tokens = tokenize(query)
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        want = k
        k = min(k + len(self.removed), len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        hits = [(self.chunk_ids[i], float(scores[i])) for i in top if scores[i] > 0]
        return [(cid, s) for cid, s in hits if cid not in self.removed][:want]

    def save(self, root: Path, version: int) -> None:
        """Write as version `version`, then switch the `current` pointer atomically."""
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".tmp-v{version}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        if self._bm25 is not None:
            self._bm25.save(str(tmp / "bm25"))
        (tmp / "chunk_ids.json").write_text(json.dumps(self.chunk_ids), encoding="utf-8")
        _publish(root, tmp, version)

    @classmethod
    def publish_removal(cls, root: Path, chunk_ids: Iterable[str]) -> int | None:
        """Publish a new version without `chunk_ids`, over the current one's BM25; None when none exists."""
        current = cls.current_version(root)
        if current is None:
            return None
        base, removed = _version_parts(root, current)
        version = current + 1
        tmp = root / f".tmp-v{version}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        (tmp / "base.json").write_text(
            json.dumps({"base": base, "removed": sorted(removed | set(chunk_ids))}), encoding="utf-8"
        )
        _publish(root, tmp, version)
        return version

    @staticmethod
    def current_version(root: Path) -> int | None:
        """Version the pointer names, or None when nothing was saved."""
        try:
            return int((root / "current").read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    @classmethod
    def load(cls, root: Path) -> tuple[KeywordIndex, int | None]:
        """Load the current version (empty index when none)."""
        import bm25s

        version = cls.current_version(root)
        if version is None:
            return cls([]), None
        base, removed = _version_parts(root, version)
        folder = root / f"v{base}"
        chunk_ids = json.loads((folder / "chunk_ids.json").read_text(encoding="utf-8"))
        bm25 = bm25s.BM25.load(str(folder / "bm25")) if chunk_ids else None
        return cls(chunk_ids, bm25, removed), version

    def __len__(self) -> int:
        return len(self.chunk_ids) - len(self.removed)

    def ids(self) -> list[str]:
        """The chunk ids the index can return."""
        return [c for c in self.chunk_ids if c not in self.removed]


def _version_parts(root: Path, version: int) -> tuple[int, frozenset[str]]:
    """(version holding the BM25 data, chunk ids removed since) of a saved version."""
    pointer = root / f"v{version}" / "base.json"
    if not pointer.exists():
        return version, frozenset()
    data = json.loads(pointer.read_text(encoding="utf-8"))
    return int(data["base"]), frozenset(data["removed"])


def _publish(root: Path, tmp: Path, version: int) -> None:
    """Move a finished folder into place as `v<version>`, then switch the `current` pointer atomically."""
    target = root / f"v{version}"
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    pointer = root / "current.tmp"
    pointer.write_text(str(version), encoding="utf-8")
    os.replace(pointer, root / "current")
    _prune_versions(root, version)


def _prune_versions(root: Path, version: int) -> None:
    """Drop old versions; keep the previous one for readers still holding it, and the bases both use."""
    keep = {version, version - 1}
    keep |= {_version_parts(root, v)[0] for v in list(keep) if (root / f"v{v}").exists()}
    for old in root.glob("v*"):
        if old.name not in {f"v{v}" for v in keep}:
            shutil.rmtree(old, ignore_errors=True)
