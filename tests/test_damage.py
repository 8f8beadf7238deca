"""Each stored file of an index damaged in turn (garbage written into it, or cut in half): answering, stats
and indexing either give the intact index's results or a clear IndexCorrupt naming what is broken and the
command that repairs it, never another error and never a different answer; that command then restores it.

Each look runs in its own process (tests/damage_probe.py): Chroma's native code may crash on damage.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, FakeEmbedder
from synthetic import make_corpus

from index.indexer import Indexer

pytestmark = pytest.mark.slow

PROBE = Path(__file__).resolve().parent / "damage_probe.py"
N_ARTICLES = 40


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    base = tmp_path_factory.mktemp("damage")
    corpus, data = base / "corpus", base / "data"
    make_corpus(corpus, N_ARTICLES)
    Indexer(data, FakeEmbedder()).sync([corpus])
    return corpus, data, probe(data, corpus)


def probe(data: Path, corpus: Path, may_crash: bool = False) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(PROBE), str(data), str(corpus)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if may_crash and proc.returncode < 0:
        pytest.xfail(f"Chroma's native code died of signal {-proc.returncode} on this damage")
    assert proc.returncode == 0, f"the probe died ({proc.returncode}): {proc.stderr[-1500:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def stored_files(data: Path) -> list[str]:
    return sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file() and p.name != "write.lock")


def test_the_index_holds_every_kind_of_stored_file(built):
    _, data, intact = built
    names = stored_files(data)
    assert "kabar.sqlite" in names and "chroma/chroma.sqlite3" in names
    assert any(n.endswith("data_level0.bin") for n in names) and any(n.startswith("keyword/s") for n in names)
    assert all(v.startswith("ok:") for v in intact.values()), intact


def damage(path: Path, how: str, seed: int) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
        return
    rng = random.Random(seed)
    n = max(64, len(data) // 3)
    start = len(data) // 3
    path.write_bytes(data[:start] + rng.randbytes(n) + data[start + n :])


def part_of(name: str) -> tuple[str, str]:
    """What the message must name for a file, and the command it must give."""
    if name.startswith("keyword/"):
        return "keyword index", "kabar index --repair"
    if name.startswith("chroma/"):
        return "vector store", "kabar index --rebuild"
    return "index registry", "kabar index --rebuild"


# Files whose damage is not detected before Chroma's native code reads them: in-place garbage inside an HNSW
# segment (sizes unchanged) can crash it. Known, documented in docs/reliability.md.
NATIVE_CRASH = {("data_level0.bin", "garbage"), ("header.bin", "garbage")}


@pytest.mark.parametrize("how", ["garbage", "truncated"])
@pytest.mark.parametrize("index", range(13))
def test_a_damaged_file_is_named_with_its_repair_or_changes_nothing(built, tmp_path, index, how):
    corpus, data, intact = built
    names = stored_files(data)
    if index >= len(names):
        pytest.skip(f"the index holds {len(names)} files")
    name = names[index]
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    damage(copy / name, how, index)

    seen = probe(copy, corpus, may_crash=(Path(name).name, how) in NATIVE_CRASH)
    part, repair = part_of(name)
    repairs = set()
    for what, outcome in seen.items():
        assert not outcome.startswith("error:"), (name, what, outcome)
        if outcome.startswith("corrupt:"):
            message = outcome.removeprefix("corrupt:")
            assert part in message and f"`{repair}`" in message and "\n" not in message, (name, message)
            repairs.add(repair)
        elif what != "index":  # an index pass may fix what it rewrites; a read must be the intact one
            assert outcome == intact[what], (name, what)

    if repairs:  # the named command restores the index
        indexer = Indexer(copy, FakeEmbedder())
        if "kabar index --repair" in repairs:
            indexer.repair()
            indexer.sync([corpus])
        else:
            indexer.sync([corpus], rebuild=True)
        assert probe(copy, corpus) == intact
