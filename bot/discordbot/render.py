"""Pure rendering for Discord: answers as messages and embeds within Discord's limits.

Nothing here talks to Discord; every function takes plain data and returns text or `discord.Embed`s,
so the limits are tested as properties (tests/test_discord_render.py).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING

import discord

from bot.answer.types import Answer, Citation
from bot.discordbot.texts import text

if TYPE_CHECKING:
    from bot.discordbot.worker import AddResult
    from index.ingest import IndexReport

# Discord's limits, in characters.
MESSAGE_LIMIT = 2000
EMBED_TITLE_LIMIT = 256
EMBED_DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000  # all embeds of one message together
EMBED_FIELDS_LIMIT = 25
EMBEDS_PER_MESSAGE = 10
THREAD_NAME_LIMIT = 100

COLOUR = discord.Colour(0x2B6CB0)
# Passed with every message, edit and follow-up (the client default too): article text never pings anyone.
NO_PINGS = discord.AllowedMentions.none()
_FOOTER_RESERVE = 200  # room kept for the "more sources" footer when filling the sources embed
_MIN_FIELD_VALUE = 80  # below this a source is left to the "All sources" view instead of squeezed

# Spans a cut must never fall inside: code blocks and spans, links (bare or <wrapped>), and citation
# markers together with the blanks before them, so a marker never starts a message on its own.
_PROTECTED = re.compile(
    r"```.*?```"
    r"|`[^`\n]+`"
    r"|<https?://[^\s>]+>"
    r"|https?://[^\s<>]+"
    r"|[ \t]*\[\d+\](?:[ \t]*\[\d+\])*",
    re.S,
)
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?:[ \t]*\[\d+\])*$")
_WHITESPACE = re.compile(r"\s+")
_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.S)
_BARE_URL = re.compile(r"(?<![<\w])https?://[^\s<>\[\]()`\"]+")
_URL_TRAILING = ".,;:!?'\"”’"


# --- splitting -----------------------------------------------------------------------------------------


def protected_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every code span/block, link and citation marker (with its leading blanks)."""
    return [m.span() for m in _PROTECTED.finditer(text)]


def split_text(text: str, limit: int) -> list[str]:
    """Cut `text` into pieces of at most `limit` characters whose concatenation is exactly `text`.

    Cuts fall after paragraph, then line, then sentence, then word boundaries (a weaker boundary wins only
    when the stronger one would leave the piece under a quarter full), never inside a code span, a link
    or a citation marker. Only a single unbreakable span longer than `limit` is cut where the limit falls.
    """
    return _split(text, limit, fill=0.25)


def _split(text: str, limit: int, fill: float) -> list[str]:
    if limit < 1:
        raise ValueError("limit must be positive")
    if len(text) <= limit:
        return [text] if text else []
    spans = protected_spans(text)
    starts = [s for s, _ in spans]

    def inside(i: int) -> tuple[int, int] | None:
        k = bisect.bisect_right(starts, i) - 1
        if k >= 0 and spans[k][0] < i < spans[k][1]:
            return spans[k]
        return None

    # Cut points sit right after a run of whitespace, so the whitespace stays with the earlier piece.
    levels: list[list[int]] = [[], [], [], []]  # word, sentence, line, paragraph
    for m in _WHITESPACE.finditer(text):
        a, b = m.span()
        if b >= len(text) or inside(b):
            continue
        newlines = text.count("\n", a, b)
        if newlines >= 2:
            levels[3].append(b)
        elif newlines == 1:
            levels[2].append(b)
        elif _SENTENCE_END.search(text, max(0, a - 64), a):
            levels[1].append(b)
        else:
            levels[0].append(b)

    pieces: list[str] = []
    start = 0
    while len(text) - start > limit:
        hi = start + limit
        window = text[start:hi]
        lo = start + len(window) - len(window.lstrip())  # a piece must hold more than whitespace
        cut = _best_cut(levels, lo, hi, start + int(limit * fill))
        if cut is None and start < lo < hi and inside(lo) is None:
            cut = lo  # whitespace left over from a hard cut: a blank piece beats cutting a word
        if cut is None:
            cut = hi
            span = inside(hi)
            if span is not None and span[0] > start:
                cut = span[0]  # keep the span whole in the next piece
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def _best_cut(levels: list[list[int]], lo: int, hi: int, enough: int) -> int | None:
    fallback = None
    for points in reversed(levels):
        k = bisect.bisect_right(points, hi) - 1
        if k >= 0 and points[k] > lo:
            if points[k] >= enough:
                return points[k]
            fallback = fallback or points[k]
    return fallback


def clip(text: str, limit: int) -> tuple[str, bool]:
    """`text` cut to `limit` characters with an ellipsis, at a boundary when one is near; (text, cut?)."""
    if len(text) <= limit:
        return text, False
    if limit <= 1:
        return "…"[:limit], True
    head = _split(text, limit - 1, fill=0.6)[0].rstrip()
    return (head or text[: limit - 1]) + "…", True


def wrap_links(text: str) -> str:
    """Bare links wrapped in <...> so Discord shows no preview; code is left as it is."""
    out: list[str] = []
    pos = 0
    for m in _CODE.finditer(text):
        out += [_BARE_URL.sub(_wrap, text[pos : m.start()]), m.group()]
        pos = m.end()
    out.append(_BARE_URL.sub(_wrap, text[pos:]))
    return "".join(out)


def _wrap(m: re.Match[str]) -> str:
    url = m.group()
    trail = ""
    while url and url[-1] in _URL_TRAILING:
        url, trail = url[:-1], url[-1] + trail
    return f"<{url}>{trail}" if url else trail


# What article text must not become in Discord: mentions of users, roles, channels, commands, emoji and
# timestamps (<@1>, <@&2>, <#3>, </cmd:4>, <:e:5>, <t:6>), @everyone/@here, and masked links [x](url).
# A zero-width space breaks each apart; what a reader sees stays the article's text.
_MENTION = re.compile(r"<(?=@|#\d|/[\w -]+:\d|a?:\w+:\d|t:-?\d)")
_MASS_MENTION = re.compile(r"@(?=everyone|here)")
_MASKED_LINK = re.compile(r"\](?=\()")
_ZWSP = "\u200b"


def defuse(text: str) -> str:
    """Article text made inert for Discord: no mention, no @everyone/@here, no masked link forms."""
    text = _MENTION.sub("<" + _ZWSP, text)
    text = _MASS_MENTION.sub("@" + _ZWSP, text)
    return _MASKED_LINK.sub("]" + _ZWSP, text)


def one_line(text: str) -> str:
    """Whitespace runs (newlines included) collapsed to single spaces."""
    return " ".join(text.split())


# --- answers -------------------------------------------------------------------------------------------


@dataclass
class OutMessage:
    """One Discord message to send: content, embeds, and whether it carries the "All sources" button."""

    content: str = ""
    embeds: list[discord.Embed] = field(default_factory=list)
    sources_button: bool = False


def safe_url(url: str | None) -> bool:
    """Whether an article's link can be shown as one: http(s), nothing that would end the <...> early."""
    return bool(url) and re.fullmatch(r"https?://[^\s<>()\[\]`]+", (url or "").strip()) is not None


def citation_title(c: Citation) -> str:
    """The article's title, else its file name, else its id."""
    if c.title and c.title.strip():
        return defuse(one_line(c.title))
    if c.path:
        return PurePath(c.path.split("#", 1)[0]).name or c.article_id
    return c.article_id


def citation_meta(c: Citation) -> str:
    """'Publisher (via Source) · 2024-10-21' with whatever is known."""
    who = (c.publisher or "").strip()
    source = (c.source or "").strip()
    if source and source.casefold() != who.casefold():
        who = f"{who} (via {source})" if who else source
    return defuse(one_line(" · ".join(p for p in (who, (c.date or "").strip()) if p)))


def answer_notes(answer: Answer) -> tuple[str, str]:
    """The LLM notice (why this is the extractive answer) and how many sentences verification removed.

    Italic lines, '' when there is nothing to say; the notice is already in the question's language.
    """
    notice = f"⚠️ *{discord.utils.escape_markdown(one_line(answer.notice))}*" if answer.notice else ""
    removed = ""
    if answer.dropped_sentences:
        removed = f"*{text('sentences_removed', answer.language, n=answer.dropped_sentences)}*"
    return notice, removed


def bold_marks(answer: Answer) -> str:
    """The answer text with each marked answer phrase in bold."""
    text = answer.answer
    for start, end in sorted(answer.marked_spans(), reverse=True):
        text = f"{text[:start]}**{text[start:end]}**{text[end:]}"
    return text


def render_answer(answer: Answer) -> list[OutMessage]:
    """The answer text (split within the message limit), then the sources embed on the last message.

    The LLM notice goes above the text and the count of removed sentences below it, as `kabar ask` shows them.
    """
    body = wrap_links(defuse(bold_marks(answer).strip()))
    if not body and (answer.refused or not answer.citations):
        body = text("no_answer", answer.language)
    notice, removed = answer_notes(answer)
    body = "\n\n".join(part for part in (notice, body, removed) if part)
    messages = [OutMessage(p.strip()) for p in split_text(body, MESSAGE_LIMIT) if p.strip()]
    if answer.refused or not answer.citations:
        return messages
    embed, complete = sources_embed(answer)
    if not messages:
        messages = [OutMessage()]
    messages[-1].embeds.append(embed)
    messages[-1].sources_button = not complete
    return messages


def sources_embed(answer: Answer) -> tuple[discord.Embed, bool]:
    """One field per cited source, quotes shortened to fit; (embed, whether everything fitted in full)."""
    lang = answer.language
    embed = discord.Embed(title=text("sources", lang), colour=COLOUR)
    shown = answer.citations[:EMBED_FIELDS_LIMIT]
    room = EMBED_TOTAL_LIMIT - len(embed.title or "") - _FOOTER_RESERVE
    complete = True
    for i, c in enumerate(shown):
        name, _ = clip(one_line(f"[{c.n}] {citation_title(c)}"), FIELD_NAME_LIMIT)
        budget = min(FIELD_VALUE_LIMIT, room // (len(shown) - i) - len(name))
        if budget < _MIN_FIELD_VALUE:
            break
        value, cut = source_field(c, budget)
        complete = complete and not cut
        embed.add_field(name=name, value=value, inline=False)
        room -= len(name) + len(value)
    missing = len(answer.citations) - len(embed.fields)
    if missing:
        embed.set_footer(text=text("sources_more", lang, n=missing))
    elif not complete:
        embed.set_footer(text=text("sources_shortened", lang))
    return embed, complete and not missing


def source_field(c: Citation, budget: int) -> tuple[str, bool]:
    """A source's embed field value within `budget` characters: origin, date, link, quote; (value, cut?)."""
    lines: list[str] = []
    cut = False
    meta = citation_meta(c)
    if meta:
        meta, meta_cut = clip(meta, budget // 3)
        lines.append(meta)
        cut = cut or meta_cut
    if safe_url(c.url):
        link = f"<{one_line(c.url or '')}>"
        if len(link) <= budget // 3:
            lines.append(link)
        else:
            cut = True  # the "All sources" view shows it
    quote = defuse(one_line(c.quote))
    room = budget - sum(len(line) + 1 for line in lines) - 2
    if quote and room >= 16:
        quote, quote_cut = clip(quote, room)
        lines.append(f"> {quote}")
        cut = cut or quote_cut
    elif quote:
        cut = True
    return "\n".join(lines) or "—", cut


def render_sources_full(answer: Answer) -> list[OutMessage]:
    """Every source with its whole quote, as embed pages packed into messages (the "All sources" view)."""
    blocks = []
    for c in answer.citations:
        lines = [f"**[{c.n}] {citation_title(c)}**"]
        if meta := citation_meta(c):
            lines.append(meta)
        if safe_url(c.url):
            lines.append(f"<{one_line(c.url or '')}>")
        lines.append(f"“{defuse(c.quote.strip())}”")
        blocks.append("\n".join(lines))
    pages = [p.strip() for p in split_text("\n\n".join(blocks), EMBED_DESCRIPTION_LIMIT) if p.strip()]
    title = text("sources", answer.language)
    embeds = [
        discord.Embed(
            title=title if len(pages) == 1 else f"{title} ({i}/{len(pages)})", description=p, colour=COLOUR
        )
        for i, p in enumerate(pages, 1)
    ]
    return [OutMessage(embeds=group) for group in pack_embeds(embeds)]


def pack_embeds(embeds: list[discord.Embed]) -> list[list[discord.Embed]]:
    """Embeds grouped into messages: at most 10 per message and 6,000 characters together."""
    groups: list[list[discord.Embed]] = []
    size = 0
    for e in embeds:
        if not groups or size + len(e) > EMBED_TOTAL_LIMIT or len(groups[-1]) >= EMBEDS_PER_MESSAGE:
            groups.append([])
            size = 0
        groups[-1].append(e)
        size += len(e)
    return groups


# --- the rest of the bot's output ----------------------------------------------------------------------


def thread_name(question: str) -> str:
    """A thread title from the question (Discord allows 100 characters)."""
    return clip(one_line(question), THREAD_NAME_LIMIT)[0] or "Kabar"


def language_of(locale: discord.Locale | str | None) -> str:
    """'id' for an Indonesian Discord client, else 'en'."""
    return "id" if str(locale or "").lower().startswith("id") else "en"


def render_stats(stats: dict, lang: str) -> discord.Embed:
    """`/kabar_stats` as an embed (the data directory stays private)."""
    embed = discord.Embed(title=text("stats_title", lang), colour=COLOUR)
    embed.add_field(name=text("stats_articles", lang), value=str(stats.get("articles", 0)))
    embed.add_field(name=text("stats_chunks", lang), value=str(stats.get("chunks", 0)))
    embed.add_field(name=text("stats_model", lang), value=clip(str(stats.get("embed_model") or "—"), 1024)[0])
    embed.add_field(name=text("stats_last", lang), value=str(stats.get("last_indexed") or "—"), inline=False)
    return embed


_PHASES = {
    "model": "Preparing the embedding model",
    "load": "Reading articles",
    "embed": "Embedding chunks",
    "keywords": "Building the keyword index",
}


def render_progress(what: str, phase: str | None, done: int, total: int) -> str:
    """'⏳ Re-indexing seeds… Embedding chunks: 64/512 (12%)'."""
    head = f"⏳ {what}…"
    if phase is None:
        return head
    label = _PHASES.get(phase, phase)
    count = f"{done}/{total} ({100 * done // total}%)" if total else f"{done}"
    return clip(f"{head} {label}: {count}", MESSAGE_LIMIT)[0]


def render_index_report(report: IndexReport, stats: dict, folders: list[str]) -> str:
    """The summary of a `/reindex` run, within one message."""
    lines = [
        f"✅ Re-indexed {', '.join(f'`{f}`' for f in folders)}: {report.added} new, "
        f"{report.updated} changed, "
        f"{report.unchanged} unchanged"
        + (f", {report.removed} removed" if report.removed else "")
        + f" article(s); {report.chunks_embedded} chunk(s) embedded in {report.seconds:.1f} s.",
        f"The index now holds {stats.get('articles', 0)} article(s), {stats.get('chunks', 0)} chunk(s).",
    ]
    if report.skipped:
        lines.append(f"Skipped {len(report.skipped)} file(s):")
        for path, reason in report.skipped[:10]:
            lines.append(f"- `{PurePath(path).name}`: {one_line(reason)}")
        if len(report.skipped) > 10:
            lines.append(f"- … and {len(report.skipped) - 10} more (see the bot's log)")
    return clip("\n".join(lines), MESSAGE_LIMIT)[0]


def render_added(result: AddResult) -> str:
    """What `/add_article` added, within one message."""
    lines = []
    for a in result.articles:
        title = clip(defuse(one_line(a.title or "(untitled)")), 200)[0]
        if a.status == "unchanged":
            lines.append(f"ℹ️ Already indexed: **{title}** (`{a.article_id}`, {a.chunks} chunk(s)).")
        else:
            verb = "Added" if a.status == "added" else "Updated"
            lines.append(f"✅ {verb} **{title}** (`{a.article_id}`): {a.chunks} chunk(s).")
    if result.stored_as:
        lines.append(f"Stored as `{result.stored_as}` in the corpus; indexed in {result.seconds:.1f} s.")
    else:
        lines.append("Nothing new, so no file was stored.")
    for where, reason in result.skipped[:5]:
        lines.append(f"Skipped `{PurePath(where).name}`: {one_line(reason)}")
    return clip("\n".join(lines), MESSAGE_LIMIT)[0]
