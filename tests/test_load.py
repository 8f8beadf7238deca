"""Loading every supported format, folders, skips and broken files, and deterministic ids."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.load import load_articles, markdown_to_text

DATA = Path(__file__).parent / "data"
SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_e425e8bd6ae908eb.txt"

BODY = "Pemerintah Korea Selatan pada Senin (21/10/2024) memanggil duta besar Rusia. Ia mengkritik keputusan."


def load(*paths: Path) -> tuple[list, list[tuple[str, str]]]:
    skipped: list[tuple[str, str]] = []
    articles = list(load_articles(paths, on_skip=lambda p, r: skipped.append((p, r))))
    return articles, skipped


def record(doc_id: str = "kabar:1", **fields) -> dict:
    return {"doc_id": doc_id, "title": "Judul", "source": "Kompas.com", "url": "https://k.id/1",
            "date": "2024-10-21", "text": BODY, **fields}  # fmt: skip


# --- formats -------------------------------------------------------------------------------------------


def test_txt_has_no_invented_title(tmp_path):
    path = tmp_path / "berita.txt"
    path.write_text(f"INDOZONE.ID - {BODY}\n", encoding="utf-8")
    (article,), skipped = load(path)
    assert skipped == []
    assert (article.title, article.publisher, article.date, article.path) == (
        None,
        "INDOZONE.ID",
        "2024-10-21",
        str(path),
    )
    assert article.text == BODY


def test_txt_header_lines_are_metadata(tmp_path):
    path = tmp_path / "berita.txt"
    path.write_text(
        f"Judul: Korsel Panggil Dubes\nTanggal: 2024-10-22\nURL: https://x.id/a\n\n{BODY}", "utf-8"
    )
    (article,), _ = load(path)
    assert (article.title, article.date, article.url, article.text) == (
        "Korsel Panggil Dubes",
        "2024-10-22",
        "https://x.id/a",
        BODY,
    )


def test_seed_file(tmp_path):
    (article,), skipped = load(SEED)
    assert skipped == []
    assert (article.publisher, article.source, article.date, article.title, article.path) == (
        "INDOZONE.ID",
        "Channelnewsasia.com",
        "2024-10-21",
        None,
        str(SEED),
    )


MARKDOWN = """---
title: "Judul Dari Front Matter"
date: 2024-10-20
---
# Judul Heading

INDOZONE.ID - Pemerintah **Korea Selatan** pada Senin (21/10/2024) memanggil
duta besar [Rusia](https://id.wikipedia.org/wiki/Rusia). Ia _mengkritik_ keputusan.

![foto](https://x.id/foto.jpg)

## Reaksi Moskow

- Kremlin membantah.
- NATO belum mengonfirmasi.

> "Kami akan melanjutkan kerja sama," kata `Peskov`.

---

[ref]: https://x.id/ref
"""


def test_markdown(tmp_path):
    path = tmp_path / "berita.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    (article,), skipped = load(path)
    assert skipped == []
    assert (article.title, article.date, article.publisher) == (
        "Judul Dari Front Matter",
        "2024-10-20",
        "INDOZONE.ID",
    )
    assert article.text.split("\n\n") == [
        BODY,
        "Reaksi Moskow",
        "Kremlin membantah.",
        "NATO belum mengonfirmasi.",
        '"Kami akan melanjutkan kerja sama," kata Peskov.',
    ]


@pytest.mark.parametrize(
    ("md", "title", "text"),
    [
        ("# Judul\n\nIsi.", "Judul", "Isi."),
        ("Judul\n=====\n\nIsi.", "Judul", "Isi."),
        ("Isi saja.", None, "Isi saja."),
        ("1. Satu.\n2. Dua.", None, "1. Satu.\n\n2. Dua."),
        ("snake_case_name dan 2*3*4 tetap.", None, "snake_case_name dan 2*3*4 tetap."),
        ("```\nkode\n```", None, "kode"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", None, "a b\n1 2"),
    ],
)
def test_markdown_to_text(md, title, text):
    out, meta = markdown_to_text(md)
    assert (meta.get("title"), out.strip("\n")) == (title, text)


HTML = """<!doctype html>
<html><head>
<meta charset="utf-8">
<title>Korsel Panggil Dubes Rusia - Situs Berita</title>
<meta property="article:published_time" content="2024-10-21T08:00:00+07:00">
<meta property="og:site_name" content="Indozone">
<link rel="canonical" href="https://www.indozone.id/news/korsel">
<script>var ads = "jangan dimuat";</script>
<style>.x { color: red }</style>
</head><body>
<header><nav><a href="/">Beranda</a> <a href="/news">Berita</a></nav></header>
<aside class="sidebar">Terpopuler: Berita lain</aside>
<main>
<article>
<h1>Korsel Panggil Dubes Rusia</h1>
<div class="share-buttons">Bagikan ke Facebook</div>
<p>INDOZONE.ID - Pemerintah Korea Selatan pada Senin (21/10/2024) memanggil
   duta besar Rusia.</p>
<p>Ia mengkritik keputusan <b>Korea Utara</b>.<br>Baca Juga: Berita Lain</p>
<figure><img src="a.jpg"><figcaption>Foto: dok.</figcaption></figure>
<ul><li>Satu poin.</li><li>Dua poin.</li></ul>
<form><input name="q"><button>Cari</button></form>
</article>
</main>
<footer>Hak cipta 2024</footer>
</body></html>
"""


def test_html(tmp_path):
    path = tmp_path / "berita.html"
    path.write_text(HTML, encoding="utf-8")
    (article,), skipped = load(path)
    assert skipped == []
    assert (article.title, article.date, article.url, article.publisher) == (
        "Korsel Panggil Dubes Rusia",
        "2024-10-21",
        "https://www.indozone.id/news/korsel",
        "Indozone",
    )
    assert article.text.split("\n\n") == [
        "Pemerintah Korea Selatan pada Senin (21/10/2024) memanggil duta besar Rusia.",
        "Ia mengkritik keputusan Korea Utara.",
        "Satu poin.",
        "Dua poin.",
    ]


def test_html_heading_inside_article_header(tmp_path):
    path = tmp_path / "b.html"
    path.write_text(
        "<html><head><title>Judul | Situs</title></head><body><article><header><h1>Judul</h1>"
        "<time datetime='2024-10-21'>Senin</time></header><p>Isi berita.</p></article></body></html>"
    )
    (article,), _ = load(path)
    assert (article.title, article.date, article.text) == ("Judul", "2024-10-21", "Isi berita.")


def test_html_without_article_uses_body_and_title_tag(tmp_path):
    path = tmp_path / "b.htm"
    path.write_text(
        "<html><head><title>Judul</title></head><body><nav>Menu</nav><p>Isi berita.</p></body></html>"
    )
    (article,), _ = load(path)
    assert (article.title, article.text) == ("Judul", "Isi berita.")


def test_json_record_and_list(tmp_path):
    one = tmp_path / "one.json"
    one.write_text(json.dumps(record("kabar:1")), encoding="utf-8")
    many = tmp_path / "many.json"
    many.write_text(json.dumps([record("kabar:2", text="Isi dua."), record("kabar:3", text="Isi tiga.")]))
    articles, skipped = load(one, many)
    assert skipped == []
    assert [(a.article_id, a.path) for a in articles] == [
        ("kabar_1", f"{one}#kabar:1"),
        ("kabar_2", f"{many}#kabar:2"),
        ("kabar_3", f"{many}#kabar:3"),
    ]
    first = articles[0]
    assert (first.title, first.publisher, first.url, first.date, first.text) == (
        "Judul",
        "Kompas.com",  # the corpus `source` names the outlet
        "https://k.id/1",
        "2024-10-21",
        BODY,
    )


@pytest.mark.parametrize("name", ["corpus.jsonl", "corpus.jsonl.gz"])
def test_jsonl(tmp_path, name):
    path = tmp_path / name
    lines = [json.dumps(record(f"kabar:{i}", text=f"Isi berita nomor {i}.")) for i in range(3)]
    data = ("\n".join(lines) + "\n\n").encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    articles, skipped = load(path)
    assert skipped == []
    assert [a.article_id for a in articles] == ["kabar_0", "kabar_1", "kabar_2"]
    assert [a.text for a in articles] == ["Isi berita nomor 0.", "Isi berita nomor 1.", "Isi berita nomor 2."]


def test_jsonl_date_order_is_read_from_the_whole_file(tmp_path):
    path = tmp_path / "detik.jsonl"
    rows = [record("d:1", date="10/5/2025 8:56"), record("d:2", date="10/20/2025 15:38", text="Isi dua.")]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    articles, _ = load(path)
    assert [a.date for a in articles] == ["2025-10-05", "2025-10-20"]  # month first, as the file writes it


def test_real_indosum_sample():
    articles, skipped = load(DATA / "indosum_sample.jsonl")
    assert skipped == []
    assert [(a.article_id[:18], a.publisher) for a in articles] == [
        ("indosum_1500518700", "Merdeka.com"),
        ("indosum_1513295866", "Pos Kota"),
        ("indosum_1516319100", "CNN Indonesia"),
        ("indosum_1494526710", "kumparan"),  # no dateline: the record's source
    ]


def test_loading_streams():
    articles = load_articles([DATA / "indosum_sample.jsonl"])
    assert isinstance(articles, Iterator)
    assert next(articles).article_id.startswith("indosum_1500518700")


# --- folders and skips ---------------------------------------------------------------------------------


def test_folder_recursive_sorted_hidden_and_unknown_skipped(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "deep").mkdir(parents=True)
    (tmp_path / ".git").mkdir()
    (tmp_path / "b" / "2.txt").write_text("Berita dua.")
    (tmp_path / "a" / "deep" / "1.md").write_text("# Satu\n\nBerita satu.")
    (tmp_path / "c.txt").write_text("Berita tiga.")
    (tmp_path / ".hidden.txt").write_text("Tersembunyi.")
    (tmp_path / ".git" / "x.txt").write_text("Bukan berita.")
    (tmp_path / "foto.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / "catatan.pdf").write_bytes(b"%PDF-1.4")
    articles, skipped = load(tmp_path)
    assert [a.text for a in articles] == ["Berita satu.", "Berita dua.", "Berita tiga."]
    assert skipped == [
        (str(tmp_path / "catatan.pdf"), "unsupported file type '.pdf'"),
        (str(tmp_path / "foto.jpg"), "unsupported file type '.jpg'"),
    ]


def test_missing_path_is_reported(tmp_path):
    articles, skipped = load(tmp_path / "tidak-ada")
    assert articles == []
    assert skipped == [(str(tmp_path / "tidak-ada"), "no such file or folder")]


def test_skips_are_logged_without_a_callback(tmp_path, caplog):
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with caplog.at_level(logging.WARNING, logger="index.load"):
        assert list(load_articles([tmp_path])) == []
    assert f"skipped {tmp_path / 'x.pdf'}: unsupported file type '.pdf'" in caplog.text


# --- broken files: reported with path (and line), the rest still loads -------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "where", "reason"),
    [
        ("bad.json", b'{"doc_id": "x", "text": ', "bad.json", "invalid JSON at line 1 column 25"),
        ("bad.json", b'"just a string"', "bad.json", "expected a JSON object, got str"),
        ("empty.json", json.dumps(record(text="  ")).encode(), "empty.json", "record has no text"),
        ("empty.txt", b"  \n\n ", "empty.txt", "no article text after cleaning"),
        (
            "promo.txt",
            b"Baca juga: Judul Lain\nADVERTISEMENT\n",
            "promo.txt",
            "no article text after cleaning",
        ),
        ("binary.txt", b"\x00\x01\x02abc", "binary.txt", "binary file (NUL bytes), not text"),
        ("garbage.txt", b"caf\xc3 \x81\x8d", "garbage.txt", "not UTF-8 text (bad byte at 3)"),
        ("notgz.jsonl.gz", b"this is not gzip data", "notgz.jsonl.gz:1", "corrupt gzip data"),
    ],
)
def test_broken_file_is_reported_and_skipped(tmp_path, name, content, where, reason):
    (tmp_path / name).write_bytes(content)
    (tmp_path / "zz_good.txt").write_text("Berita yang baik.")
    articles, skipped = load(tmp_path)
    assert [a.text for a in articles] == ["Berita yang baik."]
    assert len(skipped) == 1
    assert skipped[0][0] == str(tmp_path / where) and skipped[0][1].startswith(reason)


def test_broken_jsonl_records_are_reported_with_line_numbers(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_bytes(
        b"\n".join(
            [
                json.dumps(record("k:1", text="Satu.")).encode(),
                b'{"doc_id": "k:2", "text": "tak selesai',
                b"[1, 2]",
                json.dumps(record("k:4", text="")).encode(),
                b'{"doc_id": "k:5", "text": "caf\xe9"}',  # latin-1 inside a UTF-8 file
                json.dumps(record("k:6", text="Baca juga: Lain")).encode(),
                json.dumps(record("k:7", text="Tujuh.")).encode(),
            ]
        )
    )
    articles, skipped = load(path)
    assert [a.text for a in articles] == ["Satu.", "Tujuh."]
    assert [(p, r.split(":")[0]) for p, r in skipped] == [
        (f"{path}:2", "invalid JSON at column 39"),
        (f"{path}:3", "expected a JSON object, got list"),
        (f"{path}:4", "record has no text"),
        (f"{path}:5", "not UTF-8 (bad byte at column 31)"),
        (f"{path}:6", "no article text after cleaning"),
    ]


def test_truncated_gzip_keeps_the_records_before_the_damage(tmp_path):
    lines = b"\n".join(json.dumps(record(f"k:{i}", text=f"Isi berita nomor {i} " + "kata " * 200)).encode()
                       for i in range(200))  # fmt: skip
    data = gzip.compress(lines)
    path = tmp_path / "corpus.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    articles, skipped = load(path)
    assert 0 < len(articles) < 200
    assert len(skipped) == 1
    line, reason = skipped[0]
    assert line.startswith(f"{path}:") and int(line.rsplit(":", 1)[1]) > len(articles)
    assert reason.startswith("corrupt gzip data") or reason.startswith("invalid JSON")


def test_cp1252_file_loads_with_a_warning(tmp_path, caplog):
    path = tmp_path / "lama.txt"
    path.write_bytes("Caf\u00e9 \u201cbaru\u201d dibuka.".encode("cp1252"))
    with caplog.at_level(logging.WARNING, logger="index.load"):
        (article,), skipped = load(path)
    assert skipped == [] and article.text == "Café “baru” dibuka."
    assert "not UTF-8" in caplog.text and "cp1252" in caplog.text


@pytest.mark.parametrize(
    "data",
    [
        "\ufeffBerita dengan BOM.".encode(),
        "Berita dengan BOM.".encode("utf-16"),
        b"Berita\r\ndengan BOM.",
    ],
)
def test_encodings(tmp_path, data):
    (tmp_path / "x.txt").write_bytes(data)
    (article,), _ = load(tmp_path)
    assert article.text == "Berita dengan BOM."


# --- ids ------------------------------------------------------------------------------------------------


def test_ids_are_deterministic_and_independent_of_location(tmp_path):
    first, second = tmp_path / "satu", tmp_path / "dua" / "lebih" / "dalam"
    for folder in (first, second):
        folder.mkdir(parents=True)
        shutil.copy(SEED, folder / "artikel.txt")
        (folder / "lain.md").write_text("# Judul\n\nIsi berita lain.")
    ids_first = [a.article_id for a in load(first)[0]]
    ids_again = [a.article_id for a in load(first)[0]]
    ids_second = [a.article_id for a in load(second)[0]]
    assert ids_first == ids_again == ids_second
    assert len(set(ids_first)) == 2 and all(len(i) == 16 for i in ids_first)


def test_same_article_in_two_files_loads_once(tmp_path):
    shutil.copy(SEED, tmp_path / "a.txt")
    shutil.copy(SEED, tmp_path / "b.txt")
    articles, skipped = load(tmp_path)
    assert [a.path for a in articles] == [str(tmp_path / "a.txt")]
    assert skipped == [(str(tmp_path / "b.txt"), f"duplicate of {tmp_path / 'a.txt'}")]


def test_title_changes_the_content_id(tmp_path):
    (tmp_path / "a.md").write_text("# Satu\n\nIsi sama.")
    (tmp_path / "b.md").write_text("# Dua\n\nIsi sama.")
    (tmp_path / "c.txt").write_text("Isi sama.")
    articles, _ = load(tmp_path)
    assert len({a.article_id for a in articles}) == 3


def test_record_without_doc_id_gets_a_content_id(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"title": "T", "text": "Isi."}))
    (article,), _ = load(path)
    assert len(article.article_id) == 16 and article.path == f"{path}#{article.article_id}"
