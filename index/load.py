"""Load articles from files and folders: .txt, .md, .html, .json, .jsonl and .jsonl.gz.

Text files are read as UTF-8 (a BOM is fine, UTF-16 with a BOM too); a file that is not valid UTF-8 is read
as cp1252 with a logged warning, and one that is not that either (or holds NUL bytes) is skipped. A file or
record that cannot be used is reported through `on_skip(path, reason)` and the rest still loads; the
path is "file.jsonl:LINE" for a JSON Lines record. The same article met twice is loaded once.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import json
import logging
import re
import zlib
from collections.abc import Callable, Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup, Tag

from index.clean import clean_article, slashed_order
from index.errors import LoadError
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


RAW_VERSION = b"kabar-clean-1\n"  # changes when cleaning would turn the same bytes into another article


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
        digest = raw_hash(path.read_bytes())
        if digest in known:
            yield Unchanged(digest)
            return
        items: Iterable[Article | LoadError]
        if suffix == ".json":
            items = _load_json(path)
        elif suffix in (".html", ".htm"):
            items = [_load_html(path)]
        elif suffix in (".md", ".markdown"):
            items = [_load_markdown(path)]
        else:
            items = [_load_txt(path)]
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


# --- text decoding -------------------------------------------------------------------------------------


def decode(data: bytes, path: str) -> str:
    """Bytes as text: UTF-8 (BOM optional), UTF-16 with BOM, else cp1252 with a warning; or LoadError."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise LoadError(path, f"bad UTF-16 text at byte {e.start}") from None
    if b"\x00" in data:
        raise LoadError(path, "binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        utf8_error = e.start
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        raise LoadError(path, f"not UTF-8 text (bad byte at {utf8_error})") from None
    log.warning("%s: not UTF-8 (bad byte at %d); read as cp1252", path, utf8_error)
    return text


def _read(path: Path) -> str:
    return decode(path.read_bytes(), str(path))


# --- plain text and markdown ---------------------------------------------------------------------------


def _load_txt(path: Path) -> Article:
    lines = _read(path).splitlines()
    meta: dict[str, str] = {}
    while lines and (m := TXT_HEADER.fullmatch(lines[0].strip())):
        key = m.group("key").lower()
        meta[TXT_KEYS.get(key, key)] = m.group("value").strip()
        lines.pop(0)
    return _clean_with_meta("\n".join(lines), meta, str(path))


_FRONT_MATTER = re.compile(r"\A---\s*\n(?P<body>.*?)\n---\s*\n", re.S)
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(?P<text>.*?)\s*#*\s*$")
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(\s*\1){2,}\s*$")
_LIST = re.compile(r"^\s*([-*+]|\d{1,3}[.)])\s+")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+\S+")
_MD_INLINE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"!\[[^\]]*\]\([^)]*\)"), ""),  # images
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # [text](url)
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # [text][ref]
    (re.compile(r"<(https?://[^>]+)>"), r"\1"),  # <http://...>
    (re.compile(r"<[^>\n]+>"), ""),  # inline html tags
    (re.compile(r"`([^`]+)`"), r"\1"),  # code spans
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # bold
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *italic*
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),  # _italic_ (not snake_case)
    (re.compile(r"~~(.+?)~~"), r"\1"),  # strikethrough
]


def _load_markdown(path: Path) -> Article:
    text, meta = markdown_to_text(_read(path))
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
            heading = re.match(r"\s*(?P<text>.*?)\s*$", line)  # "Title\n=====" style
            level = "#" if nxt.strip().startswith("=") else "##"
        else:
            level = heading.group(1) if heading else ""
        if heading:
            text = _md_inline(heading.group("text"))
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


def _load_html(path: Path) -> Article:
    data = path.read_bytes()
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise LoadError(str(path), "binary file (NUL bytes), not HTML")
    return html_to_article(BeautifulSoup(data, "lxml"), str(path))


def html_to_article(soup: BeautifulSoup, path: str) -> Article:
    """The article in a parsed HTML page: body text of <article>/<main>, title, date, canonical url."""
    og_title = _meta(soup, ("property", "og:title"))
    title = og_title or (soup.title.get_text(" ", strip=True) if soup.title else None)
    date = next((d for attr, name in DATE_META if (d := _meta(soup, (attr, name)))), None)
    if date is None and (time_tag := soup.find("time", attrs={"datetime": True})):
        date = str(time_tag["datetime"])
    canonical = soup.find("link", rel="canonical", href=True)
    url = str(canonical["href"]) if isinstance(canonical, Tag) else _meta(soup, ("property", "og:url"))
    publisher = _meta(soup, ("property", "og:site_name"))

    root = _main_content(soup)
    h1 = root.find("h1")  # read before <header> goes: articles often keep their heading there
    if h1 is not None:
        heading = h1.get_text(" ", strip=True)
        if not og_title and heading:
            title = heading  # the article's own heading beats a <title> with a site suffix
        h1.decompose()
    for tag in soup(DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all(class_=_BOILER_CLASS):
        if tag.name not in ("body", "html", "article", "main") and not tag.decomposed:
            tag.decompose()
    for br in root.find_all("br"):
        br.replace_with("\n\n")
    for tag in root.find_all(BLOCK_TAGS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    blocks = [" ".join(b.split()) for b in re.split(r"\n\s*\n", root.get_text())]
    text = "\n\n".join(b for b in blocks if b)
    return clean_article(text, title=title, date=date, url=url, publisher=publisher, path=path)


def _meta(soup: BeautifulSoup, key: tuple[str, str]) -> str | None:
    attr, name = key
    tag = soup.find("meta", attrs={attr: re.compile(f"^{re.escape(name)}$", re.I)})
    if isinstance(tag, Tag) and tag.get("content"):
        return str(tag["content"]).strip() or None
    return None


def _main_content(soup: BeautifulSoup) -> Tag:
    articles = soup.find_all("article")
    if articles:
        return max(articles, key=lambda t: len(t.get_text(" ", strip=True)))
    for finder in (
        lambda: soup.find("main"),
        lambda: soup.find(True, attrs={"role": "main"}),
        lambda: soup.find(True, attrs={"itemprop": "articleBody"}),
        lambda: soup.find(class_=_BODY_CLASS),
    ):
        found = finder()
        if isinstance(found, Tag):
            return found
    return soup.body or soup


# --- JSON ----------------------------------------------------------------------------------------------


def _load_json(path: Path) -> Iterator[Article | LoadError]:
    try:
        data = json.loads(_read(path))
    except json.JSONDecodeError as e:
        raise LoadError(str(path), f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    records = data if isinstance(data, list) else [data]
    day_first = slashed_order(str(r["date"]) for r in records if isinstance(r, dict) and r.get("date"))
    for i, record in enumerate(records):
        where = f"{path}[{i}]" if isinstance(data, list) else str(path)
        yield _from_record(record, str(path), where, day_first)


_DATE_FIELD = re.compile(rb'"date"\s*:\s*"([^"]{0,40})"')


def _open(path: Path) -> io.BufferedIOBase:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _file_day_first(path: Path) -> bool | None:
    """How the file writes slashed dates ("20/09/2019" vs "10/20/2025"), from a quick pass over its dates."""
    try:
        with _open(path) as f:
            dates = [m.group(1).decode("utf-8", "replace") for line in f for m in _DATE_FIELD.finditer(line)]
    except (OSError, EOFError, zlib.error):
        return None  # the main pass reports the damage
    return slashed_order(dates)


def _load_jsonl(path: Path, known: Container[str] = ()) -> Iterator[Article | LoadError | Unchanged]:
    day_first: bool | None = None
    first_new = True
    lineno = 0
    try:
        with _open(path) as f:
            for lineno, raw in enumerate(f, 1):
                if not raw.strip():
                    continue
                digest = raw_hash(raw.rstrip(b"\r\n"))
                if digest in known:
                    yield Unchanged(digest)
                    continue
                if first_new:  # only a file with new records needs its date order
                    day_first, first_new = _file_day_first(path), False
                where = f"{path}:{lineno}"
                try:
                    record = json.loads(raw.decode("utf-8-sig"))
                except UnicodeDecodeError as e:
                    yield LoadError(where, f"not UTF-8 (bad byte at column {e.start + 1})")
                    continue
                except json.JSONDecodeError as e:
                    yield LoadError(where, f"invalid JSON at column {e.colno}: {e.msg}")
                    continue
                item = _from_record(record, str(path), where, day_first)
                if isinstance(item, Article):
                    item.raw_hash = digest
                yield item
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        yield LoadError(f"{path}:{lineno + 1}", f"corrupt gzip data, rest of file skipped ({e})")


def _from_record(record: Any, path: str, where: str, day_first: bool | None = None) -> Article | LoadError:
    """One JSON record as an Article. The corpus `source` field names the outlet: it fills `publisher`."""
    if not isinstance(record, dict):
        return LoadError(where, f"expected a JSON object, got {type(record).__name__}")
    texts = (record[k] for k in TEXT_FIELDS if isinstance(record.get(k), str) and record[k].strip())
    text = next(texts, None)
    if text is None:
        return LoadError(where, "record has no text")
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


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)
