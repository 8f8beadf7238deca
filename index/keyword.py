"""Keyword index: BM25 over chunk texts, with Indonesian-aware tokens, kept in immutable segments.

Adding articles writes one small new segment and removing them records tombstones, so a re-index costs
what changed, not the whole corpus. Scores use the statistics of all live documents across segments
(document count, document frequencies, average length), so they equal those of one index built from
scratch: how the index was grown never changes an answer.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import zipfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.errors import IndexCorrupt
from index.store import chunk_of

log = logging.getLogger(__name__)

# Words, and numbers with their separators kept ("1.500", "13.000", "21/10/2024", "3,5") so that they
# stay findable; common tokenizers drop 1-character tokens and split "1.500" into "500".
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

K1, B = 1.5, 0.75  # BM25 parameters (Lucene's defaults)
MAX_SEGMENTS = 8  # more than this: the small segments are merged into one
MAX_DEAD_SHARE = 0.2  # more tombstoned rows than this: everything is merged, dropping them


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


@dataclass(eq=False)
class Segment:
    """Term frequencies of some documents, by term (postings), with each document's length."""

    name: str
    keys: list[str]  # document keys (vector ids), row order
    terms: dict[str, int]  # term -> column
    indptr: np.ndarray  # postings of column t: rows[indptr[t]:indptr[t + 1]]
    rows: np.ndarray
    tf: np.ndarray
    lengths: np.ndarray
    _key_set: frozenset[str] | None = field(default=None, repr=False)

    @classmethod
    def build(cls, name: str, keys: Sequence[str], token_lists: Sequence[Sequence[str]]) -> Segment:
        """A segment of these documents (one token list per key)."""
        terms: dict[str, int] = {}
        cols: list[int] = []
        rows: list[int] = []
        tfs: list[int] = []
        for row, tokens in enumerate(token_lists):
            for term, n in Counter(tokens).items():
                cols.append(terms.setdefault(term, len(terms)))
                rows.append(row)
                tfs.append(n)
        lengths = np.array([len(t) for t in token_lists], np.float32)
        return cls._from_triples(
            name,
            list(keys),
            terms,
            np.array(cols, np.int64),
            np.array(rows, np.int64),
            np.array(tfs, np.float32),
            lengths,
        )

    @classmethod
    def _from_triples(cls, name, keys, terms, cols, rows, tfs, lengths) -> Segment:
        order = np.lexsort((rows, cols))
        indptr = np.zeros(len(terms) + 1, np.int64)
        np.cumsum(np.bincount(cols, minlength=len(terms)), out=indptr[1:])
        return cls(name, keys, terms, indptr, rows[order].astype(np.int32), tfs[order], lengths)

    @classmethod
    def merge(cls, name: str, segments: Sequence[Segment], dead: Mapping[str, frozenset[str]]) -> Segment:
        """One segment holding the live documents of several (no text is tokenized again)."""
        terms: dict[str, int] = {}
        keys: list[str] = []
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        lengths: list[np.ndarray] = []
        for seg in segments:
            alive = seg.alive(dead.get(seg.name, frozenset()))
            new_row = np.cumsum(alive) - 1 + len(keys)
            keys += [k for k, a in zip(seg.keys, alive, strict=True) if a]
            lengths.append(seg.lengths[alive])
            col_map = np.array([terms.setdefault(t, len(terms)) for t in seg.terms], np.int64)
            cols = np.repeat(np.arange(len(seg.terms)), np.diff(seg.indptr))
            keep = alive[seg.rows]
            parts.append((col_map[cols[keep]], new_row[seg.rows[keep]], seg.tf[keep]))
        cols_all = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        rows_all = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
        tf_all = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.float32)
        used = np.zeros(len(terms), bool)
        used[cols_all] = True  # terms only dead documents had are dropped
        remap = np.cumsum(used) - 1
        terms = {t: int(remap[c]) for t, c in terms.items() if used[c]}
        length = np.concatenate(lengths) if lengths else np.zeros(0, np.float32)
        return cls._from_triples(name, keys, terms, remap[cols_all], rows_all, tf_all, length)

    def alive(self, dead: frozenset[str]) -> np.ndarray:
        """Mask of the rows whose keys are not in `dead`."""
        return np.array([k not in dead for k in self.keys], bool) if dead else np.ones(len(self.keys), bool)

    def key_set(self) -> frozenset[str]:
        """The keys, as a set (built once)."""
        if self._key_set is None:
            self._key_set = frozenset(self.keys)
        return self._key_set

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """(rows, term frequencies) of the documents holding a term."""
        col = self.terms.get(term)
        if col is None:
            return _EMPTY_ROWS, _EMPTY_TF
        a, b = self.indptr[col], self.indptr[col + 1]
        return self.rows[a:b], self.tf[a:b]

    def save(self, folder: Path) -> None:
        """Write to a folder (written beside it, then renamed, so it is whole or absent)."""
        tmp = folder.with_name(f".tmp-{folder.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        np.savez(tmp / "postings.npz", indptr=self.indptr, rows=self.rows, tf=self.tf, lengths=self.lengths)
        (tmp / "keys.json").write_text(json.dumps(self.keys), encoding="utf-8")
        (tmp / "terms.json").write_text(json.dumps(list(self.terms), ensure_ascii=False), encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)

    @classmethod
    def load(cls, folder: Path) -> Segment:
        """Read a saved segment."""
        with np.load(folder / "postings.npz") as z:
            arrays = {k: z[k] for k in ("indptr", "rows", "tf", "lengths")}
        keys = json.loads((folder / "keys.json").read_text(encoding="utf-8"))
        terms = json.loads((folder / "terms.json").read_text(encoding="utf-8"))
        n_rows, n_postings = len(arrays["lengths"]), len(arrays["rows"])
        if (  # parts that disagree are a damaged segment, not one to search
            len(keys) != n_rows
            or len(arrays["indptr"]) != len(terms) + 1
            or len(arrays["tf"]) != n_postings
            or (n_postings and int(arrays["rows"].max()) >= n_rows)
            or (n_postings and int(arrays["indptr"][-1]) != n_postings)
        ):
            raise ValueError(f"segment {folder.name}: keys, terms and postings disagree")
        return cls(folder.name, keys, {t: i for i, t in enumerate(terms)}, **arrays)


_EMPTY_ROWS = np.zeros(0, np.int32)
_EMPTY_TF = np.zeros(0, np.float32)


@dataclass
class KeywordIndex:
    """BM25 over segments minus tombstoned documents; saved as numbered versions, switched atomically."""

    segments: list[Segment] = field(default_factory=list)
    dead: dict[str, frozenset[str]] = field(default_factory=dict)  # segment name -> its removed keys

    def __post_init__(self) -> None:
        self._alive = [s.alive(self.dead.get(s.name, frozenset())) for s in self.segments]
        self._n = int(sum(a.sum() for a in self._alive))
        total = sum(
            float(s.lengths[a].sum(dtype=np.float64)) for s, a in zip(self.segments, self._alive, strict=True)
        )
        self._avgdl = total / self._n if self._n else 0.0

    @classmethod
    def build(cls, keys: Sequence[str], texts: Sequence[str], name: str = "s0") -> KeywordIndex:
        """Index texts (one per key) as one segment."""
        return cls().updated(name, dict(zip(keys, texts, strict=True)), ())

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Top-k (chunk_id, score) with a positive score; ties go to the smaller id."""
        tokens = tokenize(query)
        if not tokens or k <= 0 or not self._n:
            return []
        per_segment = [np.zeros(len(s.keys), np.float32) for s in self.segments]
        for term in tokens:  # a repeated query word counts again, as in Lucene
            found = [(s.postings(term), a) for s, a in zip(self.segments, self._alive, strict=True)]
            df = sum(int(a[rows].sum()) for (rows, _), a in found)
            if not df:
                continue
            idf = np.log(1 + (self._n - df + 0.5) / (df + 0.5))
            for ((rows, tf), _), scores, seg in zip(found, per_segment, self.segments, strict=True):
                norm = K1 * ((1 - B) + B * seg.lengths[rows] / self._avgdl)
                scores[rows] += (idf * tf / (norm + tf)).astype(np.float32)
        hits: list[tuple[str, float]] = []
        for seg, scores, alive in zip(self.segments, per_segment, self._alive, strict=True):
            rows = np.flatnonzero((scores > 0) & alive)
            if len(rows) > k:  # only the best k of a segment (and ties) can make the overall top k
                kth = np.partition(-scores[rows], k - 1)[k - 1]
                rows = rows[-scores[rows] <= kth]
            hits += [(chunk_of(seg.keys[r]), float(scores[r])) for r in rows]
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:k]

    def keys(self) -> set[str]:
        """Keys of the live documents."""
        return {
            k
            for s, a in zip(self.segments, self._alive, strict=True)
            for k, ok in zip(s.keys, a, strict=True)
            if ok
        }

    def ids(self) -> list[str]:
        """Chunk ids the index can return."""
        return sorted(chunk_of(k) for k in self.keys())

    def __len__(self) -> int:
        return self._n

    def updated(self, name: str, added: Mapping[str, str], removed: Iterable[str]) -> KeywordIndex:
        """A new index with documents added (key -> text) and removed (by key); merges segments as needed."""
        gone = frozenset(removed)
        # tombstones belong to a segment: a key removed and later added again is dead only in the old one
        dead = {s.name: self.dead.get(s.name, frozenset()) | (gone & s.key_set()) for s in self.segments}
        segments = list(self.segments)
        if added:
            keys = sorted(added)
            segments.append(Segment.build(name, keys, [tokenize(added[k]) for k in keys]))
        segments = [s for s in segments if len(dead.get(s.name, ())) < len(s.keys)]
        rows = sum(len(s.keys) for s in segments)
        n_dead = sum(len(dead.get(s.name, ())) for s in segments)
        if n_dead > MAX_DEAD_SHARE * rows:
            segments = [Segment.merge(f"{name}m", segments, dead)]
        elif len(segments) > MAX_SEGMENTS:  # the big one stays; the small ones become one
            big = max(segments, key=lambda s: len(s.keys))
            segments = [big, Segment.merge(f"{name}m", [s for s in segments if s is not big], dead)]
        return KeywordIndex(segments, {s.name: dead[s.name] for s in segments if dead.get(s.name)})

    # --- versions on disk ------------------------------------------------------------------------------
    def save(self, root: Path, version: int) -> None:
        """Write the new segments and a manifest `v<version>.json`, then switch `current` atomically."""
        root.mkdir(parents=True, exist_ok=True)
        published = (_manifest(root, self.current_version(root)) or {}).get("segments", [])
        for seg in self.segments:
            # a name on disk but not published is the leftover of a save killed before its manifest
            # (the rerun reuses the version number, so the name): it is written again, not trusted
            if seg.name not in published:
                seg.save(root / seg.name)
        manifest = {
            "segments": [s.name for s in self.segments],
            "dead": {name: sorted(keys) for name, keys in self.dead.items()},
        }
        tmp = root / f".tmp-v{version}.json"
        tmp.write_text(json.dumps(manifest), encoding="utf-8")
        os.replace(tmp, root / f"v{version}.json")
        pointer = root / "current.tmp"
        pointer.write_text(str(version), encoding="utf-8")
        os.replace(pointer, root / "current")
        _prune(root, version)

    @staticmethod
    def current_version(root: Path) -> int | None:
        """Version the pointer names, or None when nothing was saved."""
        try:
            text = (root / "current").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise damaged(root, e) from None
        if not text.strip().isdigit():  # written whole by os.replace: anything else is damage
            raise damaged(root, f"current holds {text[:20]!r}")
        return int(text)

    @staticmethod
    def exists(root: Path) -> bool:
        """Whether a version in the current layout is saved (an older Kabar's index is rebuilt)."""
        return _manifest(root, KeywordIndex.current_version(root)) is not None

    @classmethod
    def load(cls, root: Path, reuse: KeywordIndex | None = None) -> tuple[KeywordIndex, int | None]:
        """Load the current version (empty when none); segments already in `reuse` are not read again."""
        version = cls.current_version(root)
        try:
            manifest = _manifest(root, version)
            lost = manifest is None and version is not None and not (root / f"v{version}").is_dir()
            if lost and cls.current_version(root) == version:  # (a v<n> folder: before segments)
                raise damaged(root, f"v{version}.json is missing")  # the pointer names it: not a race
            if manifest is None:  # nothing saved yet, or a layout from an older Kabar: the next run rebuilds
                return cls(), None
            known = {s.name: s for s in reuse.segments} if reuse else {}
            segments = [known.get(name) or Segment.load(root / name) for name in manifest["segments"]]
            dead = {name: frozenset(keys) for name, keys in manifest["dead"].items()}
            index = cls(segments, dead)
        except FileNotFoundError:
            raise  # a segment pruned by a newer version while loading: the caller loads again
        except (OSError, ValueError, KeyError, TypeError, IndexError, EOFError, zipfile.BadZipFile) as e:
            raise damaged(root, e) from None
        return index, version


def damaged(root: Path, why: object) -> IndexCorrupt:
    """The error for an unreadable keyword index: rebuilt from the registry by `kabar index --repair`."""
    return IndexCorrupt(f"The keyword index {root}", "kabar index --repair", str(why))


def _manifest(root: Path, version: int | None) -> dict | None:
    if version is None:
        return None
    try:
        return json.loads((root / f"v{version}.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise damaged(root, e) from None


def _prune(root: Path, version: int) -> None:
    """Drop old versions; keep the previous one, and its segments, for readers still loading it."""
    keep = {f"v{version}.json", f"v{version - 1}.json"}
    used: set[str] = set()
    for name in keep:
        manifest = _manifest(root, int(name[1:-5]))
        used |= set(manifest["segments"]) if manifest else set()
    for path in root.iterdir():
        if path.name in keep or path.name in used or path.name in {"current"}:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
