"""Load articles from files and folders: .txt, .md, .html, .json, .jsonl and .jsonl.gz.

Text files are read as UTF-8 (a BOM is fine, UTF-16 with a BOM too); bytes that are not UTF-8 are read as
cp1252 with a logged warning, and a file that is binary (control bytes, bytes no encoding explains) is
skipped. A file or record that cannot be used is reported through `on_skip(path, reason)` and the rest
still loads; the path is "file.jsonl:LINE" for a JSON Lines record. The same article met twice is loaded
once. Nothing is read without a bound: files, records and gzip expansion are capped (see index.safeio).
"""

from __future__ import annotations

import codecs
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

from bs4 import BeautifulSoup, CData, NavigableString, PageElement, Tag

from index import safeio
from index.clean import clean_article, slashed_order
from index.errors import LoadError
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
            items = [_load_html(path, data)]
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


# --- HTML ----------------------------------------------------------------------------------------------

DROP_TAGS = [
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "button", "iframe",
    "svg", "canvas", "figcaption", "select", "input", "textarea", "dialog", "menu",
]  # fmt: skip
BLOCK_TAGS = [
    "p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre",
    "table", "tr", "td", "th", "dd", "dt", "ul", "ol", "figure", "br", "hr",
]  # fmt: skip
DATE_META = [
    ("property", "article:published_time"), ("property", "og:published_time"), ("name", "pubdate"),
    ("name", "publishdate"), ("name", "publish-date"), ("name", "date"), ("name", "dc.date.issued"),
    ("name", "dc.date"), ("itemprop", "datePublished"), ("name", "content_PublishedDate"),
]  # fmt: skip
_BOILER_CLASS = re.compile(
    r"(^|[-_ ])(share|social|related|comment|newsletter|promo|ads?|advert\w*|baca-?juga)($|[-_ ])", re.I
)
_BODY_CLASS = re.compile(r"(article|post|entry|detail|read)[-_]?(body|content|text)", re.I)


_OPEN_TAG = re.compile(rb"<[A-Za-z]")


def _load_html(path: Path, data: bytes) -> Article:
    if not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        data = safeio.strip_controls(data, str(path), "HTML")
    tags = len(_OPEN_TAG.findall(data))
    if tags > safeio.MAX_HTML_TAGS:
        raise LoadError(
            str(path), f"too many HTML tags ({tags:,}; the limit is {safeio.MAX_HTML_TAGS:,}, MAX_HTML_TAGS)"
        )
    return html_to_article(BeautifulSoup(data, "lxml"), str(path))


def html_to_article(soup: BeautifulSoup, path: str) -> Article:
    """The article in a parsed HTML page: body text of <article>/<main>, title, date, canonical url."""
    tags = [node for end, node in _walk(soup) if not end and isinstance(node, Tag)]  # one walk, not a
    by_name: dict[str, list[Tag]] = {}  # find() per question: 20 walks of a 100,000-tag page
    for tag in tags:
        by_name.setdefault(tag.name, []).append(tag)
    metas = by_name.get("meta", [])
    og_title = _meta(metas, ("property", "og:title"))
    title_tag = next(iter(by_name.get("title", [])), None)
    title = og_title or (title_tag.get_text(" ", strip=True) if title_tag else None)
    date = next((d for attr, name in DATE_META if (d := _meta(metas, (attr, name)))), None)
    if date is None and (
        time_tag := next((t for t in by_name.get("time", []) if t.has_attr("datetime")), None)
    ):
        date = str(time_tag["datetime"])
    canonical = next(
        (t for t in by_name.get("link", []) if "canonical" in _values(t, "rel") and t.get("href")), None
    )
    url = str(canonical["href"]) if canonical is not None else _meta(metas, ("property", "og:url"))
    publisher = _meta(metas, ("property", "og:site_name"))

    root = _main_content(soup, tags, by_name)
    # read before <header> goes: articles often keep their heading there
    h1 = next((n for end, n in _walk(root) if not end and isinstance(n, Tag) and n.name == "h1"), None)
    if h1 is not None:
        heading = h1.get_text(" ", strip=True)
        if not og_title and heading:
            title = heading  # the article's own heading beats a <title> with a site suffix
        h1.decompose()
    for tag in tags:
        if tag.name in _DROP and not _gone(tag):  # not nested in one already dropped
            tag.decompose()
    for tag in tags:
        if (
            not _gone(tag)
            and tag.name not in ("body", "html", "article", "main")
            and any(_BOILER_CLASS.search(c) for c in _class_strings(tag))
        ):
            tag.decompose()
    blocks = [" ".join(b.split()) for b in re.split(r"\n\s*\n", _block_text(root))]
    text = "\n\n".join(b for b in blocks if b)
    return clean_article(text, title=title, date=date, url=url, publisher=publisher, path=path)


_DROP = frozenset(DROP_TAGS)


def _gone(tag: Tag) -> bool:
    """Whether `tag` was decomposed. Not `tag.decomposed`: on a live tag its getattr falls through to
    bs4's `tag.<name>` lookup, a find() over the whole subtree, which is quadratic on a deep page."""
    return bool(tag.__dict__.get("_decomposed"))


def _values(tag: Tag, attr: str) -> list[str]:
    """An attribute's values (bs4 gives multi-valued ones such as class and rel as lists)."""
    value = tag.get(attr)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else str(value).split()


def _class_strings(tag: Tag) -> list[str]:
    """What bs4's find(class_=regex) matches against: each class, and all of them as one string."""
    classes = _values(tag, "class")
    return [*classes, " ".join(classes)] if len(classes) > 1 else classes


_BLOCKS = frozenset(BLOCK_TAGS)


def _walk(root: Tag) -> Iterator[tuple[bool, PageElement]]:
    """(is_end, node) for every node under `root` in document order, a tag twice (start, end).

    Iterative: 100,000 nested <div>s neither hit the recursion limit nor cost quadratic time.
    """
    stack: list[tuple[PageElement, bool]] = [(root, False)]
    while stack:
        node, end = stack.pop()
        yield end, node
        if not end and isinstance(node, Tag):
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))


def _block_text(root: Tag) -> str:
    """The text of `root` (as get_text() gives it) with a blank line around each block element."""
    wanted = _string_types(root)
    parts: list[str] = []
    for end, node in _walk(root):
        if isinstance(node, Tag):
            if node.name in _BLOCKS and node is not root:
                parts.append("\n\n")
        elif not end and type(node) in wanted:
            parts.append(str(node))
    return "".join(parts)


def _meta(metas: list[Tag], key: tuple[str, str]) -> str | None:
    """The content of the first <meta> whose `attr` is `name` (any case), if it has one."""
    attr, name = key
    tag = next((t for t in metas if str(t.get(attr, "")).lower() == name.lower()), None)
    if tag is not None and tag.get("content"):
        return str(tag["content"]).strip() or None
    return None


def _main_content(soup: BeautifulSoup, tags: list[Tag], by_name: dict[str, list[Tag]]) -> Tag:
    article = _longest_article(soup) if by_name.get("article") else None
    if article is not None:
        return article
    for found in (
        next(iter(by_name.get("main", [])), None),
        next((t for t in tags if t.get("role") == "main"), None),
        next((t for t in tags if t.get("itemprop") == "articleBody"), None),
        next((t for t in tags if any(_BODY_CLASS.search(c) for c in _class_strings(t))), None),
    ):
        if found is not None:
            return found
    return next(iter(by_name.get("body", [])), None) or soup


def _longest_article(soup: BeautifulSoup) -> Tag | None:
    """The <article> with the most text (the first of equals); only outermost ones compete, as a nested
    one has no more text than the one around it. One walk: no get_text() per article, which is
    quadratic for deeply nested <article>s."""
    best: Tag | None = None
    best_len = depth = length = 0
    current: Tag | None = None
    for end, node in _walk(soup):
        if isinstance(node, Tag):
            if node.name == "article":
                if not end:
                    depth += 1
                    if depth == 1:
                        current, length = node, 0
                else:
                    depth -= 1
                    if depth == 0 and (best is None or length > best_len):
                        best, best_len = current, length
        elif depth and not end and current is not None and type(node) in _string_types(current):
            stripped = str(node).strip()
            length += len(stripped) + 1 if stripped else 0
    return best


def _string_types(tag: Tag) -> tuple[type, ...]:
    types = tag.interesting_string_types
    if types is None:  # bs4: any string
        return (NavigableString, CData)
    return tuple(types) if isinstance(types, tuple | set | frozenset) else (types,)


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
