"""Crash safety: a run killed at any point leaves an index that the next run turns into a clean build."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, FakeEmbedder
from synthetic import assert_consistent, clean_build, make_corpus, snapshot

from index.ingest import index_paths
from index.layout import DataDir
from index.search import Searcher
from index.store import Store


class DyingEmbedder(FakeEmbedder):
    """Dies (like a kill) on its n-th batch: the batches before it are committed, the rest are not."""

    def __init__(self, die_at: int) -> None:
        super().__init__()
        self.die_at = die_at

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if len(self.calls) + 1 == self.die_at:
            raise KeyboardInterrupt("killed")
        return super().embed_passages(texts)


@pytest.mark.parametrize("die_at", [1, 2, 5])
def test_rerun_after_a_killed_run_matches_a_clean_build(tmp_path: Path, die_at: int, store_mode) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 12)
    store = store_mode.store(tmp_path / "data", FakeEmbedder.name, FakeEmbedder.dim)
    with pytest.raises(KeyboardInterrupt):
        index_paths([corpus], store, DyingEmbedder(die_at), batch_chunks=8)
    assert store.meta("dirty") == ("1" if die_at > 1 else None)  # set by the first vector write
    # readers in between: whatever is registered has its vectors; the keyword index may lag one run
    ids = {c for c, _, _ in snapshot(store)["chunks"]}
    assert len(ids) == 8 * (die_at - 1)
    report = index_paths([corpus], store, FakeEmbedder())
    assert report.unchanged == 2 * (die_at - 1) and report.added == 12 - report.unchanged
    snap = snapshot(store)
    assert_consistent(snap)
    assert snap == clean_build(corpus, tmp_path, FakeEmbedder())
    assert store.meta("dirty") is None


def test_orphan_vectors_of_a_killed_batch_are_dropped(tmp_path: Path, store_mode) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 3)
    embedder = FakeEmbedder()
    store = store_mode.store(tmp_path / "data", embedder.name, embedder.dim)
    index_paths([corpus], store, embedder)
    # a kill between the vector write and the registry transaction: vectors nobody registered
    store.collection.add(ids=["ghost:0#0", "ghost:1#0"], embeddings=np.ones((2, 64)).tolist())
    with store.db:
        store.set_meta("dirty", "1")
    index_paths([corpus], store, embedder)
    assert snapshot(store) == clean_build(corpus, tmp_path, embedder)


def _chunk_count(home: Path) -> int:
    db = DataDir(home).registry
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0  # the schema is not there yet


def _kabar(home: Path, cache: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "KABAR_HOME": str(home), "KABAR_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    env["KABAR_INDEX_BATCH"] = "32"  # several commits per run, so there is a moment to kill it between them
    env.pop("KABAR_EMBED_MODEL", None)  # the real default model
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "kabar"), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _kill_when(proc: subprocess.Popen, home: Path, chunks: int, timeout: float = 300) -> int:
    """SIGKILL the run once at least `chunks` chunks are committed; the count seen when it was killed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = _chunk_count(home)
        if n >= chunks:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return n
        if proc.poll() is not None:
            pytest.fail(f"kabar index ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("kabar index committed nothing in time")


@pytest.mark.integration
def test_kill_9_of_a_real_index_run_converges(tmp_path: Path, e5_cache_dir: Path, real_embedder) -> None:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 300, paragraphs=1, per_paragraph=3)
    home, clean = tmp_path / "home", tmp_path / "clean"

    # killed twice (the second time while finishing the first run's work), then left to finish
    first = _kill_when(_kabar(home, e5_cache_dir, "index", str(corpus), "--json"), home, 64)
    second = _kill_when(_kabar(home, e5_cache_dir, "index", str(corpus), "--json"), home, first + 64)
    assert 0 < first < second < 300
    for target in (home, clean):
        proc = _kabar(target, e5_cache_dir, "index", str(corpus), "--json")
        out, errs = proc.communicate(timeout=600)
        assert proc.returncode == 0, errs.decode()[-2000:]
        report = json.loads(out)
        assert report["index"]["articles"] == 300 and report["skipped"] == []
        if target == home:  # the rerun embedded only what the killed runs had not committed
            assert report["unchanged"] + report["added"] == 300 and report["unchanged"] >= 64 // 2

    stores = [Store(home), Store(clean)]
    a, b = (snapshot(s) for s in stores)
    assert_consistent(a)
    assert a == b
    # the same answers: the same passages, in the same order, with the same scores
    for query in ["harga beras di Jakarta", "banjir di Medan", "bandara nomor 2"]:
        hits = [Searcher(s, real_embedder).search(query, 5).passages for s in stores]
        assert [p.chunk_id for p in hits[0]] == [p.chunk_id for p in hits[1]]
        assert [p.dense for p in hits[0]] == pytest.approx([p.dense for p in hits[1]], abs=1e-5)
