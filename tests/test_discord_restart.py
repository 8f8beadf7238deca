"""Nothing lost on a restart: a second bot process continues the first one's thread and serves its button."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

SCRIPT = Path(__file__).resolve().parent / "bot_process.py"


def _life(tmp_path: Path, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_restarted_bot_continues_the_thread_and_its_sources_button_still_works(tmp_path):
    first = _life(tmp_path, "ask")
    assert first["answered"] >= 1 and len(first["key"]) == 16
    assert (tmp_path / "home" / "bot-memory.sqlite").exists()

    second = _life(tmp_path, "follow", first["key"])
    assert second["history"] == [["Apa desakan Korsel?"]]  # the first life's turn, read back from disk
    assert second["answered"] >= 1
    assert "Pasukan khusus Korea Utara sudah berada di Rusia" in second["sources"]
