"""`kabar eval`: question files, the eval corpus, metrics, and the seed eval set as a quality floor."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import ROOT, fake_verify
from llm_server import ChatServer, Reply, passage_no

from bot.answer.llm import OpenAICompatible
from bot.app import Kabar, engine_for
from bot.cli.main import cli
from bot.evaluate import datasets, metrics, run
from bot.settings import Settings
from index.errors import KabarError
from index.search import Searcher
from index.store import Store

SEED_EVAL = ROOT / "tests" / "data" / "seed_eval.jsonl"
DISTRACTORS = ROOT / "tests" / "data" / "indosum_sample.jsonl"


# --- answer metrics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "answers", "em", "f1", "contains"),
    [
        ("Georgiy Zinoviev", ["Georgiy Zinoviev"], 1.0, 1.0, 1.0),
        ("georgiy  zinoviev.", ["Georgiy Zinoviev"], 1.0, 1.0, 1.0),
        ("duta besar Georgiy Zinoviev", ["Georgiy Zinoviev"], 0.0, 2 * 0.5 / 1.5, 1.0),
        ("Zinoviev", ["Georgiy Zinoviev"], 0.0, 2 * 0.5 / 1.5, 0.0),
        ("sekitar 1.500 prajurit", ["1.500 prajurit", "1.500"], 0.0, 0.8, 1.0),
        ("15.000 prajurit", ["1.500 prajurit"], 0.0, 0.5, 0.0),
        ("", ["Vladivostok"], 0.0, 0.0, 0.0),
        ("Vladivostok", [], 0.0, 0.0, 0.0),
        # a footnote or a range glued to the answer is not part of its words
        ("Banjir ialah peristiwa yang merendam daratan.[1] Lalu", ["merendam daratan"], 0.0, 2 / 9, 1.0),
        ("Pangeran Cakraningrat III (1707-1718)", ["1707"], 0.0, 0.0, 1.0),
        ("lahir pada tahun 1915 M.[2] Ayahnya", ["1915 M"], 0.0, 0.25, 1.0),
        ("keduanya saling bersilangan", ["dua"], 0.0, 0.0, 0.0),
        ("sekitar 1500 prajurit", ["1.500"], 0.0, 0.5, 1.0),
        ("3,5 persen", ["3,5 persen"], 1.0, 1.0, 1.0),
    ],
)
def test_answer_metrics(prediction: str, answers: list[str], em: float, f1: float, contains: float) -> None:
    assert metrics.exact_match(prediction, answers) == em
    assert metrics.token_f1(prediction, answers) == pytest.approx(f1)
    assert metrics.contains_answer(prediction, answers) == contains


@pytest.mark.parametrize(
    ("text", "ks"), [("1,5,10", [1, 5, 10]), ("10, 1", [1, 10]), ("3", [3]), ("5,5", [5])]
)
def test_parse_ks(text: str, ks: list[int]) -> None:
    assert metrics.parse_ks(text) == ks


@pytest.mark.parametrize("text", ["", "0,5", "a,b", "-1"])
def test_parse_ks_rejects(text: str) -> None:
    with pytest.raises(KabarError, match="--k"):
        metrics.parse_ks(text)


# --- question files and the eval corpus --------------------------------------------------------------


def test_seed_eval_set_has_english_indonesian_and_unanswerable_questions() -> None:
    items = datasets.read_qa(SEED_EVAL)
    datasets.gold_corpus(items)
    kinds = [it.kind for it in items]
    assert (kinds.count("answerable"), kinds.count("impossible"), kinds.count("absent")) == (18, 4, 5)
    english = [it for it in items if it.question.split()[0] in ("How", "What", "When", "Where", "Why", "Who")]
    assert 8 <= len(english) <= len(items) - 8
    for it in items:
        if it.kind == "answerable":
            assert it.passage and all(a in it.passage for a in it.answers)


def test_read_qa_says_where_a_bad_line_is(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"qid": "a", "question": "Apa?", "answers": []}\n\n{oops\n', encoding="utf-8")
    with pytest.raises(KabarError, match=r"bad\.jsonl:3"):
        datasets.read_qa(path)
    path.write_text('{"qid": "a", "answers": []}\n', encoding="utf-8")
    with pytest.raises(KabarError, match=r"bad\.jsonl:1: record has no question"):
        datasets.read_qa(path)


def test_read_qa_limit_and_missing_passage(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    rows = [
        {"qid": "1", "question": " Siapa? ", "answers": ["Ani"], "passage_id": "p", "passage": "Ani pergi."},
        {"qid": "2", "question": "Kapan?", "answers": [], "is_impossible": True, "passage_id": "x"},
        {"qid": "3", "question": "Di mana?", "answers": ["Bogor"], "passage_id": "p", "passage": "Ani."},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    items = datasets.read_qa(path, limit=2)
    assert [(it.qid, it.question, it.passage_id, it.source) for it in items] == [
        ("1", "Siapa?", "p", "q.jsonl"),
        ("2", "Kapan?", None, "q.jsonl"),  # no passage: its answer cannot be in the index
    ]


def test_read_ntrex_makes_english_questions_over_indonesian_documents(tmp_path: Path) -> None:
    path = tmp_path / "ntrex.jsonl.gz"
    record = {
        "doc_id": "ntrex:bbc.1",
        "sentences_en": ["Short headline here", "A" + " word" * 9, "B" + " word" * 9, "C" + " word" * 9],
        "text_id": "Teks berita dalam bahasa Indonesia.",
    }
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
    assert datasets.is_ntrex(path) and not datasets.is_ntrex(SEED_EVAL)
    items = datasets.read_ntrex(path)
    assert [(it.qid, it.question[0], it.passage_id, it.answers) for it in items] == [
        ("ntrex:bbc.1-0", "A", "ntrex:bbc.1", []),
        ("ntrex:bbc.1-1", "B", "ntrex:bbc.1", []),
    ]
    assert all(it.passage == record["text_id"] for it in items)
    assert len(datasets.read_ntrex(path, limit=1)) == 1


def _item(qid: str, pid: str | None, passage: str | None, impossible: bool = False) -> datasets.EvalItem:
    return datasets.EvalItem(qid, "f.jsonl", f"q{qid}?", ["x"], impossible, pid, passage)


def test_gold_corpus_dedupes_passages_by_text_and_holds_out_a_stable_share() -> None:
    items = [
        _item("1", "a:1", "Teks satu."),
        _item("2", "a:2", " Teks  satu. "),  # the same passage under another id
        _item("3", "b", "Teks dua."),
        _item("4", None, None),
    ]
    records = datasets.gold_corpus(items)
    assert records == [{"doc_id": "a:1", "text": "Teks satu."}, {"doc_id": "b", "text": "Teks dua."}]
    assert [it.gold_id for it in items] == ["a_1", "a_1", "b", None]  # ids as the loader sanitises them
    assert [it.kind for it in items] == ["answerable", "answerable", "answerable", "absent"]
    assert datasets.gold_corpus(items, absent_share=1.0) == []
    assert all(it.kind == "absent" for it in items)
    many = [_item(str(i), f"p{i}", f"Teks {i}.") for i in range(400)]
    kept = {r["doc_id"] for r in datasets.gold_corpus(many, absent_share=0.25)}
    assert 250 < len(kept) < 350
    assert kept == {r["doc_id"] for r in datasets.gold_corpus(many, absent_share=0.25)}


# --- scoring -----------------------------------------------------------------------------------------


def _result(item: datasets.EvalItem, ranked: list[str], refused: bool, cites: list[tuple[str, str]]):
    item.gold_id = item.passage_id
    rankings = {"kabar": metrics.Ranking(ranked, 10.0), "bm25": metrics.Ranking(list(reversed(ranked)), 1.0)}
    prediction = " ".join(q for _, q in cites)
    return metrics.QuestionResult(item, rankings, refused, prediction, cites, 20.0)


def test_summarize_scores_retrieval_answers_citations_and_refusals() -> None:
    answerable = [_item(str(i), f"g{i}", "...") for i in range(4)]
    impossible = _item("i", "g9", "...", impossible=True)
    absent = _item("a", None, None)
    results = [
        _result(answerable[0], ["g0", "z", "z"], False, [("g0", "kata x"), ("z", "lain")]),
        _result(answerable[1], ["z", "g1", "z"], False, [("z", "ada x di sini")]),
        _result(answerable[2], ["z", "z", "z"], True, []),
        _result(answerable[3], ["z", "z", "g3"], False, [("z", "tidak")]),
        _result(impossible, ["g9"], True, []),
        _result(absent, ["z"], True, []),
    ]
    absent.gold_id = None
    results[0].span = "x"  # marked exactly; the second answered one has no mark
    m = metrics.summarize(results, [1, 2])["f.jsonl"]
    assert m["retrieval"]["kabar"] == {
        "n": 4,
        "recall@1": 0.25,
        "recall@2": 0.5,
        "mrr": pytest.approx((1 + 1 / 2 + 0 + 1 / 3) / 4),
        "retrieve_ms_p50": 10.0,
        "retrieve_ms_p95": 10.0,
    }
    assert m["retrieval"]["bm25"]["recall@1"] == 0.25  # g3 comes first reversed
    assert m["answers"] == {
        "n": 6,
        "n_answerable": 4,
        "exact_match": 0.0,
        "token_f1": pytest.approx((0.5 + 0.4 + 0 + 0) / 4),
        "contains_answer": 0.5,
        "citation_precision": 0.5,  # gold document, or a quote holding the answer: 2 of 4
        "refused_answerable": 0.25,
        "refusal_impossible": {"n": 1, "precision": 0.5, "recall": 1.0},
        "refusal_absent": {"n": 1, "precision": 0.5, "recall": 1.0},
        "total_ms_p50": 20.0,
        "total_ms_p95": 20.0,
        "span_marked": 1 / 3,  # of the three answered answerable questions
        "span_exact_match": 1.0,
        "span_f1": 1.0,
    }


def test_summarize_adds_overall_only_for_several_files() -> None:
    a, b = _item("1", "g1", "..."), _item("2", "g2", "...")
    b.source = "other.jsonl"
    results = [_result(a, ["g1"], False, []), _result(b, ["z"], False, [])]
    assert list(metrics.summarize(results[:1], [1])) == ["f.jsonl"]
    summary = metrics.summarize(results, [1])
    assert list(summary) == ["f.jsonl", "other.jsonl", "overall"]
    assert summary["overall"]["retrieval"]["kabar"]["recall@1"] == 0.5


def test_markdown_tables() -> None:
    from bot.cli.eval_cmd import answer_rows, markdown_table, retrieval_rows

    a = _item("1", "g1", "...")
    summary = metrics.summarize([_result(a, ["z", "g1"], False, [("g1", "x")])], [1, 2])
    assert markdown_table("R", *retrieval_rows(summary, [1, 2])) == "\n".join(
        [
            "**R**",
            "",
            "| set | system | n | R@1 | R@2 | MRR | p50 ms | p95 ms |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
            "| f.jsonl | kabar | 1 | 0.000 | 1.000 | 0.500 | 10 | 10 |",
            "|  | bm25 | 1 | 1.000 | 1.000 | 1.000 | 1 | 1 |",
        ]
    )
    header, rows = answer_rows(summary)
    assert len(header) == len(rows[0])
    assert rows == [
        ["f.jsonl", "1", "1.000", "1.000", "1.000", "0.000", "–", "–", "1.000", "0.000"]
        + ["–/– (0)", "–/– (0)", "20", "20"]
    ]


# --- the whole run, with the fake embedder -----------------------------------------------------------


@pytest.fixture
def fake_kabar(tmp_path: Path, fake_embedder) -> Kabar:
    data = tmp_path / "data"
    store = Store(data, fake_embedder.name, fake_embedder.dim)
    engine = engine_for(Searcher(store, fake_embedder))
    return Kabar(Settings.load(None, home=data), data, fake_embedder, store, engine)


def test_run_on_the_seed_set_with_baselines(fake_kabar: Kabar) -> None:
    items = datasets.read_qa(SEED_EVAL)
    info = run.prepare_index(fake_kabar, items, [DISTRACTORS], absent_share=0.0)
    assert (info["gold_documents"], info["articles"], info["skipped"]) == (7, 11, [])
    ticks: list[tuple[int, int]] = []
    results = run.run_questions(
        fake_kabar.engine, items, 10, baselines=True, progress=lambda d, t: ticks.append((d, t))
    )
    assert ticks[-1] == (27, 27) and len(results) == 27
    assert isinstance(fake_kabar.engine.searcher, Searcher)
    assert not isinstance(fake_kabar.engine.searcher, run.RecordingSearcher)  # wrapped, never swapped
    for r in results:
        assert set(r.rankings) == {"kabar", "bm25", "dense", "llama-index"}
        assert len(r.rankings["llama-index"].article_ids) == 2  # llama-index's default top-k
        assert len(r.rankings["kabar"].article_ids) == 10
        assert r.refused == (r.prediction == "" and not r.citations)
        line = r.to_json()
        assert line["kind"] == r.item.kind and set(line["rank"]) == set(r.rankings)
        if r.item.kind == "absent":
            assert line["rank"] == dict.fromkeys(r.rankings)
    m = metrics.summarize(results, [1, 5, 10])["seed_eval.jsonl"]
    assert m["answers"]["n_answerable"] == 18
    # bag-of-words vectors over 14 chunks: the keyword side alone finds most gold passages
    assert m["retrieval"]["bm25"]["recall@10"] >= 0.8
    assert m["retrieval"]["kabar"]["recall@10"] >= m["retrieval"]["bm25"]["recall@10"]


def test_engine_answers_are_the_same_through_the_recording_searcher(fake_kabar: Kabar) -> None:
    items = datasets.read_qa(SEED_EVAL)
    run.prepare_index(fake_kabar, items, [], absent_share=0.0)
    plain = [fake_kabar.engine.answer(it.question) for it in items[:8]]
    recorded = run.run_questions(fake_kabar.engine, items[:8], depth=10)
    for a, r in zip(plain, recorded, strict=True):
        assert (a.refused, [(c.article_id, c.quote) for c in a.citations]) == (r.refused, r.citations)


def test_the_support_scorer_answers_beside_the_ranker_from_the_same_passages(fake_kabar: Kabar) -> None:
    from bot.answer.engine import Engine
    from bot.cli.eval_cmd import answer_rows, markdown_table

    items = datasets.read_qa(SEED_EVAL)
    run.prepare_index(fake_kabar, items, [], absent_share=0.0)
    compare = run.support_answerer(fake_kabar.engine)
    assert compare is not None and compare.ranker is None
    results = run.run_questions(fake_kabar.engine, items, depth=10, compare=compare)
    e = fake_kabar.engine
    plain = Engine(e.searcher, compare, top_k=e.top_k)  # the support scorer as the whole engine
    for r in results:
        assert r.compare is not None and r.compare.item is r.item
        alone = plain.answer(r.item.question)
        assert (alone.refused, [(c.article_id, c.quote) for c in alone.citations]) == (
            r.compare.refused,
            r.compare.citations,
        )
        assert r.compare.refused == r.refused  # both refuse by the support logit
        assert r.to_json()["support_scorer"]["refused"] == r.compare.refused
    summary = metrics.summarize(results, [1])
    assert summary["seed_eval.jsonl"]["answers_support"]["n"] == 27
    header, rows = answer_rows(summary)
    assert header[:2] == ["set", "scorer"] and [row[1] for row in rows] == ["ranker", "support"]
    assert "| set | scorer | n |" in markdown_table("A", header, rows)


def test_reused_data_dir_drops_the_gold_passages_of_earlier_runs(fake_kabar: Kabar) -> None:
    items = datasets.read_qa(SEED_EVAL)
    first = run.prepare_index(fake_kabar, items, [DISTRACTORS], absent_share=0.0)
    assert first["added"] == 11
    again = run.prepare_index(fake_kabar, items, [DISTRACTORS], absent_share=0.0)
    assert (again["added"], again["removed"], again["chunks_embedded"]) == (0, 0, 0)
    held_out = run.prepare_index(fake_kabar, items, [], absent_share=1.0)  # distractors stay
    assert (held_out["removed"], held_out["articles"]) == (7, 4)
    assert not any(a.startswith("seed_") for a in fake_kabar.store.article_hashes())
    bm25 = run.Baselines(fake_kabar.engine.searcher, 10).run("Georgiy Zinoviev", np.zeros(64), 0.0)["bm25"]
    assert not any(a.startswith("seed_") for a in bm25.article_ids)  # the keyword index forgot them too
    back = run.prepare_index(fake_kabar, items[:3], [], absent_share=0.0)
    assert (back["added"], back["removed"], back["articles"]) == (2, 0, 6)


# --- LLM mode: the eval against a real loopback chat-completions server ------------------------------

ZINOVIEV = "duta besar Rusia untuk Korea Selatan, Georgiy Zinoviev"
PESKOV = "Juru bicara Kremlin, Dmitry Peskov, mengatakan bahwa Moskow akan melanjutkan kerja sama tersebut"


@pytest.fixture
def server():
    s = ChatServer()
    yield s
    s.close()


@pytest.fixture
def llm_kabar(tmp_path: Path, fake_embedder, server: ChatServer) -> Kabar:
    data = tmp_path / "data"
    store = Store(data, fake_embedder.name, fake_embedder.dim)
    llm = OpenAICompatible(server.url, "m", timeout=1.0, budget=2.0, retries=1)
    # the fake embedder's cosines run lower than e5's, as in tests/test_generate.py
    engine = engine_for(Searcher(store, fake_embedder), llm, verify=fake_verify())
    return Kabar(Settings.load(None, home=data), data, fake_embedder, store, engine, llm)


def _split_seed_set(tmp_path: Path) -> list[datasets.EvalItem]:
    """Two files from the seed set: a.jsonl (Zinoviev, Peskov questions), b.jsonl (Peskov again)."""
    rows = {r["qid"]: r for r in map(json.loads, SEED_EVAL.read_text(encoding="utf-8").splitlines())}
    files = {"a.jsonl": ["seed-2", "seed-7"], "b.jsonl": ["seed-6"]}
    items = []
    for name, qids in files.items():
        path = tmp_path / name
        path.write_text("".join(json.dumps(rows[q]) + "\n" for q in qids), encoding="utf-8")
        items += datasets.read_qa(path)
    return items


def test_llm_mode_reports_verified_support_removed_sentences_and_fallbacks(
    llm_kabar: Kabar, server: ChatServer, tmp_path: Path
) -> None:
    from bot.cli.eval_cmd import answer_rows, markdown_table

    items = _split_seed_set(tmp_path)
    run.prepare_index(llm_kabar, items, [], absent_share=0.0)
    server.script(
        # a.jsonl, question 1: one supported sentence, one invented one citing the same passage
        Reply(
            respond=lambda b: (
                f"Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev [{passage_no(b, ZINOVIEV)}]. "
                f"Zinoviev menolak menghadiri pertemuan di Seoul [{passage_no(b, ZINOVIEV)}]."
            )
        ),
        # a.jsonl, question 2: the server fails twice (one try, one retry): the extractive answer
        Reply(status=500),
        Reply(status=500),
        # b.jsonl: one supported sentence
        Reply(respond=lambda b: f"{PESKOV} [{passage_no(b, PESKOV)}]."),
    )
    results = run.run_questions(llm_kabar.engine, items, 10)  # KABAR_LLM configured: LLM by default
    assert [(r.checked_sentences, r.dropped_sentences, r.notice is not None) for r in results] == [
        (2, 1, False),
        (0, 0, True),
        (1, 0, False),
    ]
    assert results[0].prediction == "Duta besar Rusia untuk Korea Selatan adalah Georgiy Zinoviev."
    assert results[1].to_json()["notice"].startswith("Model bahasa tidak memberi jawaban")
    summary = metrics.summarize(results, [1, 5])
    llm_keys = ("sentences_checked", "sentences_dropped", "verified_support", "unsupported_removed")
    got = {name: [g["answers"][k] for k in (*llm_keys, "llm_fallbacks")] for name, g in summary.items()}
    assert got == {
        "a.jsonl": [2, 1, 0.5, 0.5, 1],
        "b.jsonl": [1, 0, 1.0, 0.0, 0],
        "overall": [3, 1, pytest.approx(2 / 3), pytest.approx(1 / 3), 1],
    }
    header, rows = answer_rows(summary)
    assert header[-7:] == [
        "answered/refused/fallback",
        "verified support",
        "unsupported removed",
        "by Kabar",
        "prompt tok p50",
        "first word s p50",
        "s/answer",
    ]
    assert [row[-7:-3] for row in rows] == [
        ["0.50/0.00/0.50", "0.500 (2)", "0.500 (1)", "0.00"],
        ["1.00/0.00/0.00", "1.000 (1)", "0.000 (0)", "0.00"],
        ["0.67/0.00/0.33", "0.667 (3)", "0.333 (1)", "0.00"],
    ]
    assert all(int(row[-3]) > 0 for row in rows)  # prompt tokens of the answered ones
    assert summary["overall"]["answers"]["fallback_reasons"] == {"HTTP 500": 1}
    assert "| verified support | unsupported removed | by Kabar |" in markdown_table("A", header, rows)

    # the same questions without the LLM: no LLM columns at all, and the server is not asked
    asked = len(server.requests)
    plain = metrics.summarize(run.run_questions(llm_kabar.engine, items, 10, use_llm=False), [1, 5])
    assert len(server.requests) == asked
    assert not any(k in g["answers"] for g in plain.values() for k in (*llm_keys, "llm_fallbacks"))
    header, rows = answer_rows(plain)
    assert "by Kabar" not in header and all(len(row) == len(header) for row in rows)
    assert "notice" not in run.run_questions(llm_kabar.engine, items[:1], 10, use_llm=False)[0].to_json()


def test_cli_eval_llm_needs_an_llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KABAR_LLM", "none")
    monkeypatch.setenv("KABAR_HOME", str(tmp_path))
    result = CliRunner().invoke(cli, ["eval", "--qa", str(SEED_EVAL), "--llm"])
    assert result.exit_code == 2 and "KABAR_LLM=openai" in result.output


@pytest.mark.integration
def test_cli_eval_in_llm_mode(
    kabar_env: Path, server: ChatServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rows = {r["qid"]: r for r in map(json.loads, SEED_EVAL.read_text(encoding="utf-8").splitlines())}
    qa = tmp_path / "peskov.jsonl"
    qa.write_text("".join(json.dumps(rows[q]) + "\n" for q in ("seed-7", "seed-5")), encoding="utf-8")
    monkeypatch.setenv("KABAR_LLM", "openai")
    monkeypatch.setenv("KABAR_LLM_URL", server.url)
    monkeypatch.setenv("KABAR_LLM_RETRIES", "0")

    def reply(b: dict) -> str:
        k = passage_no(b, "Moskow akan melanjutkan")
        return (
            f"Dmitry Peskov mengatakan Moskow akan melanjutkan kerja sama tersebut [{k}]. "
            f"Ia juga memuji Presiden Joe Biden [{k}]."  # invented
        )

    def script() -> None:
        # the second question's reply is an error: it falls back to the extractive answer
        server.script(Reply(respond=reply), Reply(status=500))

    args = ["eval", "--qa", str(qa), "--absent", "0", "--data-dir", str(tmp_path / "eval")]
    script()
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    answers = report["metrics"]["peskov.jsonl"]["answers"]
    assert report["mode"] == "llm"
    assert (answers["verified_support"], answers["unsupported_removed"], answers["llm_fallbacks"]) == (
        0.5,
        0.5,
        1,
    )
    script()
    result = CliRunner().invoke(cli, [*args, "--markdown"], catch_exceptions=False)
    assert (
        "| answered/refused/fallback | verified support | unsupported removed | by Kabar |" in result.output
    )
    assert "| 0.50/0.00/0.50 | 0.500 (2) | 0.500 (1) | 0.00 |" in result.output
    result = CliRunner().invoke(cli, [*args, "--no-llm", "--json"], catch_exceptions=False)
    report = json.loads(result.output)
    assert (
        report["mode"] == "extractive"
        and "verified_support" not in report["metrics"]["peskov.jsonl"]["answers"]
    )


def test_cli_needs_a_question_file() -> None:
    result = CliRunner().invoke(cli, ["eval"])
    assert result.exit_code == 2 and "--qa" in result.output
    result = CliRunner().invoke(cli, ["eval", "--qa", str(SEED_EVAL), "--k", "0"])
    assert result.exit_code == 2 and "--k" in result.output


# --- the quality floor: the seed set with the real model ---------------------------------------------

# What Kabar reached on tests/data/seed_eval.jsonl (18 answerable, 4 impossible, 5 out-of-corpus
# questions; IndoSum sample as distractors). Raise these when quality improves; never lower them.
FLOOR = {  # what Kabar reached (2026-11-26, z-score fusion): a drop fails CI
    "recall@1": 16 / 18,
    "recall@5": 1.0,
    "mrr": 0.94,
    "contains_answer": 18 / 18,
    "citation_precision": 0.80,
    "refused_answerable": 0.0,  # a ceiling
    "absent_recall": 1.0,
    # the answer mark (2026-12-02): 14 of 18 answers marked, 11 of those 14 marks exactly a gold answer
    "span_marked": 14 / 18,
    "span_exact_match": 11 / 14,
}


@pytest.mark.integration
def test_seed_eval_quality_floor(kabar_env: Path) -> None:
    args = ["eval", "--qa", str(SEED_EVAL), "--corpus", str(DISTRACTORS), "--absent", "0"]
    result = CliRunner().invoke(cli, [*args, "--baselines", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    m = report["metrics"]["seed_eval.jsonl"]
    kabar, answers = m["retrieval"]["kabar"], m["answers"]
    assert kabar["n"] == 18 and answers["n"] == 27
    assert kabar["recall@1"] >= FLOOR["recall@1"] - 1e-9
    assert kabar["recall@5"] >= FLOOR["recall@5"]
    assert kabar["mrr"] >= FLOOR["mrr"]
    assert answers["contains_answer"] >= FLOOR["contains_answer"] - 1e-9
    assert answers["citation_precision"] >= FLOOR["citation_precision"] - 1e-9
    assert answers["refused_answerable"] <= FLOOR["refused_answerable"]
    assert answers["refusal_absent"]["recall"] >= FLOOR["absent_recall"]
    assert answers["span_marked"] >= FLOOR["span_marked"] - 1e-9
    assert answers["span_exact_match"] >= FLOOR["span_exact_match"] - 1e-9
    # the sentence ranker answers from the same passages as the support scorer it replaced, and no worse
    replaced = m["answers_support"]
    assert answers["contains_answer"] >= replaced["contains_answer"]
    assert answers["refused_answerable"] == replaced["refused_answerable"]  # both refuse by support
    for baseline in ("bm25", "dense", "llama-index"):  # fusion must not fall below either side
        assert kabar["mrr"] >= m["retrieval"][baseline]["mrr"], baseline
        assert kabar["recall@1"] >= m["retrieval"][baseline]["recall@1"], baseline


# KABAR_SCORER=reader on the same set (2026-12-04, the epoch-4 reader): one answer fewer than the ranker's
# (17 of 18) with better citations; same refusals. Raise these when the reader improves.
READER_FLOOR = {"contains_answer": 17 / 18, "citation_precision": 0.85, "span_marked": 14 / 18}


@pytest.mark.integration
def test_seed_eval_quality_floor_with_the_reader(kabar_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KABAR_SCORER", "reader")
    args = ["eval", "--qa", str(SEED_EVAL), "--corpus", str(DISTRACTORS), "--absent", "0", "--json"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    answers = json.loads(result.output)["metrics"]["seed_eval.jsonl"]["answers"]
    assert answers["contains_answer"] >= READER_FLOOR["contains_answer"] - 1e-9
    assert answers["citation_precision"] >= READER_FLOOR["citation_precision"] - 1e-9
    assert answers["span_marked"] >= READER_FLOOR["span_marked"] - 1e-9
    assert answers["refused_answerable"] <= FLOOR["refused_answerable"]
    assert answers["refusal_absent"]["recall"] >= FLOOR["absent_recall"]
