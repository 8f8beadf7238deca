"""`kabar ask`, `stats` and `index` on a damaged index: one line naming what is broken and the command that
repairs it, exit status 1, no traceback; the command named then restores the index (real model, real CLI)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS

pytestmark = pytest.mark.integration

QUESTION = "What does Cheong Seong-chang expect Kim Jong Un to gain?"


def kabar(home: Path, cache: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KABAR_HOME": str(home), "KABAR_CACHE_DIR": str(cache)}
    env["KABAR_CORPUS"] = f'["{SEEDS}"]'
    code = "import sys; from bot.cli.main import main; sys.argv[0] = 'kabar'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("victim", "part", "repair"),
    [
        ("kabar.sqlite", "index registry", "kabar index --rebuild"),
        ("chroma/chroma.sqlite3", "vector store", "kabar index --rebuild"),
        ("keyword/current", "keyword index", "kabar index --repair"),
        ("keyword/s000001/postings.npz", "keyword index", "kabar index --repair"),
    ],
)
def test_damage_is_one_line_naming_the_file_and_its_repair(
    tmp_path, seed_index, e5_cache_dir, victim, part, repair
):
    home = tmp_path / "home"
    shutil.copytree(seed_index, home)
    target = home / victim
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2] if len(data) > 8 else b"x\x00garbage")
    for args in (["ask", QUESTION], ["stats", "--json"], ["index", "--json"]):
        run = kabar(home, e5_cache_dir, *args)
        if run.returncode == 0:  # only reading what is intact (stats reads the registry alone)
            assert args[0] == "stats" and part != "index registry", run.stdout
            continue
        lines = [line for line in run.stderr.splitlines() if line.strip() and "Warning" not in line]
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr[-2000:]
        assert len(lines) == 1 and part in lines[0] and f"`{repair}`" in lines[0], run.stderr
        assert run.stdout == ""  # no answer from a damaged index
    fixed = kabar(home, e5_cache_dir, *repair.split()[1:], "--json")
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    answer = kabar(home, e5_cache_dir, "ask", "--json", QUESTION)
    assert answer.returncode == 0 and '"refused": false' in answer.stdout
