"""One `kabar index` run with the fake embedder, in its own process, to be killed (tests/test_kill_9.py).

`python tests/index_process.py DATA CORPUS` prints "ready" when the run starts, then indexes in small
steps (8 chunks), each embedding call slowed a little so that a run lasts seconds, then prints "done".
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import FakeEmbedder  # noqa: E402

from index.indexer import Indexer  # noqa: E402
from index.store import quiet_chroma  # noqa: E402

quiet_chroma()
import chromadb  # noqa: E402, F401 - loaded before "ready": kills fall in the run, not in imports

BATCH = 8


class Paced(FakeEmbedder):
    """The fake embedder taking a few milliseconds per call, as a real one takes its time."""

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        time.sleep(0.004 + 0.0005 * len(texts))
        return super().embed_passages(texts)


def main() -> None:
    data, corpus = Path(sys.argv[1]), Path(sys.argv[2])
    print("ready", flush=True)
    Indexer(data, Paced(), batch_chunks=BATCH).sync([corpus])
    print("done", flush=True)


if __name__ == "__main__":
    main()
