"""Bounded reading of corpus files: size caps, capped JSON Lines records, a gzip bomb guard, text sniffing.

Every limit is a module constant so that a setting can later override it; each one is far above what a
news article needs, so only broken or hostile input meets it, and then it is skipped with a message that
names the file, the limit and the constant.
"""

from __future__ import annotations

import codecs
import io
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from index.errors import LoadError

log = logging.getLogger(__name__)

MiB = 1024 * 1024
# A .txt/.md file, or the text of one record. A long news article is ~50 KB; 1 MiB is a short book.
MAX_ARTICLE_BYTES = 1 * MiB
# One JSON Lines record: the article plus its metadata and summary, with JSON escapes (6 bytes a character).
MAX_RECORD_BYTES = 4 * MiB
# An HTML page: pages carry scripts, styles and inline data besides the article.
MAX_HTML_BYTES = 16 * MiB
# Opening tags in an HTML page: BeautifulSoup spends ~20-50 µs on each, so this bounds parsing to seconds.
MAX_HTML_TAGS = 150_000
# A .json file is parsed whole (it may be a list of many records).
MAX_JSON_BYTES = 64 * MiB
# A .gz that expands past this multiple of its compressed size (plus the slack) is a decompression bomb:
# news text compresses 3-10x, a file of zeros 1000x.
MAX_GZIP_RATIO = 50
GZIP_SLACK_BYTES = 32 * MiB
# Control bytes (NUL and the other C0 codes but tab, newline, CR, FF, VT) above this share make a file
# binary. Below it they are dropped and the file is read: a text file with a stray NUL (a torn write)
# is still an article, an image or archive renamed .txt is not.
BINARY_SHARE = 0.01
# Bytes that are not UTF-8 and not cp1252 either (0x81, 0x8D, 0x8F, 0x90, 0x9D) above this share mean the
# file is not text in any encoding we read; below it each becomes U+FFFD and the rest of the file is kept.
BAD_BYTE_SHARE = 0.01

# A JSON Lines file whose records fail this many times in a row is not a corpus (or is a bomb of short
# bad lines): the rest of it is skipped with one message, not a million.
MAX_BAD_RECORDS = 1000

_CONTROL = bytes([*range(0x00, 0x09), *range(0x0E, 0x20), 0x7F])
_CP1252_UNDEFINED = frozenset(b"\x81\x8d\x8f\x90\x9d")
_SKIP_PIECE = MiB  # the rest of an over-long line is read past in pieces of this size


def mb(n: int) -> str:
    """A byte count as '12.3 MB'."""
    return f"{n / 1e6:.1f} MB"


class TooMuchData(Exception):
    """A gzip stream expanded past its bound: the rest of the file is not read."""


@dataclass
class Line:
    """One line of a JSON Lines file; `data` is None when the line was longer than the limit."""

    lineno: int
    data: bytes | None
    length: int  # bytes in the line, counted even when it was too long to keep


def bounded_lines(f: io.BufferedIOBase, limit: int, max_total: int | None = None) -> Iterator[Line]:
    """The lines of a binary stream, none held longer than `limit` bytes; raises TooMuchData past
    `max_total` bytes read (the decompressed size of a gzip stream)."""
    lineno = 0
    while True:
        data: bytes | None = f.readline(limit + 1)
        if not data:
            return
        lineno += 1
        length = len(data)
        if length > limit and not data.endswith(b"\n"):
            data = None  # too long: read past the rest of it without keeping it
            while True:
                _check_total(f, max_total)
                piece = f.readline(_SKIP_PIECE)
                length += len(piece)
                if not piece or piece.endswith(b"\n"):
                    break
        _check_total(f, max_total)
        yield Line(lineno, data, length)


def _check_total(f: io.BufferedIOBase, max_total: int | None) -> None:
    if max_total is not None and f.tell() > max_total:
        raise TooMuchData(f"expands past {mb(max_total)}")


def gzip_bound(compressed_size: int) -> int:
    """How many decompressed bytes a gzip file of `compressed_size` bytes may expand to."""
    return compressed_size * MAX_GZIP_RATIO + GZIP_SLACK_BYTES


def read_capped(path: str, f: io.BufferedIOBase, limit: int, what: str, constant: str) -> bytes:
    """At most `limit` bytes of `f`, or a LoadError naming the limit (a file may grow while it is read)."""
    data = f.read(limit + 1)
    if len(data) > limit:
        raise too_large(path, None, limit, what, constant)
    return data


def too_large(path: str, size: int | None, limit: int, what: str, constant: str) -> LoadError:
    """The LoadError for input over a size limit."""
    got = f"{mb(size)}, " if size is not None else ""
    return LoadError(path, f"{what} too large ({got}over the {mb(limit)} limit, {constant}): skipped")


def strip_controls(data: bytes, path: str, what: str = "text") -> bytes:
    """`data` without control bytes when they are few; a LoadError when they make it binary."""
    n = len(data) - len(data.translate(None, _CONTROL))
    if not n:
        return data
    if n > BINARY_SHARE * len(data):
        kind = "NUL bytes" if b"\x00" in data else "control bytes"
        raise LoadError(path, f"binary file ({kind}), not {what}: {n} of {len(data)} bytes")
    log.warning("%s: dropped %d control byte(s) (NUL or similar) from the %s", path, n, what)
    return data.translate(None, _CONTROL)


def decode_text(data: bytes, path: str) -> str:
    """Bytes as text: UTF-8 (BOM optional), UTF-16 with BOM, or legacy cp1252; or a LoadError.

    Few bad bytes in a UTF-8 file are read as cp1252 (a stray Latin-1 "é" in a UTF-8 file is common), or as
    U+FFFD where cp1252 has no character: a mostly-text file is still indexed. Many undefined bytes mean
    the file is not text at all: it is skipped.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise LoadError(path, f"bad UTF-16 text at byte {e.start}") from None
    data = strip_controls(data, path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        first_bad = e.start
    bad: list[int] = []
    token = _BAD.set(bad)
    try:
        text = data.decode("utf-8-sig", errors=_HANDLER)
    finally:
        _BAD.reset(token)
    undefined = sum(1 for i in bad if data[i] in _CP1252_UNDEFINED)
    if undefined > BAD_BYTE_SHARE * len(data):
        raise LoadError(path, f"not UTF-8 text (bad byte at {first_bad}): {len(bad)} bad bytes")
    if undefined:
        log.warning("%s: %d byte(s) not UTF-8 (first at %d); replaced by U+FFFD", path, undefined, first_bad)
    else:
        log.warning("%s: not UTF-8 (bad byte at %d); %d byte(s) read as cp1252", path, first_bad, len(bad))
    return text


_BAD: ContextVar[list[int]] = ContextVar("kabar_bad_bytes")
_HANDLER = "kabar-cp1252"


def _read_as_cp1252(e: UnicodeError) -> tuple[str, int]:
    """Codec error handler: each bad byte read as cp1252 (U+FFFD if undefined) and recorded in _BAD."""
    assert isinstance(e, UnicodeDecodeError)
    _BAD.get().extend(range(e.start, e.end))
    return e.object[e.start : e.end].decode("cp1252", errors="replace"), e.end


codecs.register_error(_HANDLER, _read_as_cp1252)
