"""Cleaning and metadata extraction: boilerplate out, article text and its metadata kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from index.clean import (
    BOILERPLATE,
    clean_article,
    content_id,
    find_date,
    normalize,
    parse_date,
    sanitize_id,
    slashed_order,
    strip_dateline,
)
from index.errors import LoadError

DATA = Path(__file__).parent / "data"
SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_e425e8bd6ae908eb.txt"


@pytest.fixture(scope="module")
def seed():
    return clean_article(SEED.read_text(encoding="utf-8"), path=str(SEED))


def test_seed_metadata(seed):
    assert (seed.publisher, seed.source, seed.date, seed.title) == (
        "INDOZONE.ID",
        "Channelnewsasia.com",
        "2024-10-21",
        None,
    )


@pytest.mark.parametrize(
    "gone",
    [
        "Konten ini adalah kiriman dari Z Creators",
        "Let’s join Z Creators",
        "Baca Juga",
        "Intelijen Korsel Ungkap Korea Utara Kirim 1.500 Tentara",  # a "Baca Juga:" link title
        "Militer Korsel Sebut Ada GPS di Balon Sampah",
        "Dilarang mengambil",
        "Sumber:",
        "INDOZONE.ID",
    ],
)
def test_seed_boilerplate_removed(seed, gone):
    assert gone not in seed.text


@pytest.mark.parametrize(
    "kept",
    [
        "Pemerintah Korea Selatan pada Senin (21/10/2024) memanggil duta besar Rusia untuk mengkritik",
        "Kementerian Luar Negeri Korsel mendesak agar pasukan Korea Utara segera ditarik.",
        "sekitar 1.500 prajurit pasukan khusus sudah berada di Rusia",
        "Menurut pengamat Korea, Cheong Seong-chang dari Institut Sejong, protes Korea Selatan",
        "Ia menambahkan bahwa Kim Jong Un kemungkinan ingin memperoleh teknologi militer dari Rusia",
        "lebih dari 13.000 kontainer berisi amunisi artileri",
        "Presiden Polandia, Andrzej Duda, juga dijadwalkan akan mengunjungi Seoul minggu ini.",
    ],
)
def test_seed_article_sentences_kept(seed, kept):
    assert kept in seed.text


def test_seed_every_article_line_is_a_paragraph(seed):
    raw = [line for line in SEED.read_text(encoding="utf-8").splitlines() if line.strip()]
    paragraphs = seed.text.split("\n\n")
    assert len(raw) == 30 and len(paragraphs) == 24  # 6 lines are promo, links, notice and source
    assert paragraphs[0].startswith("Pemerintah Korea Selatan")  # dateline gone, sentence intact
    assert paragraphs[-1].endswith("mengunjungi Seoul minggu ini.")


def test_seed_id_is_content_derived(seed):
    assert seed.article_id == content_id(None, seed.text)
    assert len(seed.article_id) == 16 and int(seed.article_id, 16) >= 0


@pytest.mark.parametrize(
    ("paragraph", "publisher", "rest"),
    [
        ("INDOZONE.ID - Pemerintah Korea Selatan.", "INDOZONE.ID", "Pemerintah Korea Selatan."),
        ("JAKARTA, KOMPAS.com - Presiden meresmikan.", "KOMPAS.com", "Presiden meresmikan."),
        ("Jakarta, CNN Indonesia -- Partai Hanura resmi.", "CNN Indonesia", "Partai Hanura resmi."),
        ("Jakarta, CNN Indonesia - - Partai Hanura resmi.", "CNN Indonesia", "Partai Hanura resmi."),
        ("Jakarta (ANTARA News) - Starbucks Corp menyatakan.", "ANTARA News", "Starbucks Corp menyatakan."),
        ("JAKARTA (Pos Kota) – Hakim tunggal.", "Pos Kota", "Hakim tunggal."),
        ("TEMPO.CO, Jakarta - Menteri Keuangan.", "TEMPO.CO", "Menteri Keuangan."),
        ("JUARA.NET, KUALA LUMPUR - Timnas menang.", "JUARA.NET", "Timnas menang."),
        ("Samarinda, Kalimantan Timur (ANTARA News) - Warga.", "ANTARA News", "Warga."),
        ("Merdeka.com - Polisi menangkap.", "Merdeka.com", "Polisi menangkap."),
        ("Rimanews - Calon Gubernur.", "Rimanews", "Calon Gubernur."),
        ("JAKARTA - Pemerintah menaikkan.", None, "Pemerintah menaikkan."),  # place only: stripped
        ("– Badan Meteorologi memperkirakan.", None, "Badan Meteorologi memperkirakan."),
        # not datelines: kept as they are
        ("Resepsi Raisa - Hamish berlangsung riuh.", None, "Resepsi Raisa - Hamish berlangsung riuh."),
        ("Menurut dia, Bekasi - Jakarta macet.", None, "Menurut dia, Bekasi - Jakarta macet."),
        ("Pekan keempat La Liga - Barcelona kalah.", None, "Pekan keempat La Liga - Barcelona kalah."),
    ],
)  # fmt: skip
def test_strip_dateline(paragraph, publisher, rest):
    assert strip_dateline(paragraph) == (publisher, rest)


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("Baca juga: Ribuan Lampion Dilepas Sambut Waisak di Borobudur", ""),
        ("[Baca juga: Dua Pendiri Berkebangsaan Indonesia]", ""),
        ("Baca_Juga", ""),
        ("(Baca: Sebelum Putusan, Hakim Praperadilan Setnov Skors Sidang 30 Menit)", ""),
        ("ADVERTISEMENT", ""),
        ("SCROLL TO CONTINUE WITH CONTENT", ""),
        ("Simak juga Video: Tak Berizin, Pertambangan Pasir di Pulau Citlim Riau Dihentikan KKP", ""),
        ('Tonton juga video "Pembangunan IKN Terancam Molor" di sini:', ""),
        ("Simak video berikut ini", ""),
        ("Lihat juga: Jadwal Lengkap Liga 1", ""),
        ("Editor: Yuniman Farid", ""),
        ("Penulis: Annesa K. Ramadhany,", ""),
        ("Ikuti berita terkini dari Kabar di Google News, klik di sini", ""),
        ("(ard)", ""),
        ("(res/res)", ""),
        ("(D011)", ""),
        ("#GrowFearless with FIMELA", ""),
        (",,loading...", ""),
        ('," komentar akun,. "', ""),
        # article text that looks a little like boilerplate stays
        ("Ia juga membaca juga laporan itu.", "Ia juga membaca juga laporan itu."),
        ("Penulis buku itu, Budi, hadir.", "Penulis buku itu, Budi, hadir."),
        ("Iklan rokok dilarang di televisi.", "Iklan rokok dilarang di televisi."),
        # CLICK-ID noise repaired inside a line
        ("Baca juga:,,Selain itu dalam trailer ada adegan.", "Selain itu dalam trailer ada adegan."),
        ("jalur ganda (,) kereta api ,.", "jalur ganda kereta api."),
        (",,Kendati tampak lucu, Desta serius.", "Kendati tampak lucu, Desta serius."),
        ("tiket Timnas , hanya terjual ,, sekitar 12 ribu.", "tiket Timnas, hanya terjual, sekitar 12 ribu."),
        ("pungkasnya. [rnd]", "pungkasnya."),
    ],
)
def test_line_cleaning(raw, kept):
    text = f"Paragraf pertama ada di sini.\n{raw}\nParagraf terakhir ada di sini."
    article = clean_article(text)
    expected = ["Paragraf pertama ada di sini.", *([kept] if kept else []), "Paragraf terakhir ada di sini."]
    assert article.text.split("\n\n") == expected


def test_boilerplate_patterns_are_commented():
    source = (Path(__file__).resolve().parent.parent / "index" / "clean.py").read_text(encoding="utf-8")
    block = source[source.index("BOILERPLATE: list") : source.index("_ANY_BOILERPLATE =")]
    assert block.count("re.compile(") == len(BOILERPLATE)
    assert block.count("    # ") >= len(BOILERPLATE)


@pytest.mark.parametrize(
    ("raw", "source", "body"),
    [
        ("Isi berita.\nSumber: Channelnewsasia.com", "Channelnewsasia.com", "Isi berita."),
        ("Isi berita.\n(Sumber: Reuters)", "Reuters", "Isi berita."),
        ("Isi berita.\n\nSumber: The Verge dan AOC.", "The Verge dan AOC", "Isi berita."),
        ("Isi berita.\nSumber berita Gizmochina.", "Gizmochina", "Isi berita."),
        # a sentence that starts with "Sumber:" is text, not a credit
        (
            "Isi berita.\nSumber: pihak kepolisian menyebutkan bahwa korban tewas berjumlah lima orang.",
            None,
            "Isi berita.\n\nSumber: pihak kepolisian menyebutkan bahwa korban tewas berjumlah lima orang.",
        ),
    ],
)
def test_source_line(raw, source, body):
    article = clean_article(raw)
    assert (article.source, article.text) == (source, body)


@pytest.mark.parametrize(
    ("paragraphs", "date"),
    [
        (["Pemerintah pada Senin (21/10/2024) memanggil duta besar."], "2024-10-21"),
        (["Polisi menangkapnya pada Kamis, 3/9/2019 malam."], "2019-09-03"),
        (["Acara digelar Selasa, 21 Oktober 2025 di Jakarta."], "2025-10-21"),
        (["Laporan terbit 21 Oktober 2024 di Jakarta."], "2024-10-21"),
        (["Dirilis 2024-10-21 oleh BPS."], "2024-10-21"),
        (["Minggu (3/9) malam, tanpa tahun."], None),
        # the first date wins
        (["Pada Rabu (14/6/2017) KPU meresmikan tahapan hingga 9 Juli 2018."], "2017-06-14"),
        # a bare date after the first paragraph is another event's date, a day-named one still counts
        (["KPU meresmikan tahapan.", "Rekapitulasi dilakukan hingga 9 Juli 2018."], None),
        (["KPU meresmikan tahapan.", "Hal itu disampaikan Rabu (14/6/2017)."], "2017-06-14"),
        (["Tanggal 31/2/2024 tidak ada, Senin (31/2/2024)."], None),
    ],
)
def test_find_date(paragraphs, date):
    assert find_date(paragraphs) == date


@pytest.mark.parametrize(
    ("value", "hints", "day_first", "date"),
    [
        ("2019-09-20 15:55:30", None, None, "2019-09-20"),
        ("2024-10-21T08:00:00+07:00", None, None, "2024-10-21"),
        ("20/09/2019", None, None, "2019-09-20"),
        ("10/20/2025 15:38", None, None, "2025-10-20"),  # month first: 20 is no month
        ("5/10/2025 8:56", None, None, "2025-10-05"),  # ambiguous: Indonesian day-first
        ("10/5/2025 8:56", [(5, 10, None)], None, "2025-10-05"),  # "Minggu (5/10)" in the text
        ("5/10/2025 8:56", [(11, 5, 2025)], None, "2025-05-10"),  # a day after May 10
        ("5/10/2025", None, False, "2025-05-10"),  # the file writes month first
        (" Sep 25, 2019 ", None, None, "2019-09-25"),
        ("Juli 25, 2019", None, None, "2019-07-25"),
        ("25-Sep-19", None, None, "2019-09-25"),
        ("25 Oktober 2019", None, None, "2019-10-25"),
        ("Senin, 21 Oktober 2024 10:00 WIB", None, None, "2024-10-21"),
        ("kemarin", None, None, None),
        ("31/02/2024", None, None, None),
    ],
)
def test_parse_date(value, hints, day_first, date):
    assert parse_date(value, hints, day_first=day_first) == date


@pytest.mark.parametrize(
    ("dates", "order"),
    [
        (["20/09/2019", "3/4/2019"], True),
        (["10/20/2025 15:38", "7/9/2025 20:52"], False),
        (["3/4/2019"], None),
        (["20/09/2019", "10/20/2025"], None),  # contradictory
        (["2019-09-20", "Sep 25, 2019"], None),
    ],
)
def test_slashed_order(dates, order):
    assert slashed_order(dates) == order


def test_metadata_date_wins_over_text():
    article = clean_article("Pada Senin (21/10/2024) duta besar dipanggil.", date="2024-10-22")
    assert article.date == "2024-10-22"


def test_unparseable_metadata_date_falls_back_to_text():
    assert clean_article("Pada Senin (21/10/2024) ada rapat.", date="baru saja").date == "2024-10-21"


def test_given_metadata_wins_and_title_repeat_dropped():
    raw = "Judul Berita Ini\n\nJAKARTA, KOMPAS.com - Isi berita.\n\nSumber: Reuters"
    article = clean_article(
        raw, title=" Judul  Berita Ini ", publisher="Kompas", source="AFP", url=" https://x.id/a ", path="p"
    )
    assert (article.title, article.publisher, article.source, article.url, article.path, article.text) == (
        "Judul Berita Ini",
        "Kompas",
        "AFP",
        "https://x.id/a",
        "p",
        "Isi berita.",
    )


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("a\u200bb\u00adc\ufeff d", "abc d"),  # zero-width characters, soft hyphen, BOM
        ("Cafe\u0301 ok.", "Café ok."),  # NFC
        ("satu\r\ndua\rtiga", "satu\ndua\ntiga"),  # newlines unified
        ("  banyak \t  spasi\u00a0di sini  ", "banyak spasi di sini"),
    ],
)
def test_normalize(raw, text):
    assert normalize(raw) == text


@pytest.mark.parametrize(
    ("raw", "paragraphs"),
    [
        # one paragraph per line (the seed, CLICK-ID)
        ("Kalimat satu.\nKalimat dua.", ["Kalimat satu.", "Kalimat dua."]),
        # hard-wrapped prose: a long line without a full stop continues on the next
        (
            "Pemerintah Korea Selatan pada Senin memanggil duta besar Rusia untuk\nmengkritik keputusan.",
            ["Pemerintah Korea Selatan pada Senin memanggil duta besar Rusia untuk mengkritik keputusan."],
        ),
        (
            "Pemerintah Korea Selatan pada Senin memanggil duta besar dari negara\nRusia untuk mengkritik.",
            ["Pemerintah Korea Selatan pada Senin memanggil duta besar dari negara Rusia untuk mengkritik."],
        ),
        # a short subheading stays its own paragraph
        ("Susunan Pemain\nPersija: Andritany, Ismed.", ["Susunan Pemain", "Persija: Andritany, Ismed."]),
        ("Babak pertama\nlaga berjalan ketat.", ["Babak pertama laga berjalan ketat."]),
        # blank lines always separate
        ("Satu\n\n\n\nDua", ["Satu", "Dua"]),
    ],
)
def test_paragraphs(raw, paragraphs):
    assert clean_article(raw).text.split("\n\n") == paragraphs


@pytest.mark.parametrize("raw", ["", "   \n\n  ", "Baca juga: Judul Lain\nADVERTISEMENT", ",,,\n\"\n'"])
def test_nothing_left_raises_with_path(raw):
    with pytest.raises(LoadError, match=r"^a/b\.txt: no article text"):
        clean_article(raw, path="a/b.txt")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("indosum:1504521829-hamish-bantu", "indosum_1504521829-hamish-bantu"),
        ("clickid:801c51f2ec55", "clickid_801c51f2ec55"),
        (" a b/c?d ", "a_b_c_d"),
        ("ok.id-1_2", "ok.id-1_2"),
    ],
)
def test_sanitize_id(raw, clean):
    assert sanitize_id(raw) == clean


def test_given_id_is_sanitized():
    assert clean_article("Isi.", article_id="indosum:x y").article_id == "indosum_x_y"


@pytest.mark.parametrize(
    ("doc_id", "publisher", "date", "first", "last"),
    [
        (
            "indosum:1500518700-polisi-bekuk-2-wna-1-wni-pembuat-surat-hoax-jokowi",
            "Merdeka.com",
            None,
            "Polisi telah menangkap dua Warga Negara Asing (WNA)",
            "yakni jokowiiriana@gmail.com.",
        ),
        (
            "indosum:1513295866-hakim-tetapkan-praperadilan-setya-novanto-gugur",
            "Pos Kota",
            "2017-12-14",
            "Hakim tunggal Pengadilan Negeri Jakart Selatan",
            "setara dengan Rp 2,3 triliun.",
        ),
        (
            "indosum:1516319100-munaslub-hanura-ambhara-resmi-pecat-oso-dari-jabat",
            "CNN Indonesia",
            None,
            "Partai Hanura kubu Sarifuddin Sudding",
            "dari jabatan Ketum Hanura.",
        ),
        (
            "indosum:1494526710-678-napi-budha-diberi-remisi-hari-raya-waisak",
            None,
            None,
            "Sebanyak 678 orang narapidana",
            "dihuni 219.832 orang narapidana.",
        ),
    ],
)
def test_real_indosum_articles(doc_id, publisher, date, first, last):
    records = {
        r["doc_id"]: r for r in map(json.loads, (DATA / "indosum_sample.jsonl").open(encoding="utf-8"))
    }
    article = clean_article(records[doc_id]["text"], article_id=doc_id)
    assert (article.publisher, article.date) == (publisher, date)
    assert article.text.startswith(first) and article.text.endswith(last)
    assert "Baca" not in article.text


def test_every_format_character_is_removed() -> None:
    # found by tests/test_properties.py: a tag space (U+E0020) after "Ia" survived the hand-made list
    import sys
    import unicodedata

    fmt = [chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Cf"]
    article = clean_article("Ia" + "".join(fmt) + " menambahkan bahwa kerja sama itu berlanjut.")
    assert article.text == "Ia menambahkan bahwa kerja sama itu berlanjut."
