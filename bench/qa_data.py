"""Read the question sets of ../shared/data (qa/*.jsonl[.gz] and the NTREX cross-lingual corpus)."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def read_jsonl(path: Path) -> Iterator[dict]:
    """Records of a .jsonl or .jsonl.gz file."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def ntrex_questions(path: Path, per_doc: int = 2) -> Iterator[dict]:
    """English sentences as questions, their Indonesian document as the gold passage."""
    for rec in read_jsonl(path):
        sentences = [s for s in rec["sentences_en"] if len(s.split()) >= 8][:per_doc]
        for i, s in enumerate(sentences):
            yield {
                "qid": f"{rec['doc_id']}-{i}",
                "dataset": "ntrex",
                "question": s,
                "answers": [],
                "is_impossible": False,
                "passage_id": rec["doc_id"],
                "passage": rec["text_id"],
            }


def half(passage_id: str) -> int:
    """A stable 0/1 split of passages (which half gets indexed)."""
    return hashlib.sha256(passage_id.encode()).digest()[0] & 1
