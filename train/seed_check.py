"""English and Indonesian questions written over the seed article: the sentence picked, and refusals."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.answer.reader import ADAPTER, Reader  # noqa: E402
from index.sentences import split_sentences  # noqa: E402

SEED = Path(__file__).resolve().parents[1] / "seeds" / "000_e425e8bd6ae908eb.txt"
# (question, a string the answering sentence holds; None = the article does not answer it)
QUESTIONS = [
    ("Who is Russia's ambassador to South Korea?", "Georgiy Zinoviev"),
    ("What does Cheong Seong-chang expect Kim Jong Un to gain?", "teknologi militer"),
    ("How many North Korean special forces soldiers are already in Russia?", "1.500 prajurit"),
    ("Who is the spokesman of the Kremlin?", "Dmitry Peskov"),
    ("Where did the North Korean troops arrive, according to satellite images?", "Vladivostok"),
    ("Which institute does Cheong Seong-chang work for?", "Institut Sejong"),
    ("How many containers of ammunition has North Korea sent to Russia?", "13.000 kontainer"),
    ("Who is the head of NATO?", "Mark Rutte"),
    ("Which country's president is scheduled to visit Seoul this week?", "Andrzej Duda"),
    (
        "How many soldiers is North Korea training to support Russia, according to Zelenskyy?",
        "10.000 tentara",
    ),
    ("Siapa duta besar Rusia untuk Korea Selatan?", "Georgiy Zinoviev"),
    ("Apa yang ingin diperoleh Kim Jong Un dari Rusia?", "teknologi militer"),
    ("Siapa juru bicara Kremlin?", "Dmitry Peskov"),
    ("Kapan Korea Utara mengirim pasukan khususnya ke Rusia?", "8 hingga 13 Oktober"),
    ("Siapa Menteri Luar Negeri Inggris?", "David Lammy"),
    ("What did Cheong Seong-chang say about Japan's defence budget?", None),
    ("How old is the Russian ambassador?", None),
    ("What is the boiling point of liquid nitrogen?", None),
    ("Berapa harga tiket kereta cepat Jakarta-Bandung?", None),
    ("Berapa anggaran pertahanan Jepang?", None),
    ("Who won the 2022 World Cup?", None),
]


def main() -> None:
    """Print, per question, the picked sentence, the span and the margin; then the tallies."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--adapter", type=Path, default=ADAPTER)
    ap.add_argument("--cache-dir", type=Path, default=Path("/work/cache/kabar"))
    ap.add_argument("--threshold", type=float, default=None)
    args = ap.parse_args()
    reader = Reader.load(args.cache_dir, args.adapter)
    thr = reader.threshold if args.threshold is None else args.threshold
    groups: list[list[str]] = [[]]
    for s in split_sentences(SEED.read_text(encoding="utf-8")):  # ~600-character chunks, as indexed
        if sum(len(t) + 1 for t in groups[-1]) >= 600:
            groups.append([])
        groups[-1].append(s.text)
    passages = [(t, [(s.start, s.end) for s in split_sentences(t)]) for t in (" ".join(g) for g in groups)]
    hit = ans = refused_un = un = refused_ans = 0
    for q, want in QUESTIONS:
        readings = reader.read(q, passages)
        i = max(range(len(readings)), key=lambda k: readings[k].margin)
        r, (text, sents) = readings[i], passages[i]
        sent = text[slice(*sents[r.sentence])]
        refused = r.margin < thr
        if want is None:
            un += 1
            refused_un += refused
        else:
            ans += 1
            hit += want in sent
            refused_ans += refused
        print(
            json.dumps(
                {
                    "q": q,
                    "want": want,
                    "span": text[slice(*r.span)],
                    "margin": round(r.margin, 2),
                    "refused": refused,
                    "ok": (want in sent) if want else refused,
                },
                ensure_ascii=False,
            )
        )
    print(
        f"threshold {thr:.2f}: answer sentence {hit}/{ans}, answerable refused {refused_ans}/{ans}, "
        f"unanswerable refused {refused_un}/{un}"
    )


if __name__ == "__main__":
    main()
