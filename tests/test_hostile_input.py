"""Hostile corpus files: each is skipped with a message naming it (and its line) or indexed cleanly, in
bounded time and memory, and the rest of the corpus still loads.

Checked against real text too: over the 3,463 IndoSum dev articles the code filter drops 12 lines, all of
them code or leaked markup (a Facebook pixel, a Google remarketing tag, two OpenX `OA_show` calls and
eight `<img>` remnants), and none of 230,631 lines of IndoSum, CLICK-ID, detik and NTREX prose.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index import safeio
from index.chunk import chunk_article
from index.clean import clean_article, normalize
from index.codetext import is_code, strip_code
from index.errors import LoadError
from index.load import load_articles, markdown_to_text
from index.sentences import split_sentences
from index.types import Article

ROOT = Path(__file__).resolve().parent.parent
GOOD = "Pemerintah Korea Selatan pada Senin (21/10/2024) memanggil duta besar Rusia. Ia mengkritik keputusan."
# Written for these tests after the snippet two IndoSum articles carry: a tracking pixel as plain text.
PIXEL = (
    "//<! [CDATA [! function(a, b, c) {if(a.trk)return;n = a.trk = function(){n.q.push(arguments)}; "
    "t=b.createElement(c);t.async=!0; t.src='https://tracker.example/px.js'; b.head.appendChild(t)}"
    "(window, document,'script '); trk('init ', ' 1234 ');//]] & gt;"
)
CSS = ".artikel-iklan { display: none !important; margin: 0 auto; } .share{color:#fff;}"


def load(*paths: Path) -> tuple[list[Article], list[tuple[str, str]]]:
    skipped: list[tuple[str, str]] = []
    articles = list(load_articles(paths, on_skip=lambda p, r: skipped.append((p, r))))
    return articles, skipped


def timed(seconds: float):
    """A generous guard on how long one hostile input may take (the machine is shared)."""

    class Guard:
        def __enter__(self):
            self.t0 = time.perf_counter()
            return self

        def __exit__(self, *exc):
            self.elapsed = time.perf_counter() - self.t0
            assert exc[0] is not None or self.elapsed < seconds, f"took {self.elapsed:.1f}s"

    return Guard()


def gzip_bomb(path: Path, gigabytes: int) -> None:
    """A .jsonl.gz of zeros in one line that expands to `gigabytes` GB: one compressed member repeated
    (gzip readers read concatenated members), so it costs a second to make, not minutes."""
    member = gzip.compress(b"0" * (64 << 20), compresslevel=9)
    with open(path, "wb") as f:
        for _ in range(gigabytes * 16):
            f.write(member)


# --- one file of each kind, next to a good one ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        (
            "png.txt",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8,
            "binary file (NUL bytes)",
        ),
        ("gz.md", gzip.compress(b"# Judul\n\nIsi berita. " * 50), "binary file"),
        (
            "exe.html",
            b"MZ\x90\x00\x03\x00\x00\x00" + bytes(range(256)) * 8,
            "binary file (NUL bytes), not HTML",
        ),
        ("zip.json", b"PK\x03\x04" + bytes(range(256)) * 8, "binary file (NUL bytes)"),
        ("random.txt", bytes((i * 7919 + 13) % 256 for i in range(4096)), "binary file"),
        ("latin.txt", bytes(range(0x80, 0x100)) * 20, "not UTF-8 text"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
    ],
)
def test_binary_and_broken_files_are_skipped_with_a_reason(tmp_path, name, content, reason):
    (tmp_path / name).write_bytes(content)
    (tmp_path / "zz_good.txt").write_text(GOOD)
    with timed(10):
        articles, skipped = load(tmp_path)
    assert [a.text for a in articles] == [GOOD]
    assert len(skipped) == 1 and skipped[0][0] == str(tmp_path / name), skipped
    assert skipped[0][1].startswith(reason), skipped


def test_a_few_stray_bytes_do_not_cost_the_article(tmp_path, caplog):
    # a torn write (NUL) and a corrupted byte (0x81, no character in any encoding read) in a UTF-8 article
    text = (GOOD + " Harga naik “tajam” pekan ini. ") * 20
    data = text.encode()
    data = data[:100] + b"\x00" + data[100:200] + b"\x81" + data[200:]
    (tmp_path / "a.txt").write_bytes(data)
    (article,), skipped = load(tmp_path)
    assert skipped == []
    assert "\x00" not in article.text and "\ufffd" in article.text and "“tajam”" in article.text
    assert "control byte" in caplog.text and "U+FFFD" in caplog.text


def test_jsonl_nul_escape_and_lone_surrogate_are_removed(tmp_path):
    path = tmp_path / "c.jsonl"
    rows = [
        {"doc_id": "a", "title": "Judul\ud800", "text": "Isi\u0000 berita\ud83d satu."},
        {"doc_id": "b", "text": GOOD},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    articles, skipped = load(path)
    assert skipped == []
    assert [(a.title, a.text) for a in articles] == [("Judul", "Isi berita satu."), (None, GOOD)]
    for a in articles:
        a.text.encode("utf-8")  # storable


def test_fifo_with_a_text_name_is_not_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.txt")  # opening it would block forever
    (tmp_path / "zz_good.txt").write_text(GOOD)
    with timed(5):
        articles, skipped = load(tmp_path)
    assert [a.text for a in articles] == [GOOD]
    assert skipped == [(str(tmp_path / "pipe.txt"), "not a regular file")]


# --- size: nothing unbounded is read ----------------------------------------------------------------------


def test_huge_text_file_is_skipped_before_it_is_read(tmp_path):
    big = tmp_path / "dump.txt"
    with open(big, "wb") as f:
        f.truncate(200 * 1000 * 1000)  # 200 MB, sparse: the size alone decides
    (tmp_path / "zz_good.txt").write_text(GOOD)
    with timed(5):
        articles, skipped = load(tmp_path)
    assert [a.text for a in articles] == [GOOD]
    assert skipped == [
        (str(big), "file too large (200.0 MB, over the 1.0 MB limit, MAX_ARTICLE_BYTES): skipped")
    ]


def test_jsonl_with_a_100mb_line_keeps_the_records_around_it(tmp_path):
    path = tmp_path / "c.jsonl"
    with open(path, "wb") as f:
        f.write(json.dumps({"doc_id": "a", "text": "Berita satu."}).encode() + b"\n")
        f.write(b'{"doc_id": "big", "text": "' + b"kata " * (20 << 20) + b'"}\n')
        f.write(json.dumps({"doc_id": "c", "text": "Berita tiga."}).encode() + b"\n")
    with timed(20):
        articles, skipped = load(path)
    assert [a.text for a in articles] == ["Berita satu.", "Berita tiga."]
    assert skipped == [
        (f"{path}:2", "record too large (104.9 MB, over the 4.2 MB limit, MAX_RECORD_BYTES): skipped")
    ]


@pytest.mark.slow
def test_gzip_bomb_is_cut_off_streamed(tmp_path):
    bomb = tmp_path / "bomb.jsonl.gz"
    gzip_bomb(bomb, 1)  # 1 GB here; the end-to-end test has one of 4 GB
    assert bomb.stat().st_size < 2 << 20
    with timed(30):
        articles, skipped = load(bomb)
    assert articles == []
    ((where, reason),) = skipped
    assert where == f"{bomb}:1"
    assert "a decompression bomb?" in reason and "MAX_GZIP_RATIO" in reason


@pytest.mark.slow
def test_gzip_of_many_bad_lines_stops_after_a_bounded_number(tmp_path):
    # a bomb of short bad lines: not a million skip messages, one after MAX_BAD_RECORDS in a row
    bomb = tmp_path / "lines.jsonl.gz"
    bomb.write_bytes(gzip.compress(b"{}\n" * (16 << 20), compresslevel=9) * 8)  # 400 MB of "{}" lines
    with timed(30):
        skipped = load(bomb)[1]
    assert len(skipped) == safeio.MAX_BAD_RECORDS + 1
    assert skipped[-1] == (
        f"{bomb}:{safeio.MAX_BAD_RECORDS + 1}",
        "1,000 bad records in a row (MAX_BAD_RECORDS): not a corpus? Rest of file skipped",
    )


def test_bounded_lines_never_holds_more_than_the_limit():
    import io

    stream = io.BytesIO(b"a\n" + b"x" * 5000 + b"\nb\n")
    lines = list(safeio.bounded_lines(stream, 100))  # type: ignore[arg-type]
    assert [(line.lineno, line.data, line.length) for line in lines] == [
        (1, b"a\n", 2),
        (2, None, 5001),
        (3, b"b\n", 2),
    ]


# --- HTML: deep, script-laden -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["div", "article", "aside", "b"])
def test_deeply_nested_html_is_linear(tmp_path, tag):
    depth = 20_000  # 100,000 is in the end-to-end test
    (tmp_path / "deep.html").write_text(
        f"<html><body><main><p>{GOOD}</p>" + f"<{tag}>" * depth + "Isi terdalam." + f"</{tag}>" * depth
        + "</main></body></html>"
    )  # fmt: skip
    with timed(15):
        (article,), skipped = load(tmp_path)
    assert skipped == []
    if tag == "article":  # the outermost <article> is the article: what is outside it is page furniture
        assert article.text == "Isi terdalam."
    else:
        assert article.text.startswith(GOOD)
        assert ("Isi terdalam." in article.text) == (tag != "aside")  # <aside> is dropped as a sidebar


def test_too_many_tags_is_skipped(tmp_path):
    (tmp_path / "tags.html").write_text("<html><body>" + "<p><b><i>x" * 60_000 + "</body></html>")
    with timed(5):
        _, skipped = load(tmp_path)
    assert skipped == [
        (str(tmp_path / "tags.html"), "too many HTML tags (180,002; the limit is 150,000, MAX_HTML_TAGS)")
    ]


def test_html_full_of_scripts_styles_and_trackers(tmp_path):
    trackers = "".join(
        f"<script>!function(f,b,e){{f.fbq=function(){{}}}}(window,document,'script');fbq('track','{i}');</script>"
        f"<style>.ad-{i}{{display:none}}</style><noscript><img src='https://px.example/{i}.gif'></noscript>"
        f"<iframe src='https://ads.example/{i}'></iframe><div class='ads-slot'>Iklan {i}</div>"
        for i in range(300)
    )
    page = (
        f"<html><head><title>Judul</title>{trackers}</head><body>{trackers}<article><p>{GOOD}</p>"
        f"<script>document.write('<p>disisipkan</p>')</script><p>{PIXEL}</p><p>Paragraf kedua berita.</p>"
        f"</article>{trackers}</body></html>"
    )
    (tmp_path / "page.html").write_text(page)
    with timed(20):
        (article,), skipped = load(tmp_path)
    assert skipped == []
    assert article.text.split("\n\n") == [GOOD, "Paragraf kedua berita."]


# --- code that leaked into article text -------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        PIXEL,
        "//<! [CDATA [//]] & gt;",
        "<! --//<! [CDATA [OA_show('slot ');//]] > - - >",
        "var google_conversion_id = 12345; var google_custom_params = window.google_tag_params;",
        CSS,
        "@media (max-width: 600px) { .x { display: block; } }",
        "(adsbygoogle = window.adsbygoogle || []).push({});",
        "googletag.cmd.push(function() { googletag.display('div-gpt-ad-1'); });",
        "window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}",
        'Andi Setiawan " src="https://img.example/andi.jpg " style="height: 234 px; width: 468 px; "/>',
    ],
)
def test_code_lines_are_removed(code):
    article = clean_article(f"{GOOD}\n{code}\nParagraf terakhir ada di sini.")
    assert article.text.split("\n\n") == [GOOD, "Paragraf terakhir ada di sini."]


def test_prose_before_code_on_one_line_is_kept():
    assert strip_code(f"{GOOD} {PIXEL}") == GOOD


@pytest.mark.parametrize(
    "prose",
    [
        # real shapes of Indonesian news text that hold semicolons, parentheses, '=' and arrows
        "Prancis (4-2-3-1): Lloris; Digne, Umtiti, Kimpembe, Jallet; Rabiot, Kante; Mbappe, Thauvin.",
        "Kemudian diikuti Kalimantan Barat (1.384); Jambi (695); Sumatera Selatan (532); Riau (187).",
        "Total yang harus dibayar adalah Rp 232.000 (PKB) + Rp 35.000 (SWDKLLJ) = Rp 267.000.",
        "1. Cristiano Ronaldo (Juventus) --> 31 juta euro, 2. De Ligt (Juventus) --> 8 juta euro.",
        "Sabtu (24/6/2017) FP3 MotoGP 09.55 - 10.40 (14.55 - 15.40 WIB).",
        "Tiket kategori GA (2 Day Pass) dijual Rp 800 ribu; VIP {terbatas} dijual Rp 2 juta.",
        "Fungsi (function) lembaga itu mengawasi; var adalah singkatan dari video assistant referee.",
        'Ia menulis di Twitter: "Kita harus bersatu; jangan mau dipecah belah," katanya.',
        "Rumus yang dipakai BPS: inflasi = (IHK sekarang - IHK lalu) / IHK lalu x 100%.",
    ],
)
def test_prose_with_code_like_characters_is_kept(prose):
    assert not is_code(prose)
    assert clean_article(prose).text == prose


# --- invisible and mixed-direction characters -------------------------------------------------------------


def test_zero_width_bidi_and_control_characters_are_removed_emoji_kept():
    raw = (
        "Harga\u200b beras\u200d naik\u2060 😀 tajam.\u202e Ia\u2066 pergi\u2069 ke pasar 👍🏽.\u200f\n"
        "\x1b[31mMerah\x1b[0m dan \x07bel berbunyi. مرحبا بالعالم هنا."
    )
    article = clean_article(raw)
    assert article.text == (
        "Harga beras naik 😀 tajam. Ia pergi ke pasar 👍🏽.\n\n"
        "[31mMerah[0m dan bel berbunyi. مرحبا بالعالم هنا."
    )
    for s in split_sentences(article.text):
        assert article.text[s.start : s.end] == s.text  # quotes are exact substrings of the article


def test_unicode_line_separators_split_lines():
    assert normalize("satu\u2028dua\u2029tiga\x85empat") == "satu\ndua\ntiga\nempat"


# --- pathological text: linear time ----------------------------------------------------------------------

N = 400_000  # characters: quadratic work on this would take minutes, linear takes a second


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "run"),
    [
        ("unclosed bold", lambda: markdown_to_text("**a " * (N // 4))),
        ("unclosed images", lambda: markdown_to_text("![" * (N // 2))),
        ("unclosed tags", lambda: markdown_to_text("<" * N)),
        ("heading of spaces", lambda: markdown_to_text("# a" + " " * N + "b")),
        ("semicolon run", lambda: clean_article("Ab " + ";" * N + "x,.")),
        ("emptied brackets", lambda: clean_article("( ,) " * (N // 5))),
        ("parentheses", lambda: split_sentences("Ia " + "(Ab. Cd) " * (N // 9))),
        ("open quotes", lambda: split_sentences('"Ab cd. ' * (N // 8))),
        ("one paragraph", lambda: split_sentences("Ab cd. " * (N // 7))),
        ("dots", lambda: split_sentences("." * N + "x")),
        (
            "one long sentence",
            lambda: chunk_article(Article("a", "kata " * (N // 5)), lambda t: len(t.split())),
        ),
        ("one long word", lambda: chunk_article(Article("a", "x" * N), len)),
    ],
)
def test_pathological_text_is_linear(name, run):
    with timed(15):
        try:
            run()
        except LoadError:
            pass  # nothing left after cleaning is a fine answer; taking minutes is not


# --- end to end: a corpus of good and hostile files through index_paths ------------------------------------

CHILD = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from conftest import FakeEmbedder
from index.ingest import index_paths
from index.store import Store
embedder = FakeEmbedder()
store = Store(Path(sys.argv[2]), embedder.name, embedder.dim)
t0 = time.perf_counter()
report = index_paths([Path(sys.argv[1])], store, embedder)
seconds = time.perf_counter() - t0
store.close()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent (pytest) across fork + exec
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
print(json.dumps({"report": report.to_json(), "seconds": seconds, "maxrss_mb": peak}))
"""


def hostile_corpus(folder: Path) -> dict[str, str]:
    """Write good articles and one hostile file of each kind; returns hostile name -> expected reason."""
    folder.mkdir()
    for i in range(5):
        (folder / f"good{i}.txt").write_text(f"Berita baik nomor {i}. {GOOD}")
    (folder / "good.jsonl").write_text(
        "\n".join(json.dumps({"doc_id": f"j{i}", "text": f"Berita JSON nomor {i}. {GOOD}"}) for i in range(5))
    )
    gzip_bomb(folder / "bomb.jsonl.gz", 4)
    with open(folder / "dump.txt", "wb") as f:
        f.write(b"kata " * (40 << 20))  # 200 MB of real text
    with open(folder / "longline.jsonl", "wb") as f:
        f.write(b'{"doc_id": "big", "text": "' + b"kata " * (20 << 20) + b'"}\n')
        f.write(json.dumps({"doc_id": "after", "text": f"Berita sesudah baris panjang. {GOOD}"}).encode())
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8)
    (folder / "latin.md").write_bytes(bytes(range(0x80, 0x100)) * 20)
    (folder / "deep.html").write_text(
        f"<html><body><article><p>Berita HTML dalam. {GOOD}</p>" + "<div>" * 100_000 + "Isi."
        + "</div>" * 100_000 + "</article></body></html>"
    )  # fmt: skip
    (folder / "pixel.txt").write_text(f"Berita dengan piksel. {GOOD}\n{PIXEL}\n{CSS}\nParagraf penutup.")
    (folder / "unicode.txt").write_text(f"Berita\u200b dengan\u202e emoji 😀 dan العربية. {GOOD}")
    (folder / "nested.json").write_text("[" * 50_000 + "]" * 50_000)
    (folder / "junk.gz.jsonl.gz").write_bytes(b"not gzip at all")
    return {
        "bomb.jsonl.gz:1": "decompression bomb",
        "dump.txt": "file too large",
        "longline.jsonl:1": "record too large",
        "image.txt": "binary file (NUL bytes)",
        "latin.md": "not UTF-8 text",
        "nested.json": "JSON nested too deeply",
        "junk.gz.jsonl.gz:1": "corrupt gzip data",
    }


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_end_to_end_hostile_corpus(tmp_path):
    expected = hostile_corpus(tmp_path / "corpus")
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "corpus"), str(tmp_path / "data"), str(ROOT / "tests")],
        capture_output=True, text=True, timeout=180, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    wall = time.perf_counter() - t0
    for big in ("dump.txt", "longline.jsonl", "bomb.jsonl.gz"):  # pytest keeps recent tmp dirs: 300 MB
        (tmp_path / "corpus" / big).unlink()
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    report = result["report"]
    skipped = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    assert skipped.keys() == expected.keys(), skipped
    for name, reason in expected.items():
        assert reason in skipped[name], (name, skipped[name])
    # the good ones, the record after the long line, the deep page, the pixel and unicode articles
    assert report["added"] == 5 + 5 + 1 + 1 + 1 + 1
    assert wall < 90, f"indexing the hostile corpus took {wall:.0f}s"  # ~25 s on a shared 2-core machine
    assert result["maxrss_mb"] < 600, f"peak memory {result['maxrss_mb']:.0f} MB"
    print(f"\nhostile corpus: {result['seconds']:.1f}s indexing, peak RSS {result['maxrss_mb']:.0f} MB")


@pytest.mark.slow
def test_pixel_is_not_indexed_as_prose(tmp_path, fake_embedder):
    from index.ingest import index_paths
    from index.store import Store

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(f"Berita dengan piksel. {GOOD}\n{PIXEL}\n{CSS}\nParagraf penutup.")
    store = Store(tmp_path / "data", fake_embedder.name, fake_embedder.dim)
    report = index_paths([corpus], store, fake_embedder)
    store.close()
    assert report.added == 1 and report.skipped == []
    embedded = " ".join(t for batch in fake_embedder.calls for t in batch)
    assert "Paragraf penutup." in embedded
    for marker in ("CDATA", "function", "createElement", "display", "{", ";"):
        assert marker not in embedded


# --- hostile questions ---------------------------------------------------------------------------------

HOSTILE_QUESTIONS = {
    "10,000 characters": "Apa kata Kementerian Luar Negeri tentang pasukan Korea Utara? " * 160,
    "empty": "",
    "blank": " \t\n ",
    "only punctuation": "?!?!... ,,, ;; -- ??? !!!",
    "mixed scripts": "Apa kabar 北京 и Москва مرحبا שלום Ελλάδα 🇮🇩 tentang Korea?",
    "NUL and controls": "Korea\x00 Utara\x07\x1b[31m pasukan\u202e\u200b?",
    "zero-width only": "\u200b\u200c\u200d\ufeff\u2060",
    "one emoji": "🔥",
}


@pytest.fixture
def seed_engine(tmp_path, fake_embedder):
    from bot.app import engine_for
    from index.ingest import index_paths
    from index.search import Searcher
    from index.store import Store

    store = Store(tmp_path / "data", fake_embedder.name, fake_embedder.dim)
    index_paths([ROOT / "seeds"], store, fake_embedder)
    yield engine_for(Searcher(store, fake_embedder)), store
    store.close()


@pytest.mark.parametrize("kind", sorted(HOSTILE_QUESTIONS))
def test_hostile_questions_get_an_answer_or_a_refusal_quickly(seed_engine, kind):
    question = HOSTILE_QUESTIONS[kind]
    engine, store = seed_engine
    with timed(10):
        answer = engine.answer(question)
    assert answer.refused or answer.citations  # a refusal, or an answer that cites what it quotes
    assert answer.refused == (not answer.citations) and answer.answer.strip()
    for c in answer.citations:  # quotes are the article's own text
        rows = store.db.execute("SELECT text FROM chunks WHERE article_id = ?", (c.article_id,))
        texts = [r[0] for r in rows]
        assert c.quote and any(c.quote in t for t in texts)
    if kind in ("empty", "blank", "only punctuation", "zero-width only", "one emoji"):
        assert answer.refused  # nothing to look for: never a guess
