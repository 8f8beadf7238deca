"""Tell JavaScript, CSS and markup that leaked into article text from prose, so the cleaner can drop it.

Scraped articles carry tracking snippets as plain text (two IndoSum articles hold a Facebook pixel,
`//<! [CDATA [! function(f, b, e, v, n, t, s) {if(f.fbq)return; ...`); indexed, such text gets quoted as
an answer. A line is code when it holds a marker no prose has (CDATA, an HTML comment, a tracker call) or
when the characters of program syntax - braces, semicolons, `=`, `()` - are dense in it. Indonesian news
prose uses semicolons and parentheses, rarely braces or `=`, and never at that density: see
tests/test_hostile_input.py and the IndoSum figures in its docstring.
"""

from __future__ import annotations

import re

from index.sentences import split_sentences

# Markers that settle it: no news sentence holds them.
_DEFINITE = re.compile(
    r"<!\s*\[\s*CDATA\s*\[|//\s*\]\]\s*(>|&\s*gt)|<!\s*-\s*-|\bfunction\s*\([\w\s,$]*\)\s*\{"
    r"|\b(fbq|gtag|_gaq\.push|OA_show|googletag\.\w+|dataLayer\.push|adsbygoogle\.push)\s*\("
    r"|\bdocument\.(write|createElement|getElementsBy\w+|getElementById|querySelector\w*)\s*\("
    r"|\bwindow\.\w+\s*=[^=]|\(\s*adsbygoogle\s*=|@media\s*(screen|print|all|\()|!important\b"
    r"|\s(src|href|style)\s*=\s*\"|\"\s*/>"  # a leaked tag: 'Romelu Lukaku " src="https://...jpg "/>'
)
# Program syntax: counted, not decisive on its own. Prose has "; " and " = " (sums), not these.
_SYNTAX = re.compile(
    r"[{}]|;(?=\S)|[\w\])'\"]=[^=\s]|==|=>|&&|\|\||\w\(\)|\)\s*\{|\b(var|let|const)\s+[A-Za-z_$][\w$]*\s*="
    r"|[A-Za-z_$][\w$]*\.[A-Za-z_$][\w$]*\s*\(|['\"]\s*\+\s*[\w(]|[a-z-]+\s*:\s*[\w#.%-]+\s*;"
    r"|</?[a-z][\w-]*(\s[^<>]*)?/?>|\w+=\s*\"[^\"]*\""
)
_DECLARATION = re.compile(r"\b(var|let|const)\s+[A-Za-z_$][\w$]*\s*=")  # two in a line: code
_TRAILING_JUNK = re.compile(r"[^\w.!?\"”’)]+$")
_WORD = re.compile(r"[^\W\d_]{2,}")
MIN_SYNTAX = 4  # fewer syntax marks than this never make a line code by density
SYNTAX_PER_WORD = 0.35  # syntax marks per word at or above which a line is code (prose stays below 0.1)


def is_code(text: str) -> bool:
    """Whether a line or sentence is program code or markup rather than prose."""
    if _DEFINITE.search(text) or len(_DECLARATION.findall(text)) >= 2:
        return True
    marks = len(_SYNTAX.findall(text))
    if marks < MIN_SYNTAX:
        return False
    words = len(_WORD.findall(text))
    return marks >= SYNTAX_PER_WORD * max(words, 1)


def could_be_code(text: str) -> bool:
    """A cheap test that rules out most prose before `is_code` looks closer."""
    return any(c in text for c in '{};=<>["')


_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")


def strip_code(line: str) -> str:
    """The line without its code: "" when it is all code, its prose sentences when code trails them.

    A sentence survives next to code only when it reads as prose: three words or more, no code
    characters in it, ending like a sentence. Returns the line itself when it is not code.
    """
    if not could_be_code(line) or not is_code(line):
        return line
    first = min((m.start() for m in (_DEFINITE.search(line), _SYNTAX.search(line)) if m), default=len(line))
    head = _TRAILING_JUNK.sub("", line[:first])  # the prose before the first code, "//" and "<" left off
    kept = [s.text for s in split_sentences(head) if _is_prose(s.text)]
    kept += [s.text for s in split_sentences(line[first:]) if _is_prose(s.text)]
    return " ".join(kept)


def _is_prose(sentence: str) -> bool:
    return (
        bool(_SENTENCE_END.search(sentence))
        and len(_WORD.findall(sentence)) >= 3
        and not any(c in sentence for c in "{};=<>[]")
        and not is_code(sentence)
    )
