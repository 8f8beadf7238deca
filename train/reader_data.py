"""Training examples for Kabar's reader: FacQA and TyDi QA (Apache-2.0), plus unanswerables made from them."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from index.sentences import split_sentences

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "qa"
TRAIN_FILES = ("facqa_train.jsonl.gz", "tydiqa_id_train.jsonl.gz")  # the only sets shipped weights learn from
DEV_PERCENT = 8  # share of passages (by passage id) held out of the train files for tuning
_WORD = re.compile(r"\w+", re.UNICODE)
# Question words and fillers that say nothing about which passage a question is about.
_STOP = frozenset(
    """
    apa apakah siapa siapakah dimana dimanakah di mana kapan kapankah berapa berapakah bagaimana
    mengapa kenapa
    yang dan atau dari ke pada untuk dengan dalam adalah ini itu oleh sebagai tahun
    """.split()
)


@dataclass
class Example:
    """One question over one passage; start/end are character offsets of the answer, -1 when there is none."""

    qid: str
    question: str
    passage: str
    start: int
    end: int
    kind: str  # "answer", "cut" (answer sentence removed), "other" (another passage), "twisted" (question)

    @property
    def answerable(self) -> bool:
        """Whether the passage holds the answer."""
        return self.start >= 0


def read_jsonl(path: Path) -> list[dict]:
    """All records of a .jsonl or .jsonl.gz file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def is_dev(passage_id: str) -> bool:
    """Deterministic train-dev split by passage, so no dev passage is seen in training."""
    return int(hashlib.sha1(passage_id.encode()).hexdigest()[:8], 16) % 100 < DEV_PERCENT


def answer_offsets(row: dict) -> tuple[int, int] | None:
    """(start, end) of the first gold answer in the passage: given offsets, else found by search."""
    passage = row["passage"]
    for i, ans in enumerate(row.get("answers") or []):
        starts = row.get("answer_starts") or []
        if i < len(starts) and passage[starts[i] : starts[i] + len(ans)] == ans:
            return starts[i], starts[i] + len(ans)
        at = passage.find(ans)
        if at < 0:
            at = passage.casefold().find(
                ans.casefold()
            )  # casefold keeps lengths for this text, checked below
            if at >= 0 and passage[at : at + len(ans)].casefold() != ans.casefold():
                at = -1
        if at >= 0 and ans.strip():
            return at, at + len(ans)
    return None


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.casefold()) if w not in _STOP and len(w) > 2}


def _cut_answer_sentence(passage: str, start: int, end: int, answers: list[str]) -> str | None:
    """The passage without the sentence(s) holding [start, end), or None if too little would be left."""
    sents = split_sentences(passage)
    keep = [s for s in sents if s.end <= start or s.start >= end]
    if not keep or len(keep) == len(sents):
        return None
    text = " ".join(s.text for s in keep)
    if len(text) < 60 or any(a.casefold() in text.casefold() for a in answers if a.strip()):
        return None
    return text


def _other_passage(row: dict, pool: list[dict], rng: random.Random, tries: int = 30) -> dict | None:
    """A passage of another row that shares the most words with the question and lacks its answers."""
    q = _words(row["question"])
    best, best_score = None, -1
    for cand in rng.sample(pool, min(tries, len(pool))):
        if cand["passage_id"] == row["passage_id"]:
            continue
        text = cand["passage"].casefold()
        if any(a.casefold() in text for a in row["answers"] if a.strip()):
            continue
        score = len(q & _words(cand["passage"]))
        if score > best_score:
            best, best_score = cand, score
    return best


# Words a question can be twisted by into one its passage no longer answers (IDK-MRC's unanswerables are
# largely of this kind: "tertua" asked as "termuda", another year, another name). Both directions are used.
_OPPOSITES = dict(
    p.split("/")
    for p in """
    tertua/termuda terbesar/terkecil tertinggi/terendah terpanjang/terpendek terluas/tersempit
    terbanyak/tersedikit pertama/terakhir terdekat/terjauh terberat/teringan tercepat/terlama
    terkaya/termiskin terbaik/terburuk terdalam/terdangkal sebelum/sesudah awal/akhir utara/selatan
    timur/barat pria/wanita laki-laki/perempuan lahir/meninggal masuk/keluar naik/turun menang/kalah
    ibu/ayah anak/cucu kakak/adik
    """.split()
)
_OPPOSITES.update({b: a for a, b in list(_OPPOSITES.items())})
_NUMBER = re.compile(r"\b\d{1,4}\b")
_NAME = re.compile(r"(?<=\s)[A-Z][a-z]{2,}\b")


def twist_question(question: str, passage: str, names: list[str], rng: random.Random) -> str | None:
    """The question with one word changed so the passage stops answering it (an opposite, another number
    or another name, none of which the passage contains), or None if no such change is found."""
    text = passage.casefold()
    tries: list[tuple[int, int, str]] = []
    for m in re.finditer(r"[\w-]+", question):
        other = _OPPOSITES.get(m.group().casefold())
        if other and other not in text:
            tries.append((m.start(), m.end(), other))
    for m in _NUMBER.finditer(question):
        n = int(m.group())
        for _ in range(5):
            cand = str(n + rng.choice([-3, -2, -1, 1, 2, 3]) * (1 if n < 1000 else rng.choice([1, 2, 5])))
            if cand not in text and int(cand) > 0:
                tries.append((m.start(), m.end(), cand))
                break
    for m in _NAME.finditer(question):
        if m.group().casefold() in text:
            for _ in range(5):
                cand = rng.choice(names)
                if cand.casefold() not in text:
                    tries.append((m.start(), m.end(), cand))
                    break
    if not tries:
        return None
    a, b, new = rng.choice(tries)
    return question[:a] + new + question[b:]


def build_examples(
    rows: list[dict], seed: int, cut_share: float = 0.5, other_share: float = 0.25, twist_share: float = 0.0
) -> list[Example]:
    """Answerable examples for every row with a findable answer, plus unanswerable ones made from them."""
    rng = random.Random(seed)
    out: list[Example] = []
    names = sorted({m.group() for row in rows for m in _NAME.finditer(" " + row["question"])})
    for row in rows:
        span = answer_offsets(row)
        if span is None:
            continue
        out.append(Example(row["qid"], row["question"], row["passage"], span[0], span[1], "answer"))
        if rng.random() < cut_share:
            cut = _cut_answer_sentence(row["passage"], span[0], span[1], row["answers"])
            if cut is not None:
                out.append(Example(row["qid"] + ":cut", row["question"], cut, -1, -1, "cut"))
        if rng.random() < other_share:
            other = _other_passage(row, rows, rng)
            if other is not None:
                out.append(Example(row["qid"] + ":other", row["question"], other["passage"], -1, -1, "other"))
        # drawn last and only when asked, so the examples the shipped adapter was trained on stay the same
        if twist_share and rng.random() < twist_share:
            twisted = twist_question(row["question"], row["passage"], names, rng)
            if twisted is not None:
                out.append(Example(row["qid"] + ":twist", twisted, row["passage"], -1, -1, "twisted"))
    return out


def load_split(
    data_dir: Path = DATA, seed: int = 13, twist_share: float = 0.0
) -> tuple[list[Example], list[Example]]:
    """(train, dev) examples from the Apache-2.0 train files, split by passage id."""
    train_rows: list[dict] = []
    dev_rows: list[dict] = []
    for name in TRAIN_FILES:
        for row in read_jsonl(data_dir / name):
            (dev_rows if is_dev(row["passage_id"]) else train_rows).append(row)
    return (
        build_examples(train_rows, seed, twist_share=twist_share),
        build_examples(dev_rows, seed + 1, twist_share=twist_share),
    )


if __name__ == "__main__":
    from collections import Counter

    train, dev = load_split()
    print("train", len(train), Counter(e.kind for e in train))
    print("dev", len(dev), Counter(e.kind for e in dev))
    for e in train[:6]:
        print(
            e.kind, e.question, "|", e.passage[e.start : e.end] if e.answerable else "-", "|", e.passage[:120]
        )
