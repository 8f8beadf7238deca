"""Generated Indonesian-like articles (no real data) and whole-index snapshots, for the sync tests."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

from index.ingest import index_paths
from index.keyword import KeywordIndex
from index.layout import DataDir
from index.store import Store, chunk_of

PLACES = ["Jakarta", "Bandung", "Surabaya", "Medan", "Makassar", "Denpasar", "Padang", "Manado", "Ambon"]
TOPICS = ["harga beras", "banjir", "jalan tol", "sekolah", "pelabuhan", "pasar", "listrik", "bandara"]
VERBS = ["meninjau", "membahas", "meresmikan", "memeriksa", "mengumumkan", "menunda", "mempercepat"]


def sentence(rng: random.Random, i: int) -> str:
    """One distinct sentence (the index makes it unique within the article)."""
    return (
        f"Pejabat {rng.choice(PLACES)} {rng.choice(VERBS)} {rng.choice(TOPICS)} nomor {i} "
        f"bersama {rng.randint(2, 900)} warga pada pekan ke-{rng.randint(1, 52)}."
    )


def article_text(seed: int, paragraphs: int = 6, per_paragraph: int = 4) -> str:
    """A multi-paragraph body; with the fake embedder's token count, about one chunk per paragraph."""
    rng = random.Random(seed)
    paras = []
    n = 0
    for _ in range(paragraphs):
        paras.append(" ".join(sentence(rng, n + j) for j in range(per_paragraph)))
        n += per_paragraph
    return "\n\n".join(paras)


def write_article(folder: Path, seed: int, **kwargs: int) -> Path:
    """`berita_<seed>.txt` with a title header and a generated body."""
    path = folder / f"berita_{seed:04d}.txt"
    path.write_text(f"Judul: Kabar nomor {seed}\n\n{article_text(seed, **kwargs)}\n", encoding="utf-8")
    return path


def make_corpus(folder: Path, n: int, start: int = 0, **kwargs: int) -> list[Path]:
    """A folder of n generated articles."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_article(folder, seed, **kwargs) for seed in range(start, start + n)]


def jsonl_record(seed: int, text: str | None = None) -> str:
    """One JSON Lines record with a doc_id."""
    body = text or article_text(seed, paragraphs=2)
    return json.dumps({"doc_id": f"rec{seed}", "title": f"Rekaman {seed}", "text": body}) + "\n"


def snapshot(store: Store) -> dict:
    """Everything that must match a clean build: articles, chunks, vectors, keyword ids."""
    articles = sorted(store.db.execute("SELECT article_id, content_hash, n_chunks FROM articles"))
    chunks = sorted(store.db.execute("SELECT chunk_id, text_hash, vector_id FROM chunks"))
    vector_ids = store.collection.get(include=[])["ids"]
    if store.remote:  # server mode: what a reader's keyword cache, synced from the collection, holds
        from index.remote import RemoteStore

        source = RemoteStore(store.home, store.target, sync_seconds=0).keyword_source()
        source.refresh()
        keyword = source.index
    else:
        keyword, _ = KeywordIndex.load(DataDir(store.data_dir).keyword)
    return {
        "articles": articles,
        "chunks": chunks,
        "vectors": sorted(vector_ids),
        "keyword": sorted(keyword.ids()),
        "vector_duplicates": len(vector_ids) - len(set(vector_ids)),
    }


def clean_build(corpus: Path, tmp_path: Path, embedder) -> dict:
    store = Store(tmp_path / "clean", embedder.name, embedder.dim)
    index_paths([corpus], store, embedder)
    snap = snapshot(store)
    store.close()
    shutil.rmtree(tmp_path / "clean")
    return snap


def assert_consistent(snap: dict) -> None:
    assert snap["vector_duplicates"] == 0
    assert snap["vectors"] == sorted(v for _, _, v in snap["chunks"])
    assert snap["keyword"] == sorted(c for c, _, _ in snap["chunks"])
    assert [chunk_of(v) for v in snap["vectors"]] == snap["keyword"]
