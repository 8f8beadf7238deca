"""KABAR_DEVICE: where bulk indexing runs the model (auto picks a GPU when torch sees one)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError
from index.embed import resolve_device
from index.errors import KabarError


def _gpu() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or bool(mps and mps.is_available())


@pytest.mark.slow  # imports torch (seconds)
def test_auto_picks_the_cpu_on_a_machine_without_a_gpu() -> None:
    if _gpu():
        pytest.skip("this machine has a GPU: auto picks it")
    assert resolve_device("auto") == "cpu"
    assert Settings.load(None).index.device == "auto"


@pytest.mark.slow
@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_a_gpu_that_is_not_there_is_a_clear_error(device: str) -> None:
    if _gpu():
        pytest.skip("this machine has a GPU")
    with pytest.raises(KabarError, match=f"KABAR_DEVICE={device}, but torch sees no"):
        resolve_device(device)


def test_an_unknown_device_is_a_settings_error_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="KABAR_DEVICE"):
        Settings.load(None, device="tpu")
    with pytest.raises(SettingsError, match="KABAR_EMBED_BATCH"):
        Settings.load(None, embed_batch=0)
    with pytest.raises(KabarError, match="KABAR_DEVICE must be one of"):
        resolve_device("gpu")


def test_the_bulk_embedder_runs_where_auto_says(e5_cache_dir: Path, real_embedder) -> None:
    from index.embed import load_embedder

    auto = load_embedder(None, e5_cache_dir, device="auto")
    assert auto.device == resolve_device("auto") and auto.batch_size == (32 if auto.device == "cpu" else 128)
    texts = ["Harga beras naik di Jakarta.", "The central bank kept its rate unchanged."]
    assert abs(auto.embed_passages(texts) - real_embedder.embed_passages(texts)).max() < 1e-5


def test_the_embedding_bar_shows_chunks_per_second() -> None:
    from rich.console import Console

    from bot.cli.common import progress_bars

    console = Console(record=True, width=120, force_terminal=False)
    with progress_bars(console=console) as update:
        update("embed", 0, 300)
        time.sleep(0.2)
        update("embed", 150, 300)
        time.sleep(0.2)
        update("embed", 300, 300)
    line = [ln for ln in console.export_text().splitlines() if "Embedding chunks" in ln][-1]
    rate = float(re.search(r"([\d,.]+) chunks/s", line).group(1).replace(",", ""))  # type: ignore[union-attr]
    assert 100 < rate < 3000, line  # ~750 chunks/s: 300 chunks in 0.4 s (slower on a loaded machine)
