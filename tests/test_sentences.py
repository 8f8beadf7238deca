"""Indonesian sentence splitting: where it splits, where it must not, and exact offsets."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from index.clean import clean_article
from index.sentences import ABBREVIATIONS, split_sentences

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_e425e8bd6ae908eb.txt"


def texts(text: str) -> list[str]:
    return [s.text for s in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        # plain full stops, question and exclamation marks
        ("Ia datang. Lalu pergi.", ["Ia datang.", "Lalu pergi."]),
        ("Apa? Tidak mungkin! Ia pergi.", ["Apa?", "Tidak mungkin!", "Ia pergi."]),
        ("Tahun 2019. 15 orang tewas.", ["Tahun 2019.", "15 orang tewas."]),  # digit starts a sentence
        ("Ia pergi. (Foto: dok) Lalu.", ["Ia pergi.", "(Foto: dok) Lalu."]),
        # closing quotes go with the sentence they end
        ('"Saya pergi." Lalu ia diam.', ['"Saya pergi."', "Lalu ia diam."]),
        ("“Saya pergi!” Lalu ia diam.", ["“Saya pergi!”", "Lalu ia diam."]),
        ('... katanya." Lalu ia pergi.', ['... katanya."', "Lalu ia pergi."]),
        ("Ia berkata. “Kami siap.”", ["Ia berkata.", "“Kami siap.”"]),
        # a quote that continues into its attribution stays whole
        ('"Apa itu?" tanya dia. Ia diam.', ['"Apa itu?" tanya dia.', "Ia diam."]),
        ('"Kami kecewa. Ini salah," kata Budi. Ia pergi.',
         ['"Kami kecewa. Ini salah," kata Budi.', "Ia pergi."]),
        ('" Setuju, " jawab kader. " Lanjut, " ujarnya.',
         ['" Setuju, " jawab kader.', '" Lanjut, " ujarnya.']),
        # abbreviations and titles
        ("Kemlu RI, dll. Sudah hadir.", ["Kemlu RI, dll. Sudah hadir."]),
        ("Ia membawa buku, pena, dsb. Semua baru.", ["Ia membawa buku, pena, dsb. Semua baru."]),
        ("Menurut Budi dkk. Hasilnya baik.", ["Menurut Budi dkk. Hasilnya baik."]),
        ("Prof. Dr. H. Ahmad hadir.", ["Prof. Dr. H. Ahmad hadir."]),
        ("Ia tinggal di Jl. Sudirman No. 5 Jakarta.", ["Ia tinggal di Jl. Sudirman No. 5 Jakarta."]),
        ("Harganya Rp. 1.500 saja.", ["Harganya Rp. 1.500 saja."]),
        ("Barang tsb. Sudah dikirim.", ["Barang tsb. Sudah dikirim."]),
        ("Surat a.n. Budi dikirim.", ["Surat a.n. Budi dikirim."]),
        ("Pengacara Andi, S.H. Menjelaskan.", ["Pengacara Andi, S.H. Menjelaskan."]),
        ("Kadiskes dr. Hengky Sp. B hadir.", ["Kadiskes dr. Hengky Sp. B hadir."]),
        ("Tentara U.S. Army tiba.", ["Tentara U.S. Army tiba."]),
        ("Ir. Soekarno membaca.", ["Ir. Soekarno membaca."]),
        # initials, but a single capital that ends a sentence still splits
        ("Pahlawan M. Yamin lahir.", ["Pahlawan M. Yamin lahir."]),
        ("Penulis Annesa K. Ramadhany hadir.", ["Penulis Annesa K. Ramadhany hadir."]),
        ("Juara Serie A. Mereka menang.", ["Juara Serie A.", "Mereka menang."]),
        # numbers, dates, times, money
        ("Sekitar 1.500 prajurit dan 13.000 kontainer.", ["Sekitar 1.500 prajurit dan 13.000 kontainer."]),
        ("Naik 3,5% pada 21/10/2024 pukul 10.30 WIB. Lalu.",
         ["Naik 3,5% pada 21/10/2024 pukul 10.30 WIB.", "Lalu."]),
        ("Dendanya Rp1.500.000 per orang.", ["Dendanya Rp1.500.000 per orang."]),
        # urls, emails, domains
        ("Dikutip dari Channelnewsasia.com. Ia bilang.", ["Dikutip dari Channelnewsasia.com.", "Ia bilang."]),
        ("Lihat KOMPAS.com dan kemlu.go.id hari ini.", ["Lihat KOMPAS.com dan kemlu.go.id hari ini."]),
        ("Kirim ke jokowi@gmail.com. Lalu tunggu.", ["Kirim ke jokowi@gmail.com.", "Lalu tunggu."]),
        ("Buka https://www.detik.com/a.b?x=1 sekarang.", ["Buka https://www.detik.com/a.b?x=1 sekarang."]),
        # an acronym is a word: its sentence ends ("Kemenlu" is not written with a period)
        ("Hal itu dikatakan Kemenlu. Ia menambahkan.", ["Hal itu dikatakan Kemenlu.", "Ia menambahkan."]),
        # ellipses trail on
        ("Ia berkata... Lalu diam.", ["Ia berkata... Lalu diam."]),
        ("Jooheon…Jooheon, katanya.", ["Jooheon…Jooheon, katanya."]),
        # lower case after the stop: no new sentence
        ("Kata dr. budi itu benar.", ["Kata dr. budi itu benar."]),
        ("Apa? tanya dia.", ["Apa? tanya dia."]),
        # parentheses that close soon
        ("Data (lihat Tabel 2. Sumber BPS) naik. Ya.", ["Data (lihat Tabel 2. Sumber BPS) naik.", "Ya."]),
        # list items keep their number
        ("1. Fotokopi KTP\n\n2. Surat keterangan", ["1. Fotokopi KTP", "2. Surat keterangan"]),
        ("a. Satu hal.", ["a. Satu hal."]),
    ],
)  # fmt: skip
def test_split(text, sentences):
    assert texts(text) == sentences


def test_abbreviations_live_in_one_lowercase_set():
    assert {"dll", "dsb", "dkk", "prof", "dr", "no", "jl", "rp", "tsb"} <= ABBREVIATIONS
    assert all(a == a.lower() and "." not in a for a in ABBREVIATIONS)


def test_paragraphs_offsets_and_indices():
    text = "Satu. Dua!\n\nTiga? Empat\nmasih empat.\n\n\n  Lima."
    got = [(s.text, s.paragraph, s.index, s.start, s.end) for s in split_sentences(text)]
    assert got == [
        ("Satu.", 0, 0, 0, 5),
        ("Dua!", 0, 1, 6, 10),
        ("Tiga?", 1, 2, 12, 17),
        ("Empat\nmasih empat.", 1, 3, 18, 36),  # a single newline is just a space
        ("Lima.", 2, 4, 41, 46),
    ]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\n"])
def test_empty(text):
    assert split_sentences(text) == []


def test_seed_sentences():
    article = clean_article(SEED.read_text(encoding="utf-8"))
    sentences = split_sentences(article.text)
    assert len(sentences) == 30
    assert all(article.text[s.start : s.end] == s.text for s in sentences)
    by_text = {s.text: s for s in sentences}
    cheong = by_text[
        "Menurut pengamat Korea, Cheong Seong-chang dari Institut Sejong, protes Korea Selatan kepada Rusia "
        "tidak akan mempengaruhi kerja sama militer antara Moskow dan Pyongyang."
    ]
    ia = by_text[
        "Ia menambahkan bahwa Kim Jong Un kemungkinan ingin memperoleh teknologi militer dari Rusia, "
        "termasuk satelit pengawasan dan kapal selam."
    ]
    assert ia.index == cheong.index + 1 and ia.paragraph == cheong.paragraph + 1
    assert by_text["Kementerian Luar Negeri Korsel mendesak agar pasukan Korea Utara segera ditarik."]


WORDS = st.sampled_from(
    ["Ia", "pergi", "dll.", "Dr.", "M.", "1.500", "3,5", "Rp.", '"Ya,"', "kata", "(lihat", "BPS)", "Lalu",
     "apa?", "Tidak!", "...", "KOMPAS.com", "a.n.", "“Kami", "siap.”", "ujar", "dia.", "A.", "Mereka"]
)  # fmt: skip


@given(st.lists(st.lists(WORDS, min_size=1, max_size=30), min_size=1, max_size=5))
def test_offsets_are_exact_and_cover_all_text(paragraph_words):
    text = "\n\n".join(" ".join(words) for words in paragraph_words)
    sentences = split_sentences(text)
    assert all(text[s.start : s.end] == s.text and s.text == s.text.strip() for s in sentences)
    assert [s.index for s in sentences] == list(range(len(sentences)))
    assert all(
        a.end <= b.start and a.paragraph <= b.paragraph
        for a, b in zip(sentences, sentences[1:], strict=False)
    )
    # nothing but whitespace between sentences: no text is lost
    assert "".join("".join(s.text for s in sentences).split()) == "".join(text.split())
