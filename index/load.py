"""Load articles from files and folders: .txt, .md, .html, .json, .jsonl and .jsonl.gz.

Text files are read as UTF-8 (a BOM is fine, UTF-16 with a BOM too); bytes that are not UTF-8 are read as
cp1252 with a logged warning, and a file that is binary (control bytes, bytes no encoding explains) is
skipped. A file or record that cannot be used is reported through `on_skip(path, reason)` and the rest
still loads; the path is "file.jsonl:LINE" for a JSON Lines record. The same article met twice is loaded
once. Nothing is read without a bound: files, records and gzip expansion are capped (see index.safeio).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
import logging
import re
import zlib
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index import safeio
from index.clean import clean_article, slashed_order
from index.errors import LoadError
from index.html import load_html
from index.safeio import TooMuchData, bounded_lines, too_large
from index.types import Article

log = logging.getLogger(__name__)

OnSkip = Callable[[str, str], None]

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".jsonl.gz")
TEXT_FIELDS = ("text", "content", "body", "text_id")  # text_id: the Indonesian side of NTREX records
ID_FIELDS = ("doc_id", "id", "article_id")
# Leading "Key: value" lines of a .txt file that are metadata, not text.
TXT_HEADER = re.compile(
    r"(?P<key>judul|title|tanggal|date|url|tautan|penerbit|publisher)\s*:\s*(?P<value>.+)", re.I
)
TXT_KEYS = {"judul": "title", "tanggal": "date", "tautan": "url", "penerbit": "publisher"}


def load_articles(paths: Iterable[Path | str], on_skip: OnSkip | None = None) -> Iterator[Article]:
    """Articles from files and folders (recursively, sorted, hidden ones skipped), streamed."""
    skip = on_skip or _log_skip
    seen: dict[str, str] = {}  # article_id -> path it was first loaded from
    for path in corpus_files(paths, skip):
        for item in load_file(path, skip):
            if isinstance(item, LoadError):
                skip(item.path, item.reason)
            elif isinstance(item, Unchanged):
                continue  # not asked for: never yielded here
            elif item.article_id in seen:
                skip(item.path or str(path), f"duplicate of {seen[item.article_id]}")
            else:
                seen[item.article_id] = item.path or str(path)
                yield item


def corpus_files(paths: Iterable[Path | str], on_skip: OnSkip | None = None) -> Iterator[Path]:
    """The files under `paths` (recursively, sorted, hidden ones skipped); a missing path is reported."""
    skip = on_skip or _log_skip
    for root in paths:
        yield from _files(Path(root), skip, set())


def load_file(
    path: Path, on_skip: OnSkip | None = None, known: Container[str] = ()
) -> Iterator[Article | LoadError | Unchanged]:
    """The articles of one file, and a LoadError for each part that cannot be used (not raised).

    A file (or JSON Lines record) whose raw hash is in `known` is not parsed again: it yields `Unchanged`.
    Every Article carries the raw hash of what it was read from.
    """
    yield from _load_file(path, on_skip or _log_skip, known)


RAW_VERSION = b"kabar-clean-2\n"  # changes when cleaning would turn the same bytes into another article


def raw_hash(data: bytes) -> str:
    """Hash of the raw bytes an article is read from (a file, or one JSON Lines record)."""
    return hashlib.sha256(RAW_VERSION + data).hexdigest()[:32]


@dataclass
class Unchanged:
    """A file or record with a known raw hash: what it holds is indexed already."""

    raw_hash: str


def _log_skip(path: str, reason: str) -> None:
    log.warning("skipped %s: %s", path, reason)


def _files(root: Path, skip: OnSkip, visited: set[Path]) -> Iterator[Path]:
    if root.is_file():
        yield root
    elif root.is_dir():
        if root.resolve() in visited:
            return  # a symlink loop
        visited.add(root.resolve())
        for child in sorted(root.iterdir(), key=lambda p: p.name):
            if not child.name.startswith("."):
                yield from _files(child, skip, visited)
    elif root.exists():  # a FIFO or device named *.txt would block or never end: never opened
        skip(str(root), "not a regular file")
    else:
        skip(str(root), "no such file or folder")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in SUFFIXES if name.endswith(s)), path.suffix.lower())


def _load_file(
    path: Path, skip: OnSkip, known: Container[str] = ()
) -> Iterator[Article | LoadError | Unchanged]:
    suffix = _suffix(path)
    try:
        if suffix == ".jsonl.gz" or suffix == ".jsonl":
            yield from _load_jsonl(path, known)
            return
        if suffix not in (".json", ".html", ".htm", ".md", ".markdown", ".txt"):
            skip(str(path), f"unsupported file type '{suffix or path.name}'")
            return
        data = _read_bytes(path, suffix)
        digest = raw_hash(data)
        if digest in known:
            yield Unchanged(digest)
            return
        items: Iterable[Article | LoadError]
        if suffix == ".json":
            items = _load_json(path, data)
        elif suffix in (".html", ".htm"):
            items = [load_html(path, data)]
        elif suffix in (".md", ".markdown"):
            items = [_load_markdown(path, data)]
        else:
            items = [_load_txt(path, data)]
        for item in items:
            if isinstance(item, Article):
                item.raw_hash = digest
            yield item
    except LoadError as e:
        yield e
    except OSError as e:
        yield LoadError(str(path), f"cannot read: {e.strerror or e}")
    except Exception as e:  # one odd file must not stop the load
        log.debug("%s: loading failed", path, exc_info=True)
        yield LoadError(str(path), f"could not be loaded ({type(e).__name__}: {e})")


# --- bounded reading and text decoding ------------------------------------------------------------------

# suffix -> (size limit, what it is, the constant that sets it)
_SIZE_LIMITS = {
    ".json": ("MAX_JSON_BYTES", "JSON file"),
    ".html": ("MAX_HTML_BYTES", "HTML page"),
    ".htm": ("MAX_HTML_BYTES", "HTML page"),
}


def _read_bytes(path: Path, suffix: str) -> bytes:
    """The file's bytes, or a LoadError when it is over its size limit (checked before reading)."""
    constant, what = _SIZE_LIMITS.get(suffix, ("MAX_ARTICLE_BYTES", "file"))
    limit = getattr(safeio, constant)
    size = path.stat().st_size
    if size > limit:
        raise too_large(str(path), size, limit, what, constant)
    with open(path, "rb") as f:
        return safeio.read_capped(str(path), f, limit, what, constant)


def decode(data: bytes, path: str) -> str:
    """Bytes as text: UTF-8 (BOM optional), UTF-16 with BOM, else cp1252 with a warning; or LoadError."""
    return safeio.decode_text(data, path)


# --- plain text and markdown ---------------------------------------------------------------------------


def _load_txt(path: Path, data: bytes) -> Article:
    lines = decode(data, str(path)).splitlines()
    meta: dict[str, str] = {}
    first = 0
    while first < len(lines) and (m := TXT_HEADER.fullmatch(lines[first].strip())):
        key = m.group("key").lower()
        meta[TXT_KEYS.get(key, key)] = m.group("value").strip()
        first += 1
    return _clean_with_meta("\n".join(lines[first:]), meta, str(path))


_FRONT_MATTER = re.compile(r"\A---\s*\n(?P<body>.*?)\n---\s*\n", re.S)
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(?P<text>.*)$")  # closing #s are stripped in code: no backtracking
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_LIST = re.compile(r"^\s*([-*+]|\d{1,3}[.)])\s+")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+\S+")
# A span may not hold its own delimiter and is bounded ({1,500}: longer ones keep their markers), so that
# a line of thousands of unclosed "**" or "![" costs linear time, not quadratic.
_MD_INLINE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"!\[[^\][]{0,500}\]\([^()]{0,2000}\)"), ""),  # images
    (re.compile(r"\[([^\][]{1,500})\]\([^()]{0,2000}\)"), r"\1"),  # [text](url)
    (re.compile(r"\[([^\][]{1,500})\]\[[^\][]{0,500}\]"), r"\1"),  # [text][ref]
    (re.compile(r"<(https?://[^<>]{1,2000})>"), r"\1"),  # <http://...>
    (re.compile(r"<[^<>\n]{1,500}>"), ""),  # inline html tags
    (re.compile(r"`([^`]{1,500})`"), r"\1"),  # code spans
    (re.compile(r"\*\*(?=\S)([^*]{1,500}?)(?<=\S)\*\*"), r"\1"),  # bold
    (re.compile(r"__(?=\S)([^_]{1,500}?)(?<=\S)__"), r"\1"),  # bold
    (re.compile(r"(?<![\w*])\*(?=\S)([^*]{1,500}?)(?<=\S)\*(?![\w*])"), r"\1"),  # *italic*
    (re.compile(r"(?<!\w)_(?=\S)([^_]{1,500}?)(?<=\S)_(?!\w)"), r"\1"),  # _italic_ (not snake_case)
    (re.compile(r"~~([^~]{1,500}?)~~"), r"\1"),  # strikethrough
]


def _load_markdown(path: Path, data: bytes) -> Article:
    text, meta = markdown_to_text(decode(data, str(path)))
    return _clean_with_meta(text, meta, str(path))


def _clean_with_meta(text: str, meta: dict[str, str], path: str) -> Article:
    return clean_article(
        text,
        title=meta.get("title"),
        date=meta.get("date"),
        url=meta.get("url"),
        publisher=meta.get("publisher"),
        source=meta.get("source"),
        path=path,
    )


def markdown_to_text(md: str) -> tuple[str, dict[str, str]]:
    """Plain text of a markdown document (blocks separated by blank lines) and its metadata.

    The first `# heading` is the title; YAML-style front matter may give title, date, url, publisher.
    """
    meta: dict[str, str] = {}
    md = md.replace("\r\n", "\n")
    front = _FRONT_MATTER.match(md)
    if front:
        for line in front.group("body").splitlines():
            key, _, value = line.partition(":")
            key = TXT_KEYS.get(key.strip().lower(), key.strip().lower())
            if key in ("title", "date", "url", "publisher", "source") and value.strip():
                meta[key] = value.strip().strip("\"'")
        md = md[front.end() :]
    out: list[str] = []
    in_fence = seen_title = False
    lines = md.split("\n")
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            out.append(line)
            continue
        heading = _HEADING.match(line)
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if not heading and line.strip() and _SETEXT.match(nxt) and not _LIST.match(line):
            heading = re.match(r"(?P<text>.*)", line.strip())  # "Title\n=====" style
            level = "#" if nxt.strip().startswith("=") else "##"
        else:
            level = heading.group(1) if heading else ""
        if heading:
            text = _md_inline(heading.group("text").rstrip().rstrip("#").rstrip())
            if level == "#" and not seen_title:
                meta.setdefault("title", text)  # front matter wins; the heading is not body text either way
                seen_title = True
            else:
                out += ["", text, ""]
            continue
        if (_SETEXT.match(line) and i and lines[i - 1].strip()) or _RULE.match(line):
            continue  # a setext underline (its heading was handled above) or a horizontal rule
        if _TABLE_RULE.match(line) or _REF_DEF.match(line):
            continue
        line = re.sub(r"^\s*(>\s?)+", "", line)  # blockquote markers
        if marker := _LIST.match(line):
            bullet = marker.group(1)
            line = (bullet + " " if bullet[0].isdigit() else "") + line[marker.end() :]
            out.append("")  # each item its own paragraph
        if "|" in line and line.strip().startswith("|"):
            line = " ".join(cell.strip() for cell in line.strip().strip("|").split("|"))
        out.append(_md_inline(line))
    return "\n".join(out), meta


def _md_inline(text: str) -> str:
    for pattern, replacement in _MD_INLINE:
        text = pattern.sub(replacement, text)
    return text.rstrip("\\").strip()


# --- JSON ----------------------------------------------------------------------------------------------


def _load_json(path: Path, raw: bytes) -> Iterator[Article | LoadError]:
    try:
        data = json.loads(decode(raw, str(path)))
    except json.JSONDecodeError as e:
        raise LoadError(str(path), f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise LoadError(str(path), "JSON nested too deeply to be an article") from None
    records = data if isinstance(data, list) else [data]
    day_first = slashed_order(str(r["date"]) for r in records if isinstance(r, dict) and r.get("date"))
    for i, record in enumerate(records):
        where = f"{path}[{i}]" if isinstance(data, list) else str(path)
        yield _from_record(record, str(path), where, day_first)


_DATE_FIELD = re.compile(rb'"date"\s*:\s*"([^"]{0,40})"')


def _open(path: Path) -> tuple[io.BufferedIOBase, int | None]:
    """The file opened for reading, and how many bytes it may yield (a .gz is bounded against bombs)."""
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb"), safeio.gzip_bound(path.stat().st_size)  # type: ignore[return-value]
    return open(path, "rb"), None


def _lines(path: Path) -> Iterator[safeio.Line]:
    f, bound = _open(path)
    with f:
        yield from bounded_lines(f, safeio.MAX_RECORD_BYTES, bound)


DATE_SCAN_LINES = 200_000  # the date order is read from this many lines: a file writes its dates one way


def _file_day_first(path: Path) -> bool | None:
    """How the file writes slashed dates ("20/09/2019" vs "10/20/2025"), from a quick pass over its dates."""
    try:
        dates = [
            m.group(1).decode("utf-8", "replace")
            for line in itertools.islice(_lines(path), DATE_SCAN_LINES)
            if line.data
            for m in _DATE_FIELD.finditer(line.data)
        ]
    except (OSError, EOFError, zlib.error, TooMuchData):
        return None  # the main pass reports the damage
    return slashed_order(dates)


def _load_jsonl(path: Path, known: Container[str] = ()) -> Iterator[Article | LoadError | Unchanged]:
    day_first: bool | None = None
    first_new = True
    lineno = bad = 0
    try:
        for line in _lines(path):
            if bad >= safeio.MAX_BAD_RECORDS:
                yield LoadError(
                    f"{path}:{line.lineno}",
                    f"{bad:,} bad records in a row (MAX_BAD_RECORDS): not a corpus? Rest of file skipped",
                )
                return
            lineno, raw = line.lineno, line.data
            where = f"{path}:{lineno}"
            if raw is None:  # read past, never held whole
                yield too_large(where, line.length, safeio.MAX_RECORD_BYTES, "record", "MAX_RECORD_BYTES")
                bad += 1
                continue
            if not raw.strip():
                continue
            digest = raw_hash(raw.rstrip(b"\r\n"))
            if digest in known:
                yield Unchanged(digest)
                continue
            if first_new:  # only a file with new records needs its date order
                day_first, first_new = _file_day_first(path), False
            try:
                record = json.loads(raw.decode("utf-8-sig"))
            except UnicodeDecodeError as e:
                yield LoadError(where, f"not UTF-8 (bad byte at column {e.start + 1})")
                bad += 1
                continue
            except json.JSONDecodeError as e:
                yield LoadError(where, f"invalid JSON at column {e.colno}: {e.msg}")
                bad += 1
                continue
            except RecursionError:
                yield LoadError(where, "JSON nested too deeply to be an article")
                bad += 1
                continue
            item = _from_record(record, str(path), where, day_first)
            if isinstance(item, Article):
                item.raw_hash = digest
                bad = 0
            else:
                bad += 1
            yield item
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        yield LoadError(f"{path}:{lineno + 1}", f"corrupt gzip data, rest of file skipped ({e})")
    except TooMuchData as e:
        yield LoadError(
            f"{path}:{lineno + 1}",
            f"gzip data {e} ({safeio.MAX_GZIP_RATIO}x its compressed size, MAX_GZIP_RATIO): a decompression "
            "bomb? Rest of file skipped",
        )


def _from_record(record: Any, path: str, where: str, day_first: bool | None = None) -> Article | LoadError:
    """One JSON record as an Article. The corpus `source` field names the outlet: it fills `publisher`."""
    if not isinstance(record, dict):
        return LoadError(where, f"expected a JSON object, got {type(record).__name__}")
    texts = (record[k] for k in TEXT_FIELDS if isinstance(record.get(k), str) and record[k].strip())
    text = next(texts, None)
    if text is None:
        return LoadError(where, "record has no text")
    if len(text) > safeio.MAX_ARTICLE_BYTES:  # characters: a record in a big .json list is not capped yet
        return too_large(where, len(text), safeio.MAX_ARTICLE_BYTES, "article text", "MAX_ARTICLE_BYTES")
    doc_id = next((str(record[k]) for k in ID_FIELDS if record.get(k) not in (None, "")), None)
    try:
        article = clean_article(
            text,
            title=_str(record.get("title")),
            date=_str(record.get("date")),
            url=_str(record.get("url")),
            publisher=_str(record.get("publisher")),
            path=where,
            article_id=doc_id,
            day_first=day_first,
        )
    except LoadError as e:
        return LoadError(where, e.reason)
    except Exception as e:  # one odd record must not stop a 25,000-record load
        log.debug("%s: cleaning failed", where, exc_info=True)
        return LoadError(where, f"could not be cleaned ({type(e).__name__}: {e})")
    article.path = f"{path}#{doc_id or article.article_id}"
    if article.publisher is None:
        article.publisher = _str(record.get("source"))
    return article


MAX_FIELD_CHARS = 2000  # a title, date, url or publisher longer than this is cut: it is not one


def _str(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:MAX_FIELD_CHARS]
