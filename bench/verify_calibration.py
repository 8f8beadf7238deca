"""Measure citation verification (bot/verify.py) with the real embedder on the seed article.

Claims written by hand: paraphrases of an article sentence (Indonesian and English), each cited once to
its own chunk (should be kept) and once to every other chunk (should be dropped), plus distorted claims
cited to the right chunk (should be dropped). Prints score distributions and keep/drop rates per threshold.

    .venv/bin/python bench/verify_calibration.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bot.answer.verify import Verifier, VerifyParams  # noqa: E402
from bot.settings import Settings  # noqa: E402
from index.embed import load_embedder  # noqa: E402
from index.ingest import index_paths  # noqa: E402
from index.lang import detect_language  # noqa: E402
from index.store import Store  # noqa: E402

# (claim, a phrase of the article sentence that supports it)
SUPPORTED = [
    ("Korea Selatan memanggil duta besar Rusia pada 21 Oktober 2024.", "memanggil duta besar Rusia"),
    ("Sekitar 1.500 prajurit pasukan khusus Korea Utara sudah berada di Rusia.", "sekitar 1.500 prajurit"),
    ("Kim Jong Un dan Vladimir Putin menandatangani kesepakatan militer pada Juni.", "Pada Juni lalu"),
    ("Dmitry Peskov mengatakan Moskow akan melanjutkan kerja sama itu.", "Moskow akan melanjutkan"),
    (
        "Kim Hong-kyun menyebut kerja sama militer Rusia dan Korea Utara melanggar resolusi "
        "Dewan Keamanan PBB.",
        "melanggar resolusi",
    ),
    ("Menurut Zinoviev, kerja sama itu tidak ditujukan untuk merugikan keamanan Korea Selatan.", "merugikan"),
    ("Yoon Suk Yeol berbicara dengan Kepala NATO Mark Rutte.", "Yoon Suk Yeol berbicara"),
    ("David Lammy menyebut tindakan Rusia sembrono dan ilegal.", "sembrono"),
    (
        "Intelijen Korea Selatan merilis gambar satelit kedatangan tentara Korea Utara di Vladivostok.",
        "Vladivostok",
    ),
    ("South Korea summoned the Russian ambassador on 21 October 2024.", "memanggil duta besar Rusia"),
    ("About 1,500 North Korean special forces soldiers are already in Russia.", "sekitar 1.500 prajurit"),
    (
        "Kremlin spokesman Dmitry Peskov said Moscow would continue the cooperation.",
        "Moskow akan melanjutkan",
    ),
    (
        "Kim Hong-kyun said military cooperation between Russia and North Korea violates UN Security "
        "Council resolutions.",
        "melanggar resolusi",
    ),
    ("British Foreign Secretary David Lammy called Russia's actions reckless and illegal.", "sembrono"),
    ("NATO chief Mark Rutte said this could be a major escalation of the conflict.", "eskalasi besar"),
]
# distorted claims, cited to the chunk of the sentence they distort
DISTORTED = [
    ("Korea Selatan mengusir duta besar Rusia dari Seoul.", "memanggil duta besar Rusia"),
    ("Peskov mengatakan Moskow akan menghentikan kerja sama dengan Korea Utara.", "Moskow akan melanjutkan"),
    ("NATO telah mengonfirmasi pengiriman pasukan Korea Utara.", "NATO belum mengonfirmasi"),
    ("Korea Utara mengirim pasukan untuk membantu Ukraina.", "memanggil duta besar Rusia"),
    ("Pasukan itu tiba di Vladivostok dengan pesawat sipil.", "Vladivostok"),
    ("David Lammy memuji langkah Rusia sebagai tindakan yang bijaksana.", "sembrono"),
    ("Sekitar 15.000 prajurit sudah berada di Rusia.", "sekitar 1.500 prajurit"),
    ("South Korea expelled the Russian ambassador from Seoul.", "memanggil duta besar Rusia"),
    ("Peskov criticised North Korea for sending its troops.", "Moskow akan melanjutkan"),
    ("The troops flew to Vladivostok on a civilian plane.", "Vladivostok"),
    ("Lammy said that Russia's decision was wise.", "sembrono"),
    ("NATO has confirmed that North Korean troops were sent.", "NATO belum mengonfirmasi"),  # negation flip
]


def main() -> None:
    settings = Settings.load()
    embedder = load_embedder(None, settings.index.cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp), embedder.name, embedder.dim)
        index_paths([ROOT / "seeds"], store, embedder)
        ids, _ = store.all_chunks()
        passages = store.passages([(cid, 0.0) for cid in ids])
        store.close()
    cache: dict[str, np.ndarray] = {}

    def vectors(texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in cache]
        if missing:
            cache.update(zip(missing, embedder.embed_passages(missing), strict=True))
        return np.stack([cache[t] for t in texts])

    def home(phrase: str) -> list[int]:
        return [i + 1 for i, p in enumerate(passages) if phrase in p.text]

    # (claim, the chunks it cites, kind): a supported claim counts as kept if any own chunk keeps it
    cases: list[tuple[str, list[int], str]] = []
    for claim, phrase in SUPPORTED:
        own = home(phrase)
        assert own, phrase
        cases.append((claim, own, "supported"))
        cases += [(claim, [n], "wrong chunk") for n in range(1, len(passages) + 1) if n not in own]
    cases += [(claim, home(phrase), "distorted") for claim, phrase in DISTORTED]

    def kept(params: VerifyParams, claim: str, cited: list[int]) -> bool:
        verifier = Verifier(embedder, params, vectors=vectors)
        # the support check alone: attribution would move a wrong citation to the right chunk
        verdicts = (verifier.verify(f"{claim} [{n}]", passages, attribute=False) for n in cited)
        return any(v.claims[0].supported for v in verdicts)

    loose = VerifyParams(min_support=-10.0, min_cross_language_dense=-10.0)
    gated = [not kept(loose, claim, cited) for claim, cited, _ in cases]  # by names/numbers/negation alone
    print(f"{len(passages)} chunks, {len(SUPPORTED)} supported claims, {len(DISTORTED)} distorted claims")
    for lang, grid, field, what in (
        ("id", (1.3, 1.4, 1.5, 1.6, 1.7), "min_support", "lexical + cosine"),
        ("en", (0.82, 0.84, 0.86, 0.88, 0.9), "min_cross_language_dense", "cosine (other language)"),
    ):
        mine = [i for i, c in enumerate(cases) if (detect_language(c[0]) == "en") == (lang == "en")]
        kinds = ("supported", "wrong chunk", "distorted")
        total = {k: sum(cases[i][2] == k for i in mine) for k in kinds}
        ruled_out = {k: sum(gated[i] for i in mine if cases[i][2] == k) for k in kinds}
        print(
            f"\n{lang} claims, threshold on {what}; ruled out by names/numbers/negation alone: "
            + ", ".join(f"{k} {ruled_out[k]}/{total[k]}" for k in kinds)
        )
        print("threshold  kept(supported)  kept(wrong chunk)  kept(distorted)")
        for t in grid:
            params = VerifyParams(**{field: t})
            counts = {k: sum(kept(params, *cases[i][:2]) for i in mine if cases[i][2] == k) for k in kinds}
            cells = [f"{counts[k]}/{total[k]}".rjust(len(f"kept({k})")) for k in kinds]
            print(f"{t:9.2f}  " + "  ".join(cells))


if __name__ == "__main__":
    main()
