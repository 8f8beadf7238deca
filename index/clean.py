"""Clean raw article text and pull out its metadata (publisher dateline, original source, date)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from collections.abc import Iterable

from index.codetext import strip_code
from index.errors import LoadError
from index.types import Article, content_hash

log = logging.getLogger(__name__)

# --- Boilerplate: a line that fully matches one of these is dropped. Extend here. -------------------------
_I = re.IGNORECASE
BOILERPLATE: list[re.Pattern[str]] = [
    # Indozone's Z Creators promo ("Konten ini adalah kiriman dari Z Creators Indozone. Yuk, bikin ...")
    re.compile(r"konten ini adalah kiriman dari z creators\b.*", _I),
    # related-article links: "Baca Juga: <title>", "[Baca juga: <title>]", "(Baca: <title>)", "Baca_Juga"
    re.compile(r"[\[(]?\s*baca([ _]juga\b.*|\s*:.*)", _I),
    # "Lihat juga: <title>" / "Lihat Juga Video ..." link lines
    re.compile(r"lihat juga\s*(video\b.*|:.*)?", _I),
    # Indozone/Kompas notice "Dilarang mengambil dan/atau menayangkan ulang ... tanpa seizin redaksi"
    re.compile(r"dilarang mengambil dan/atau menayangkan ulang\b.*", _I),
    # ad slots
    re.compile(r"advertisement|scroll to continue with content|iklan|loading\.*", _I),
    # video teasers: "Simak video ...", "Tonton juga video ...", "Saksikan Live Detikpagi:"
    re.compile(r"(simak|tonton|saksikan)( juga)? ?(video|live)\b.*", _I),
    # detik show slogans left behind by the video embeds
    re.compile(r"[\"“]?detik (pagi|sore), [^\"”]{0,40}[\"”]?", _I),
    # staff credits: "Editor: ...", "Penulis: ...", "Reporter: ...", "(Editor: ...)"
    re.compile(
        r"\(?\s*(editor|penulis|reporter|pewarta|penyunting|redaktur|kontributor|penerjemah|fotografer)"
        r"\s*:\s*[^!?]{1,100}",
        _I,
    ),
    # share/follow prompts: "Ikuti berita terkini ... di Google News", "Follow Instagram @..."
    re.compile(
        r"(ikuti|follow|dapatkan update|gabung|join)\b.{0,120}"
        r"\b(google news|whatsapp|telegram|instagram|twitter|tiktok|youtube|facebook)\b.{0,80}",
        _I,
    ),
    # photo credits and captions: "Foto: ...", "(Sumber foto: ...)", "Ilustrasi: ..."
    re.compile(r"\(?\s*(foto|sumber foto|ilustrasi|gambar)\s*:.{1,120}", _I),
    # "Klik di sini untuk ..." link prompts
    re.compile(r"(klik|klick|click) (di ?sini|link|tautan)\b.{0,120}", _I),
    # Fimela sign-off hashtag
    re.compile(r"#growfearless with fimela", _I),
    # DailySocial's closing self-promotion paragraph
    re.compile(r"dailysocial\.id adalah portal berita startup\b.*", _I),
    # detik's mental-health disclaimer that opens suicide reports
    re.compile(r"informasi dalam artikel ini tidak ditujukan untuk menginspirasi\b.*", _I),
    # editor initials on their own line: "(ard)", "(res/res)", "[sau]", "(bri/rvk)"; ANTARA's "(D011)"
    re.compile(r"[(\[]([a-z0-9]{2,12}(/[a-z0-9]{2,12})*|[A-Z]\.?[A-Z]?\d{3}(/[A-Z]\d{3})*)[)\]]"),
    # CLICK-ID remnants of removed social-media embeds: '," tulis akun,. "', '" sahut netter yang lain.'
    re.compile(
        r"[\s\"“”,.]*(kata|tulis|komentar|sahut|seru|tambah|imbuh|balas|ujar|sambung|timpal|pungkas)"
        r"\s+(akun|netter|netizen|warganet|yang lain|lainnya|seorang netter)[\w ]{0,20}[\s\"“”,.]*",
        _I,
    ),
]

# all of them in one pattern: one match attempt per line
_ANY_BOILERPLATE = re.compile(
    "|".join(f"(?{'i' if p.flags & re.I else ''}:{p.pattern})" for p in BOILERPLATE)
)

# Noise repaired inside lines: (pattern, replacement, lower-case substrings one of which the line must
# hold for the pattern to apply: a cheap guard, as these run on every line).
# CLICK-ID replaced link texts with commas.
INLINE_FIXES: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    # spreadsheet export artefact
    (re.compile(r"_x000D_"), " ", ("_x000d_",)),
    # "[Baca juga: <title>]" inside a paragraph
    (re.compile(r"\[\s*baca[ _]juga\s*:[^\]]*\]", _I), " ", ("juga",)),
    # "Baca juga:,," whose link text was removed
    (re.compile(r"\bbaca[ _]juga\s*:?(\s*,)+", _I), " ", ("juga",)),
    # "(,)" / "( )" emptied brackets
    (re.compile(r"\(\s*[,;]?\s*\)"), " ", (")",)),
    # " ," space before a comma
    (re.compile(r"(?<! ) +(?=,)"), "", (" ,",)),  # run starts only: linear on long runs of spaces
    # ",,," runs
    (re.compile(r",(\s*,)+"), ",", (",,",)),
    # ",." -> "."
    (re.compile(r"(?<![,;])[,;]+(?=[.!?])"), "", (",.", ",!", ",?", ";.")),  # run starts only: linear
    # editor initials closing a paragraph: "... katanya. (ard)", "... pungkasnya. [rnd]"
    (re.compile(r"(?<=[.!?\"”])\s*[(\[][a-z]{2,12}(/[a-z0-9]{2,12})*[)\]]$"), "", (")", "]")),
]

# An original-source line: "Sumber: Channelnewsasia.com", "(Sumber: Reuters)", "Sumber berita Gizmochina."
_SOURCE_LINE = re.compile(r"\(?\s*sumber(?: berita)?\s*:?\s+(?P<src>[^!?:()]{2,60}?)\.?\s*\)?", _I)
SOURCE_MAX_WORDS = 8  # a longer "Sumber: ..." line is a sentence, not a credit

# --- Datelines: "INDOZONE.ID - ", "JAKARTA, KOMPAS.com - ", "Jakarta, CNN Indonesia -- ", "Bogor (ANTARA) - "
_DATELINE = re.compile(r"^(?P<head>[^\n!?\"“”]{2,60}?)\s+(?:-\s?-|--|[-–—])(?:\s+|$)")
# "– Badan ..." / "., - ..." : a dash whose dateline was removed from the text
_DATELINE_JUNK = re.compile(r"^[^\w\"“(\[]*[-–—]+\s+")
_DOMAIN = re.compile(r"\w\.(com|co|id|net|org|tv|news|co\.id)$", _I)
KNOWN_PUBLISHERS = {
    "antara", "antara news", "antaranews", "bisnis", "cnn indonesia", "cnbc indonesia", "detikcom", "kompas",
    "kontan", "kumparan", "liputan6", "merdeka", "okezone", "pos kota", "republika", "rimanews", "sindonews",
    "suara", "tempo", "tribunnews", "viva",
}  # fmt: skip

# --- Dates ------------------------------------------------------------------------------------------------
MONTHS = {
    "januari": 1, "january": 1, "jan": 1, "februari": 2, "february": 2, "feb": 2, "pebruari": 2, "maret": 3,
    "march": 3, "mar": 3, "april": 4, "apr": 4, "mei": 5, "may": 5, "juni": 6, "june": 6, "jun": 6, "juli": 7,
    "july": 7, "jul": 7, "agustus": 8, "august": 8, "agu": 8, "agt": 8, "aug": 8, "ags": 8, "september": 9,
    "sep": 9, "sept": 9, "oktober": 10, "october": 10, "okt": 10, "oct": 10, "november": 11, "nov": 11,
    "nopember": 11, "desember": 12, "december": 12, "des": 12, "dec": 12,
}  # fmt: skip
_MONTH = r"(?P<mon>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_DAY_NAME = r"(?:senin|selasa|rabu|kamis|jum'?at|sabtu|minggu|ahad)"
_ISO = re.compile(r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?!\d)")
_DAY_MONTH_YEAR = re.compile(rf"\b(?P<d>\d{{1,2}})[\s-]+{_MONTH}[\s-]+(?P<y>\d{{4}}|\d{{2}})\b", _I)
_TEXT_DAY_MONTH_YEAR = re.compile(rf"\b(?P<d>\d{{1,2}})\s+{_MONTH}\s+(?P<y>\d{{4}})\b", _I)
_MONTH_DAY_YEAR = re.compile(rf"\b{_MONTH}\s+(?P<d>\d{{1,2}}),?\s+(?P<y>\d{{4}})\b", _I)
_SLASHED = re.compile(r"\b(?P<a>\d{1,2})/(?P<b>\d{1,2})/(?P<y>\d{4}|\d{2})\b")
# in running text a slashed date counts only after a day name: "Senin (21/10/2024)", "Kamis, 3/9/2019";
# without a year ("Minggu (3/9)") it only helps to read an ambiguous metadata date
_TEXT_SLASHED = re.compile(
    rf"\b{_DAY_NAME}\s*,?\s*\(?\s*(?P<a>\d{{1,2}})/(?P<b>\d{{1,2}})(?:/(?P<y>\d{{4}}))?\b", _I
)
_DAY_NAME_DATE = re.compile(rf"\b{_DAY_NAME}\s*,?\s*\(?(?P<d>\d{{1,2}})\s+{_MONTH}\s+(?P<y>\d{{4}})\b", _I)
_YEAR = re.compile(r"\d{4}")
DATE_PARAGRAPHS = 3  # a day-named date ("Senin (21/10/2024)") counts in this many leading paragraphs
# a bare "21 Oktober 2024" counts only in the first paragraph: later ones are often other events' dates
Hint = tuple[int, int, int | None]  # (day, month, year or None) of a date seen in the text

# Removed from text: zero-width characters and the soft hyphen; bidi marks, embeddings, overrides and
# isolates (they reorder what a reader sees: quotes are shown as stored); control characters (a terminal
# escape in an article must not reach a terminal); lone surrogates (JSON "\\ud800" decodes to one and
# cannot be encoded as UTF-8); noncharacters. Zero-width joiners go too: an emoji sequence then shows
# as its parts, which news text can live with. The format characters are all of Unicode's category Cf
# (listed, not computed: scanning every code point would cost the CLI's start-up), tag characters included:
# "Ia\U000e0020" must not be stored as an invisible difference.
_ZERO_WIDTH = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb\ufffe\uffff\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
    "\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff]"
)
_LINE_BREAK = re.compile("\r\n?|[\x85\u2028\u2029]")
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_TERMINAL = re.compile(r"[.!?:;\"”’')\]]$")
_NEW_BLOCK = re.compile(r"^([-*•▪]\s|\d{1,3}[.)]\s|#)")
_ID_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def clean_article(
    raw_text: str,
    *,
    title: str | None = None,
    date: str | None = None,
    url: str | None = None,
    source: str | None = None,
    publisher: str | None = None,
    path: str | None = None,
    article_id: str | None = None,
    day_first: bool | None = None,
) -> Article:
    """Clean `raw_text` into an Article; given metadata wins over what is found in the text.

    `day_first` says how a slashed `date` like "5/10/2025" is written, when the caller knows.
    Raises LoadError when no article text is left.
    """
    text = normalize(raw_text)
    found_source: str | None = None
    lines: list[str] = []  # "" marks a hard paragraph break
    for raw_line in text.split("\n"):
        line = strip_code(_fix_line(raw_line))  # JavaScript/CSS/markup that leaked into the text
        if line != raw_line and not line and raw_line:
            log.debug("%s: dropped a line of code: %.80s", path, raw_line)
        m = _SOURCE_LINE.fullmatch(line)
        if m and len(m.group("src").split()) <= SOURCE_MAX_WORDS:
            found_source = found_source or m.group("src").strip()
            line = ""
        elif _ANY_BOILERPLATE.fullmatch(line) or not any(c.isalnum() for c in line):
            line = ""
        lines.append(line)
    paragraphs = join_lines(lines)

    title = _clean_field(title)
    if title and paragraphs and paragraphs[0].casefold() == title.casefold():
        paragraphs = paragraphs[1:]  # the heading repeated as the first paragraph
    found_publisher = None
    if paragraphs:
        found_publisher, first = strip_dateline(paragraphs[0])
        paragraphs = ([first] if first else []) + paragraphs[1:]
    # a dateline's leftovers (" - ." after "JAKARTA, KOMPAS.com") say nothing: not a paragraph
    paragraphs = [p for p in paragraphs if any(c.isalnum() for c in p)]
    body = "\n\n".join(paragraphs)
    if not body:
        raise LoadError(path or "<text>", "no article text after cleaning")

    parsed_date = None
    if date:
        hints = date_hints(body) if day_first is None and "/" in date else None  # only for "5/10/2025"
        parsed_date = parse_date(date, hints, day_first=day_first)
        if parsed_date is None:
            log.debug("%s: unrecognised date %r", path, date)
    article_id = sanitize_id(article_id) if article_id else None
    return Article(
        article_id=article_id or content_id(title, body),
        text=body,
        title=title,
        publisher=_clean_field(publisher) or found_publisher,
        source=_clean_field(source) or found_source,
        date=parsed_date or find_date(paragraphs),
        url=_clean_field(url),
        path=path,
    )


def normalize(text: str) -> str:
    """NFC, unified newlines, no zero-width, bidi or control characters, single spaces, stripped lines."""
    text = _ZERO_WIDTH.sub("", text)  # before NFC, which cannot take lone surrogates
    text = _LINE_BREAK.sub("\n", unicodedata.normalize("NFC", text))
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))


def _fix_line(line: str) -> str:
    lower = line.lower()
    changed = False
    for pattern, replacement, guards in INLINE_FIXES:
        if any(g in lower for g in guards):
            fixed = pattern.sub(replacement, line)
            changed = changed or fixed != line
            line = fixed
    if changed:
        line = _SPACES.sub(" ", line)
    return line.strip(" ,;")


def join_lines(lines: list[str]) -> list[str]:
    """Group lines into paragraphs: each line is a paragraph unless it looks hard-wrapped.

    A line continues onto the next when it does not end a sentence and either the next line starts in
    lower case or the line is long prose (a short line without a full stop is a subheading).
    """
    paragraphs: list[str] = []
    current = previous = ""
    for line in lines:
        if current and line and _continues(previous, line):
            current = f"{current} {line}"
        else:
            if current:
                paragraphs.append(current)
            current = line
        previous = line
    if current:
        paragraphs.append(current)
    return paragraphs


def _continues(previous: str, line: str) -> bool:
    if _TERMINAL.search(previous) or _NEW_BLOCK.match(line):
        return False
    return line[0].islower() or (len(previous) >= 50 and previous.count(" ") >= 6)


def strip_dateline(paragraph: str) -> tuple[str | None, str]:
    """(publisher or None, paragraph without its leading dateline)."""
    m = _DATELINE.match(paragraph)
    if m:
        ok, publisher = _parse_dateline(m.group("head").strip())
        if ok:
            return publisher, paragraph[m.end() :].strip()
    junk = _DATELINE_JUNK.match(paragraph)
    return None, paragraph[junk.end() :] if junk else paragraph


def _is_publisher(s: str) -> bool:
    return bool(_DOMAIN.search(s)) or s.casefold() in KNOWN_PUBLISHERS


def _is_place(s: str) -> bool:
    words = s.split()
    return 0 < len(words) <= 4 and all(w[0].isupper() and not any(c.isdigit() for c in w) for w in words)


def _parse_dateline(head: str) -> tuple[bool, str | None]:
    """Whether `head` is a dateline, and its publisher."""
    m = re.fullmatch(r"(?P<place>[^()]+?)\s*\((?P<pub>[^()]{2,30})\)", head)
    if m:
        return _is_place(m.group("place")), m.group("pub").strip()
    parts = [p.strip() for p in head.split(",")]
    if len(parts) == 1:
        if _is_publisher(head):
            return True, head
        return head.isupper() and _is_place(head), None  # "JAKARTA - "
    if len(parts) == 2:
        a, b = parts
        if _is_publisher(a) and _is_place(b):
            return True, a  # "TEMPO.CO, Jakarta"
        if _is_place(a) and _is_publisher(b):
            return True, b  # "JAKARTA, KOMPAS.com", "Jakarta, CNN Indonesia"
    return False, None


def find_date(paragraphs: list[str]) -> str | None:
    """The first publication-like date in the leading paragraphs as YYYY-MM-DD, or None."""
    lead = "\n\n".join(paragraphs[:DATE_PARAGRAPHS])
    if not _YEAR.search(lead):
        return None
    first = len(paragraphs[0]) if paragraphs else 0
    best: tuple[int, str] | None = None
    for pattern, within in ((_TEXT_SLASHED, len(lead)), (_DAY_NAME_DATE, len(lead)), (_ISO, len(lead)),
                            (_TEXT_DAY_MONTH_YEAR, first)):  # fmt: skip
        for m in pattern.finditer(lead, 0, within):
            iso = _from_match(m, day_first=True) if m.group("y") else None
            if iso:
                if best is None or m.start() < best[0]:
                    best = (m.start(), iso)
                break
    return best[1] if best else None


def date_hints(text: str) -> list[Hint]:
    """Day-named dates in the text, year optional: "Minggu (3/9)" -> (3, 9, None)."""
    if "/" not in text:
        return []
    return [
        (int(m.group("a")), int(m.group("b")), int(m.group("y")) if m.group("y") else None)
        for m in _TEXT_SLASHED.finditer(text)
    ]


def parse_date(value: str, hints: list[Hint] | None = None, *, day_first: bool | None = None) -> str | None:
    """A metadata date in any common shape as YYYY-MM-DD, or None.

    A slashed date is read as `day_first` says; when that is not known, day first unless impossible
    ("10/20/2025"), and when both readings are valid the one nearest (within a month) to a date named in
    the text wins: "10/5/2025" with "Minggu (5/10)" in the text -> 2025-10-05.
    """
    value = value.strip()
    for pattern in (_ISO, _DAY_MONTH_YEAR, _MONTH_DAY_YEAR):
        m = pattern.search(value)
        if m:
            return _from_match(m, day_first=True)
    m = _SLASHED.search(value)
    if not m:
        return None
    if day_first is not None:
        return _from_match(m, day_first=day_first)
    dmy = _from_match(m, day_first=True)
    mdy = _from_match(m, day_first=False)
    if dmy and mdy and dmy != mdy and hints and _distance(mdy, hints) < _distance(dmy, hints):
        return mdy
    return dmy or mdy


def slashed_order(dates: Iterable[str]) -> bool | None:
    """Whether slashed dates are day first (True), month first (False) or unknown, judged on all of them."""
    day_first = month_first = False
    for value in dates:
        m = _SLASHED.search(value)
        if m and not _ISO.search(value):
            day_first |= int(m.group("a")) > 12
            month_first |= int(m.group("b")) > 12
    return day_first if day_first != month_first else None


def _distance(iso: str, hints: list[Hint]) -> int:
    """Days from `iso` to the nearest hint (a hint without a year takes that of `iso`); 31 at most."""
    d = dt.date.fromisoformat(iso)
    best = 31
    for day, month, year in hints:
        try:
            best = min(best, abs((dt.date(year or d.year, month, day) - d).days))
        except ValueError:
            continue
    return best


def _from_match(m: re.Match[str], *, day_first: bool) -> str | None:
    groups = m.groupdict()
    if "mon" in groups:
        month, day = MONTHS[groups["mon"].lower()], int(groups["d"])
    elif "m" in groups:
        month, day = int(groups["m"]), int(groups["d"])
    else:
        a, b = int(groups["a"]), int(groups["b"])
        day, month = (a, b) if day_first else (b, a)
    year = int(groups["y"])
    if year < 100:
        year += 2000 if year < 70 else 1900
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def sanitize_id(raw: str) -> str:
    """An id safe for `article_id:chunk_no`: runs of characters outside [A-Za-z0-9_.-] become "_"."""
    return _ID_CHARS.sub("_", raw.strip()).strip("_")


def content_id(title: str | None, text: str) -> str:
    """Content-derived article id: first 16 hex chars of sha256 of the cleaned title and text."""
    return content_hash(f"{title or ''}\n{text}")[:16]


def _clean_field(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = _LINE_BREAK.sub(" ", unicodedata.normalize("NFC", _ZERO_WIDTH.sub("", value)))
    value = _SPACES.sub(" ", value.replace("\n", " "))
    value = value.strip()
    return value or None
