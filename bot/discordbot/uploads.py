"""/add_article uploads: which files are accepted, their safe names, and writing them into the corpus."""

from __future__ import annotations

import hashlib
import json
import os
import re
import unicodedata
from pathlib import Path

from index.errors import KabarError

UPLOAD_SUFFIXES = (".txt", ".md", ".html", ".htm", ".json")


class UploadRejected(KabarError):
    """An /add_article file that cannot be used; the message says why."""


def safe_filename(filename: str, data: bytes) -> str:
    """'discord-<ascii slug>-<content hash><ext>': no path parts, no hidden files, unique per content."""
    name = Path(filename.replace("\\", "/")).name
    stem, suffix = os.path.splitext(name)
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_stem.lower()).strip("-")[:60].strip("-") or "article"
    digest = hashlib.sha256(data).hexdigest()[:12]
    return f"discord-{slug}-{digest}{suffix.lower()}"


def check_attachment(filename: str, size: int, limit: int) -> str | None:
    """Why an attachment cannot be an article before downloading it (type, size), or None."""
    suffix = os.path.splitext(filename)[1].lower()
    if suffix not in UPLOAD_SUFFIXES:
        return f"`{filename}` is not a supported article file: use {', '.join(UPLOAD_SUFFIXES)}."
    if size > limit:
        return f"`{filename}` is {_size(size)}; the limit is {_size(limit)}."
    if size == 0:
        return f"`{filename}` is empty."
    return None


def check_content(filename: str, data: bytes, limit: int) -> str | None:
    """Why downloaded bytes are not a usable text file (size, binary, encoding, JSON syntax), or None."""
    if len(data) > limit:
        return f"`{filename}` is {_size(len(data))}; the limit is {_size(limit)}."
    if b"\x00" in data:
        return f"`{filename}` is a binary file, not text."
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return f"`{filename}` is not UTF-8 text (invalid byte at position {e.start})."
    if not content.strip():
        return f"`{filename}` holds no text."
    if filename.lower().endswith(".json"):
        try:
            json.loads(content)
        except json.JSONDecodeError as e:
            return f"`{filename}` is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})."
    return None


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n / 1000:.1f} kB" if n >= 1000 else f"{n} bytes"


def write_atomically(path: Path, data: bytes) -> None:
    """Write bytes so that a crash leaves either nothing or the whole file."""
    tmp = path.with_name(f".{path.name}.part")  # hidden: the loader skips it if we crash before the rename
    tmp.write_bytes(data)
    os.replace(tmp, path)
