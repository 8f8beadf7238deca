"""Server mode: readers answer from the collection alone, a writer recovers its registry from the server,
keyword caches sync by ids, and a server that goes away is one clear error until it is back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from chroma_server import ChromaServer
from conftest import ROOT, SEED, FakeEmbedder
from synthetic import assert_consistent, clean_build, make_corpus, snapshot, write_article

from index.errors import IndexIdentityError, IndexUnavailable, ModelMismatchError
from index.ingest import index_paths
from index.remote import RemoteStore
from index.search import Searcher
from index.store import Store
from index.types import ChunkParams

pytestmark = pytest.mark.server


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class SlowEmbedder(FakeEmbedder):
    """Takes its time, so that a run is still going while readers answer (or the server goes away)."""

    def __init__(self, pause: float = 0.15) -> None:
        super().__init__()
        self.pause = pause

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        time.sleep(self.pause)
        return super().embed_passages(texts)


def _indexed(tmp_path: Path, server: ChromaServer, n: int = 4):
    corpus = tmp_path / "corpus"
    make_corpus(corpus, n)
    target = server.target()
    writer = Store(tmp_path / "writer", FakeEmbedder.name, FakeEmbedder.dim, ChunkParams(), target=target)
    index_paths([corpus], writer, FakeEmbedder())
    return corpus, target, writer


def test_a_reader_answers_from_the_collection_exactly_as_an_embedded_index(
    tmp_path: Path, chroma_server
) -> None:
    corpus, target, writer = _indexed(tmp_path, chroma_server)
    local = Store(tmp_path / "local", FakeEmbedder.name, FakeEmbedder.dim)
    index_paths([corpus], local, FakeEmbedder())
    reader = RemoteStore(tmp_path / "reader", target, FakeEmbedder.name, FakeEmbedder.dim, sync_seconds=0)
    for query in ["harga beras di Jakarta", "banjir di Medan nomor 3", "Kabar nomor 2"]:
        a, b = (Searcher(s, FakeEmbedder()).search(query, 5).passages for s in (local, reader))
        assert [(p.chunk_id, p.text, p.meta) for p in a] == [(p.chunk_id, p.text, p.meta) for p in b]
        assert [p.score for p in a] == pytest.approx([p.score for p in b], abs=1e-5)
        assert all(p.sentence_vectors is not None for p in a + b)
        assert all(np.array_equal(p.sentence_vectors, q.sentence_vectors) for p, q in zip(a, b, strict=True))
    cache = tmp_path / "reader"  # what the reader keeps: its keyword cache, and no registry
    assert list(cache.rglob("keyword/current")) and not list(cache.rglob("*.sqlite"))
    assert reader.stats() | {"last_indexed": None, "data_dir": None} == {
        "articles": 4,
        "chunks": writer.stats()["chunks"],
        "embed_model": FakeEmbedder.name,
        "data_dir": None,
        "last_indexed": None,
    }


@pytest.mark.slow
def test_a_writer_on_a_fresh_machine_rebuilds_its_registry_from_the_server(
    tmp_path: Path, chroma_server
) -> None:
    corpus, target, writer = _indexed(tmp_path, chroma_server, 5)
    before = snapshot(writer)
    writer.close()
    embedder = FakeEmbedder()
    fresh = Store(tmp_path / "elsewhere", embedder.name, embedder.dim, target=target)  # no registry there
    assert fresh.stats()["articles"] == 5
    report = index_paths([corpus], fresh, embedder)
    assert (report.added, report.updated, report.unchanged, embedder.calls) == (0, 0, 5, [])
    assert report.moved == 5  # raw file hashes are not on the server: each file parsed once, re-pointed
    assert snapshot(fresh) == before
    (corpus / "berita_0001.txt").unlink()
    write_article(corpus, 50)
    index_paths([corpus], fresh, embedder, prune=True)
    assert snapshot(fresh) == clean_build(corpus, tmp_path, FakeEmbedder())


@pytest.mark.slow
def test_a_killed_run_then_a_registry_lost_still_converge(tmp_path: Path, chroma_server) -> None:
    from test_crash import DyingEmbedder

    corpus = tmp_path / "corpus"
    make_corpus(corpus, 12)
    target = chroma_server.target()
    store = Store(tmp_path / "a", FakeEmbedder.name, FakeEmbedder.dim, target=target)
    with pytest.raises(KeyboardInterrupt):
        index_paths([corpus], store, DyingEmbedder(3), batch_chunks=8)
    store.close()
    # the writer's machine is gone with its registry: another one takes over from what the server holds
    other = Store(tmp_path / "b", FakeEmbedder.name, FakeEmbedder.dim, target=target)
    embedder = FakeEmbedder()
    report = index_paths([corpus], other, embedder)
    assert report.unchanged == 4 and report.added == 8  # the two committed batches are not embedded again
    snap = snapshot(other)
    assert_consistent(snap)
    assert snap == clean_build(corpus, tmp_path, FakeEmbedder())


def test_identity_is_checked_against_the_collection(tmp_path: Path, chroma_server) -> None:
    _, target, writer = _indexed(tmp_path, chroma_server, 1)
    with pytest.raises(ModelMismatchError, match=target.url):
        Store(tmp_path / "w2", "another-model", FakeEmbedder.dim, target=target)
    with pytest.raises(IndexIdentityError, match="KABAR_CHUNK_TOKENS=80"):
        Store(tmp_path / "w3", FakeEmbedder.name, FakeEmbedder.dim, ChunkParams(80, 1), target=target)
    reader = RemoteStore(tmp_path / "r", target, "another-model", 384)
    with pytest.raises(ModelMismatchError, match=r"KABAR_EMBED_MODEL=fake-bow-64"):
        reader.require_nonempty()


def test_the_keyword_cache_syncs_by_ids_and_is_shared_by_readers_of_a_data_dir(
    tmp_path: Path, chroma_server
) -> None:
    corpus, target, writer = _indexed(tmp_path, chroma_server, 6)
    home = tmp_path / "reader"
    first = RemoteStore(home, target, sync_seconds=0).keyword_source()
    first.refresh()
    n = writer.stats()["chunks"]
    assert (first.last_sync["added"], first.last_sync["removed"], len(first.index)) == (n, 0, n)

    write_article(corpus, 70)
    (corpus / "berita_0000.txt").unlink()
    index_paths([corpus], writer, FakeEmbedder(), prune=True)
    assert first.refresh()
    new = len(writer.chunk_ids(writer.find(str(corpus / "berita_0070.txt"))))
    assert (first.last_sync["added"], first.last_sync["removed"]) == (new, 4)  # only what changed
    assert sorted(first.index.keys()) == sorted(writer.keyword_keys())
    assert len(first.index.segments) == 2  # the first sync's segment plus one for the new article

    # a second reader process on this data dir loads the cache; it fetches no text from the server
    second = RemoteStore(home, target, sync_seconds=0).keyword_source()
    second.refresh()
    assert second.last_sync == {} and second.index.keys() == first.index.keys()
    for query in ("harga beras", "Kabar nomor 70", "pelabuhan Ambon"):
        assert second.index.search(query, 5) == first.index.search(query, 5)


def test_changes_are_looked_for_at_most_every_sync_seconds(tmp_path: Path, chroma_server) -> None:
    corpus, target, writer = _indexed(tmp_path, chroma_server, 2)
    now = [100.0]
    source = RemoteStore(tmp_path / "r", target, sync_seconds=5).keyword_source()
    source.clock = lambda: now[0]
    assert source.refresh()
    write_article(corpus, 80)
    index_paths([corpus], writer, FakeEmbedder())
    now[0] += 4.9
    assert not source.refresh()  # within the interval: not even asked
    assert source.index.keys() != writer.keyword_keys()
    now[0] += 0.2
    assert source.refresh() and source.index.keys() == writer.keyword_keys()
    now[0] += 10
    assert not source.refresh()  # looked, nothing changed: no sync


READER = """
import json, sys
from pathlib import Path
from conftest import FakeEmbedder
from index.chroma import ChromaTarget
from index.remote import RemoteStore
from index.search import Searcher

target = ChromaTarget(sys.argv[2], collection=sys.argv[3])
searcher = Searcher(RemoteStore(Path(sys.argv[1]), target, sync_seconds=1), FakeEmbedder())
print("ready", flush=True)
for line in sys.stdin:
    passages = searcher.search(line.strip(), 3).passages
    print(json.dumps([[p.chunk_id, p.text, p.dense, p.keyword] for p in passages]), flush=True)
"""


class Reader:
    """A reader process answering one query per line (JSON passages back)."""

    def __init__(self, tmp_path: Path, home: Path, target) -> None:
        script = tmp_path / "reader.py"
        script.write_text(READER, encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
        self.proc = subprocess.Popen(
            [sys.executable, str(script), str(home), target.url, target.collection],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def ask(self, question: str) -> list:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(question + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        return self.proc.wait(timeout=30)


@pytest.mark.slow
def test_one_writer_and_two_reader_processes_on_one_server(tmp_path: Path, chroma_server) -> None:
    corpus, target, writer = _indexed(tmp_path, chroma_server, 4)
    readers = [Reader(tmp_path, tmp_path / f"machine{i}", target) for i in (1, 2)]
    query = "Judul: Kabar nomor 30 zebra jerapah kuda nil di kebun binatang"
    assert all(r.ask(query) and all("zebra" not in t for _, t, _, _ in r.ask(query)) for r in readers)

    (corpus / "zoo.txt").write_text(
        "Judul: Kabar nomor 30\n\nzebra jerapah kuda nil di kebun binatang\n", encoding="utf-8"
    )
    make_corpus(corpus, 20, start=100)
    run = threading.Thread(
        target=index_paths, args=([corpus], writer, SlowEmbedder()), kwargs={"batch_chunks": 8}
    )
    run.start()
    during = []
    while run.is_alive():
        during += [r.ask(query) for r in readers]  # answers, never an error, while the writer works
    run.join()
    ended = time.monotonic()
    assert len(during) >= 6 and all(during)

    for r in readers:  # each sees the new article within seconds of the run's end, without a restart
        top = r.ask(query)[0]
        while "zebra" not in top[1] or top[3] is None:  # found by the vectors and by its keyword cache
            assert time.monotonic() - ended < 10, "a reader did not catch up within 10 s"
            time.sleep(0.2)
            top = r.ask(query)[0]
        assert top[2] is not None and top[2] > 0.99
        assert r.close() == 0


@pytest.fixture
def own_server(tmp_path: Path):
    """A server of this test's own, to stop and restart (same path, same port)."""
    server = ChromaServer(tmp_path / "db").start()
    yield server
    server.stop()


@pytest.mark.slow
def test_a_server_that_goes_away_mid_question_and_mid_index(tmp_path: Path, own_server: ChromaServer) -> None:
    corpus, target, writer = _indexed(tmp_path, own_server, 3)
    searcher = Searcher(RemoteStore(tmp_path / "r", target, sync_seconds=0), FakeEmbedder())
    assert searcher.search("harga beras", 3).passages
    own_server.stop()
    with pytest.raises(IndexUnavailable, match=f"{target.url}.*unreachable"):
        searcher.search("harga beras", 3)
    own_server.start()
    assert searcher.search("harga beras", 3).passages  # the same reader recovers by itself

    make_corpus(corpus, 30, start=200)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            index_paths([corpus], writer, SlowEmbedder(0.3), batch_chunks=8)
        except BaseException as e:
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    while writer.stats()["chunks"] < 3 * 4 + 16:  # two batches of the new articles committed
        assert thread.is_alive(), errors
        time.sleep(0.05)
    own_server.stop()
    thread.join()
    assert len(errors) == 1 and isinstance(errors[0], IndexUnavailable), errors
    own_server.start()
    report = index_paths([corpus], writer, FakeEmbedder())  # the next run converges
    assert report.unchanged >= 3 + 4
    snap = snapshot(writer)
    assert_consistent(snap)
    assert snap == clean_build(corpus, tmp_path, FakeEmbedder())


@pytest.mark.slow
def test_the_cli_names_an_unreachable_server_in_one_line(tmp_path: Path, monkeypatch) -> None:
    from chroma_server import free_port
    from click.testing import CliRunner

    from bot.cli.main import cli

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("KABAR_HOME", str(tmp_path))
    monkeypatch.setenv("KABAR_CHROMA_URL", url)
    result = CliRunner().invoke(cli, ["stats"], standalone_mode=False)
    assert isinstance(result.exception, IndexUnavailable)
    env = {**os.environ, "KABAR_HOME": str(tmp_path), "KABAR_CHROMA_URL": url, "PYTHONPATH": str(ROOT)}
    env["COLUMNS"] = "200"  # rich wraps long lines at the terminal width (80 without a terminal)
    proc = subprocess.run(
        [sys.executable, "-c", "from bot.cli.main import main; main()", "remove", "x"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "unreachable" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_server_settings(tmp_path: Path) -> None:
    from bot.settings import Settings, SettingsError

    s = Settings.load(
        None,
        chroma_url="https://chroma.example:8443",
        chroma_token="s3cret",
        chroma_headers='{"X-Team": "news"}',
        chroma_collection="berita",
    )
    target = s.chroma.target()
    assert (target.url, target.collection, target.headers) == (
        "https://chroma.example:8443",
        "berita",
        {"X-Team": "news", "Authorization": "Bearer s3cret"},
    )
    assert "s3cret" not in repr(target) and "s3cret" not in target.label
    proxy = Settings.load(
        None,
        chroma_url="http://h:1",
        chroma_token="t",
        chroma_token_header="X-Chroma-Token",
        chroma_headers="a=1; b = 2",
    )
    assert proxy.chroma.target().headers == {"a": "1", "b": "2", "X-Chroma-Token": "t"}
    assert Settings.load(None).chroma.target() is None  # unset: embedded, as before
    for bad, variable in [
        ({"chroma_url": "localhost:8000"}, "KABAR_CHROMA_URL"),
        ({"chroma_url": "http://h:1/chroma"}, "KABAR_CHROMA_URL"),
        ({"chroma_headers": "{not json"}, "KABAR_CHROMA_HEADERS"),
        ({"chroma_headers": "novalue"}, "KABAR_CHROMA_HEADERS"),
    ]:
        with pytest.raises(SettingsError, match=variable) as e:
            Settings.load(None, **bad)
        assert "not json" not in str(e.value) and "novalue" not in str(e.value)  # values are not echoed


def test_answers_from_the_server_equal_the_embedded_ones(tmp_path: Path, chroma_server) -> None:
    """The extractive engine over a RemoteStore: the same answers, quotes and citations as embedded."""
    from bot.app import engine_for
    from bot.settings import AnswerSettings

    target = chroma_server.target()
    writer = Store(tmp_path / "w", FakeEmbedder.name, FakeEmbedder.dim, target=target)
    local = Store(tmp_path / "local", FakeEmbedder.name, FakeEmbedder.dim)
    for store in (writer, local):
        index_paths([SEED], store, FakeEmbedder())
    lenient = AnswerSettings.model_construct(min_support=-1e9)  # the fake embedder is no calibrated model
    embedders = [FakeEmbedder(), FakeEmbedder()]
    engines = [
        engine_for(Searcher(s, e), answer=lenient)
        for s, e in zip((local, RemoteStore(tmp_path / "r", target, sync_seconds=0)), embedders, strict=True)
    ]
    for question in [
        "Apa yang dikatakan Kementerian Luar Negeri Korea Selatan kepada duta besar Rusia?",
        "What does Cheong Seong-chang expect Kim Jong Un to gain?",
    ]:
        a, b = (e.answer(question).to_json() for e in engines)
        for answer in (a, b):
            answer.pop("timings_ms")
        assert a == b and not a["refused"] and a["citations"]
        assert a["citations"][0]["path"].endswith(SEED.name)
    assert all(not e.calls for e in embedders)  # stored sentence vectors: no passage text embedded


@pytest.mark.slow
@pytest.mark.anyio
async def test_the_discord_bot_says_the_index_is_unavailable_and_recovers_alone(
    tmp_path: Path, own_server: ChromaServer
) -> None:
    from test_discord_cogs import content_of, mention_of_me, message

    from bot.app import Kabar, engine_for
    from bot.discordbot.client import build_bot
    from bot.settings import AnswerSettings, Settings

    target = own_server.target()
    writer = Store(tmp_path / "w", FakeEmbedder.name, FakeEmbedder.dim, target=target)
    index_paths([SEED], writer, FakeEmbedder())
    settings = Settings.load(
        None,
        home=tmp_path / "home",
        cache_dir=tmp_path / "cache",
        chroma_url=target.url,
        chroma_collection=target.collection,
        discord_cooldown_seconds=0,
        discord_open_threads=False,
    )
    store = RemoteStore(tmp_path / "home", target, FakeEmbedder.name, FakeEmbedder.dim, sync_seconds=0)
    engine = engine_for(
        Searcher(store, FakeEmbedder()), answer=AnswerSettings.model_construct(min_support=-1e9)
    )
    bot = build_bot(Kabar(settings, tmp_path / "home", FakeEmbedder(), store, engine), settings)  # type: ignore[arg-type]
    await bot.load_cogs()
    cog = bot.get_cog("Mentions")
    question = "<@999> What did South Korea's foreign ministry tell the Russian ambassador?"

    own_server.stop()
    down = message(question, mentions=(mention_of_me(),))
    await cog.on_message(down)
    assert content_of(down.reply.call_args) == "The index is unavailable right now, try again shortly."

    own_server.start()  # same path and port: the same bot answers again, no restart
    up = message(question, mentions=(mention_of_me(),))
    await cog.on_message(up)
    assert up.reply.call_args.kwargs["embeds"]


def test_kabar_index_and_ask_against_a_server(kabar_env: Path, chroma_server, monkeypatch) -> None:
    """The CLI end to end in server mode, with the real model: a writer indexes, a reader on another data
    dir (another machine) answers with the seed citation, `stats` reads the server."""
    from click.testing import CliRunner

    from bot.cli.main import cli

    target = chroma_server.target()
    monkeypatch.setenv("KABAR_CHROMA_URL", target.url)
    monkeypatch.setenv("KABAR_CHROMA_COLLECTION", target.collection)
    runner = CliRunner()
    indexed = runner.invoke(cli, ["index", "--json", str(SEED)])
    assert indexed.exit_code == 0, indexed.output
    assert json.loads(indexed.output)["index"]["data_dir"] == target.label

    monkeypatch.setenv("KABAR_HOME", str(kabar_env.parent / "reader-machine"))
    asked = runner.invoke(cli, ["ask", "--json", "What does Cheong Seong-chang expect Kim Jong Un to gain?"])
    assert asked.exit_code == 0, asked.output
    answer = json.loads(asked.output)
    assert not answer["refused"] and answer["citations"][0]["path"].endswith(SEED.name)
    assert "kapal selam" in " ".join(c["quote"] for c in answer["citations"])
    assert not list((kabar_env.parent / "reader-machine").rglob("*.sqlite"))  # a reader keeps no registry
    stats = json.loads(runner.invoke(cli, ["stats", "--json"]).output)
    assert (stats["articles"], stats["data_dir"]) == (1, target.label) and stats["chunks"] > 1


@pytest.mark.slow
def test_the_shipped_nginx_proxy_checks_the_token(tmp_path: Path, chroma_server) -> None:
    """deploy/nginx/kabar-chroma.conf.template in front of a real server: the token opens it, else 401."""
    import shutil
    import string
    from urllib.parse import urlsplit

    from chroma_server import free_port

    from index.chroma import ChromaTarget

    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.skip("nginx is not installed")
    port = free_port()
    template = (ROOT / "deploy" / "nginx" / "kabar-chroma.conf.template").read_text(encoding="utf-8")
    values = {"KABAR_CHROMA_TOKEN": "s3cret-token", "CHROMA_UPSTREAM": urlsplit(chroma_server.url).netloc}
    site = string.Template(template).safe_substitute(values, PROXY_PORT=f"127.0.0.1:{port}")
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")  # workers buffer bodies in tmp_path (root's, 0700)
        + f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\naccess_log off;\nclient_body_temp_path {tmp_path}/body;\n"
        f"proxy_temp_path {tmp_path}/proxy;\n"
        f"{site}\n}}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"])
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                import httpx

                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, "nginx did not start"
                time.sleep(0.1)
        corpus = tmp_path / "corpus"
        make_corpus(corpus, 2)
        good = ChromaTarget(url, {"Authorization": "Bearer s3cret-token"}, collection="proxied")
        writer = Store(tmp_path / "w", FakeEmbedder.name, FakeEmbedder.dim, target=good)
        index_paths([corpus], writer, FakeEmbedder())
        assert RemoteStore(tmp_path / "r", good).stats()["articles"] == 2
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            bad = ChromaTarget(url, headers, collection="proxied")
            refused = r"answered 401 Authorization Required \(check KABAR_CHROMA_TOKEN"
            with pytest.raises(IndexUnavailable, match=refused):
                RemoteStore(tmp_path / "r2", bad).stats()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.slow
def test_rebuild_registry_on_demand_and_rebuild_from_scratch(tmp_path: Path, chroma_server) -> None:
    from click.testing import CliRunner

    from bot.cli.main import cli
    from index.indexer import Indexer

    corpus = tmp_path / "corpus"
    make_corpus(corpus, 3)
    target = chroma_server.target()
    embedder = FakeEmbedder()
    indexer = Indexer(tmp_path / "home", embedder, ChunkParams(), target=target)
    indexer.sync([corpus])
    with indexer.writer() as w:  # a damaged registry: one article's rows lost
        (lost,) = w.store.find(str(corpus / "berita_0001.txt"))
        with w.store.db:
            w.store.db.execute("DELETE FROM chunks WHERE article_id = ?", (lost,))
            w.store.db.execute("DELETE FROM articles WHERE article_id = ?", (lost,))
        before = w.stats()["articles"]
    embedder.calls.clear()
    report, stats = indexer.sync([corpus], rebuild_registry=True)
    assert (before, stats["articles"], report.unchanged, embedder.calls) == (2, 3, 3, [])

    report, stats = indexer.sync([corpus], rebuild=True)  # the collection is deleted and built again
    assert (report.added, stats["articles"]) == (3, 3) and embedder.calls

    no_server = CliRunner().invoke(cli, ["index", "--rebuild-registry", str(corpus)])
    assert no_server.exit_code == 2 and "needs a Chroma server (KABAR_CHROMA_URL)" in no_server.output


@pytest.mark.slow
def test_the_watcher_retries_while_the_server_is_away(tmp_path: Path, own_server: ChromaServer) -> None:
    """`kabar watch` as a service: a change made while the server restarts is indexed once it is back."""
    from index.indexer import Indexer
    from index.watch import CorpusWatcher

    corpus = tmp_path / "corpus"
    make_corpus(corpus, 2)
    target = own_server.target()
    indexer = Indexer(tmp_path / "home", FakeEmbedder(), ChunkParams(), target=target)
    watcher = CorpusWatcher(
        [corpus],
        lambda: indexer.sync([corpus], prune=True)[0],
        debounce=0.3,
        retry=0.2,
        ignore=[tmp_path / "home"],
    )
    thread = threading.Thread(target=watcher.serve, daemon=True)
    thread.start()
    reader = RemoteStore(tmp_path / "reader", target)

    def articles() -> int:
        try:
            return reader.stats()["articles"]
        except IndexUnavailable:
            return -1

    try:
        deadline = time.monotonic() + 30
        while articles() != 2:
            assert time.monotonic() < deadline, "the first run did not finish"
            time.sleep(0.1)
        own_server.stop()
        write_article(corpus, 40)  # changed while the server is away: the run fails, and is retried
        time.sleep(1.5)
        own_server.start()
        deadline = time.monotonic() + 30
        while articles() != 3:
            assert time.monotonic() < deadline, "the watcher did not retry after the server came back"
            time.sleep(0.1)
    finally:
        watcher.stop()
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("where", "message"), [("tenant", r"Tenant \[nope\]"), ("database", r"Database \[nope\]")]
)
def test_a_missing_tenant_or_database_is_named(tmp_path: Path, chroma_server, where, message) -> None:
    from index.errors import KabarError

    reader = RemoteStore(tmp_path, chroma_server.target(**{where: "nope"}))
    with pytest.raises(KabarError, match=f"{message}.*KABAR_CHROMA_{where.upper()}=nope"):
        reader.require_nonempty()


WRITER = """
import sys, time
from pathlib import Path
from conftest import FakeEmbedder
from index.chroma import ChromaTarget
from index.ingest import index_paths
from index.store import Store
from index.types import ChunkParams

class Slow(FakeEmbedder):
    def embed_passages(self, texts):
        time.sleep(0.2)
        return super().embed_passages(texts)

target = ChromaTarget(sys.argv[3], collection=sys.argv[4])
store = Store(Path(sys.argv[2]), Slow.name, Slow.dim, ChunkParams(), target=target)
index_paths([Path(sys.argv[1])], store, Slow(), batch_chunks=8)
"""


@pytest.mark.slow
def test_kill_9_of_a_writer_process_converges(tmp_path: Path, chroma_server) -> None:
    import signal
    import sqlite3

    corpus, home = tmp_path / "corpus", tmp_path / "home"
    make_corpus(corpus, 30)
    target = chroma_server.target()
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(corpus), str(home), target.url, target.collection], env=env
    )
    registry = target.local_root(home) / "kabar.sqlite"
    deadline = time.monotonic() + 120
    committed = 0
    while committed < 24:  # three batches registered: kill it in the middle of the run
        assert proc.poll() is None and time.monotonic() < deadline, "the writer ended or stalled"
        if registry.exists():
            try:
                con = sqlite3.connect(f"file:{registry}?mode=ro", uri=True, timeout=5)
                committed = con.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
                con.close()
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = Store(home, FakeEmbedder.name, FakeEmbedder.dim, ChunkParams(), target=target)
    report = index_paths([corpus], store, FakeEmbedder())
    assert report.unchanged >= 6 and report.unchanged + report.added == 30
    snap = snapshot(store)
    assert_consistent(snap)
    assert snap == clean_build(corpus, tmp_path, FakeEmbedder())
