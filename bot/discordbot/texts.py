"""What the bot says to users, in Indonesian and English (admin reports are English only)."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "sources": {"id": "Sumber", "en": "Sources"},
    "all_sources": {"id": "Semua sumber", "en": "All sources"},
    "sources_shortened": {
        "id": "Sebagian kutipan dipersingkat: tekan “Semua sumber” untuk teks lengkapnya.",
        "en": "Some quotes are shortened: press “All sources” for the full text.",
    },
    "sources_more": {
        "id": "{n} sumber lagi dan kutipan lengkap: tekan “Semua sumber”.",
        "en": "{n} more source(s) and the full quotes: press “All sources”.",
    },
    "sources_gone": {
        "id": "Sumber jawaban ini sudah tidak tersedia (bot dimulai ulang atau jawabannya sudah lama). "
        "Ajukan pertanyaannya lagi untuk melihatnya.",
        "en": "The sources of this answer are no longer available (the bot restarted or the answer is old). "
        "Ask again to see them.",
    },
    "sentences_removed": {
        "id": "{n} kalimat tanpa dukungan sumber dihapus oleh verifikasi.",
        "en": "{n} unsupported sentence(s) removed by verification.",
    },
    "no_answer": {
        "id": "Maaf, saya tidak punya jawaban untuk itu.",
        "en": "Sorry, I have no answer to that.",
    },
    "empty_question": {
        "id": "Ajukan pertanyaan tentang artikel berita yang diindeks, misalnya: "
        "“@Kabar Apa kata Kementerian Luar Negeri Korea Selatan?”",
        "en": "Ask me a question about the indexed news articles, for example: "
        "“@Kabar What did South Korea's foreign ministry say?”",
    },
    "too_long": {
        "id": "Pertanyaannya terlalu panjang ({length} karakter); batasnya {limit} karakter.",
        "en": "That question is too long ({length} characters); the limit is {limit}.",
    },
    "cooldown": {
        "id": "Tunggu {seconds} detik lagi sebelum bertanya lagi.",
        "en": "Please wait {seconds} more second(s) before asking again.",
    },
    "queue_full": {
        "id": "Kabar sedang menjawab banyak pertanyaan; tanyakan lagi sebentar lagi.",
        "en": "Kabar is answering many questions right now; please ask again in a minute.",
    },
    "not_here": {
        "id": "Kabar tidak digunakan di sini.",
        "en": "Kabar is not enabled here.",
    },
    "guild_only": {
        "id": "Kabar hanya bekerja di server, bukan di pesan langsung.",
        "en": "Kabar works in servers, not in direct messages.",
    },
    "not_admin": {
        "id": "Perintah ini hanya untuk admin Kabar (izin Administrator).",
        "en": "Only Kabar admins can use this command (the Administrator permission).",
    },
    "not_admin_role": {
        "id": "Perintah ini hanya untuk admin Kabar (peran “{role}” atau izin Administrator).",
        "en": "Only Kabar admins can use this command (the “{role}” role or the Administrator permission).",
    },
    "index_empty": {
        "id": "Belum ada artikel yang diindeks, jadi saya belum bisa menjawab. "
        "Admin bisa menjalankan /reindex atau /add_article.",
        "en": "Nothing is indexed yet, so I cannot answer. An admin can run /reindex or /add_article.",
    },
    "busy": {
        "id": "Pengindeksan lain sedang berjalan; coba lagi setelah selesai.",
        "en": "Another index run is in progress; try again when it has finished.",
    },
    "unavailable": {
        "id": "Indeks sedang tidak tersedia, coba lagi sebentar lagi.",
        "en": "The index is unavailable right now, try again shortly.",
    },
    "error": {
        "id": "Maaf, terjadi kesalahan. Kesalahannya sudah dicatat; silakan coba lagi nanti.",
        "en": "Sorry, something went wrong. The error has been logged; please try again later.",
    },
    "stats_title": {"id": "Indeks Kabar", "en": "Kabar index"},
    "stats_articles": {"id": "Artikel", "en": "Articles"},
    "stats_chunks": {"id": "Potongan", "en": "Chunks"},
    "stats_model": {"id": "Model embedding", "en": "Embedding model"},
    "stats_last": {"id": "Terakhir diindeks", "en": "Last indexed"},
}


def text(key: str, lang: str = "id", **values: object) -> str:
    """The text `key` in `lang` ('id' or 'en'; anything else falls back to English), filled in."""
    variants = TEXTS[key]
    return variants.get(lang, variants["en"]).format(**values)
