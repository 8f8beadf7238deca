"""A reader process keeps answering during a re-index and sees the new articles afterwards, no restart."""

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
from conftest import ROOT, FakeEmbedder
from synthetic import make_corpus

from index.ingest import index_paths
from index.store import Store

READER = """
import json, sys
from pathlib import Path
from conftest import FakeEmbedder
from index.search import Searcher
from index.store import Store

searcher = Searcher(Store(Path(sys.argv[1])), FakeEmbedder())
print("ready", flush=True)
for line in sys.stdin:
    passages = searcher.search(line.strip(), 3).passages
    print(json.dumps([[p.chunk_id, p.text, p.dense, p.keyword] for p in passages]), flush=True)
"""


class SlowEmbedder(FakeEmbedder):
    """Takes its time, so that the re-index is still running while the reader answers."""

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        time.sleep(0.15)
        return super().embed_passages(texts)


@pytest.mark.slow
def test_reader_process_answers_during_and_after_a_reindex(tmp_path: Path) -> None:
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    make_corpus(corpus, 4)
    writer = Store(data, FakeEmbedder.name, FakeEmbedder.dim)
    index_paths([corpus], writer, FakeEmbedder())
    script = tmp_path / "reader.py"
    script.write_text(READER, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    reader = subprocess.Popen(
        [sys.executable, str(script), str(data)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert reader.stdin is not None and reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"

    def ask(question: str) -> list:
        reader.stdin.write(question + "\n")  # type: ignore[union-attr]
        reader.stdin.flush()  # type: ignore[union-attr]
        return json.loads(reader.stdout.readline())  # type: ignore[union-attr]

    query = "Judul: Kabar nomor 30 zebra jerapah kuda nil di kebun binatang"  # one line: the same words
    before = ask(query)
    assert before and all("zebra" not in text for _, text, _, _ in before)

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
        during.append(ask(query))  # answers, never an error, while the writer works
    run.join()
    assert len(during) >= 3 and all(answer for answer in during)

    after = ask(query)
    assert "zebra" in after[0][1]
    assert after[0][2] is not None and after[0][2] > 0.99  # found by the vectors, not only by keywords
    assert after[0][3] is not None
    reader.stdin.close()
    assert reader.wait(timeout=30) == 0
