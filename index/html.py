"""HTML pages: the article's body text (<article>/<main>, boilerplate dropped), title, date, url.

One linear walk over the parsed page serves every question (no find() per question, no recursion), so a
page of 100,000 nested tags costs what its size costs.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path

from bs4 import BeautifulSoup, CData, NavigableString, PageElement, Tag

from index import safeio
from index.clean import clean_article
from index.errors import LoadError
from index.types import Article

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


def load_html(path: Path, data: bytes) -> Article:
    """The article of an HTML file's bytes (a bounded number of tags, control bytes dropped)."""
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
