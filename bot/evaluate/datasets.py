"""Question sets for `kabar eval`: QA files and NTREX, their gold passages as an eval corpus.

A question set is JSON Lines `{qid, question, answers[], is_impossible, passage_id, passage}` (the format
of ../shared/data/qa), or the NTREX corpus (`sentences_en`/`text_id`), turned into English questions
over Indonesian documents. Every unique gold passage becomes one document of the eval index; a share of
them (`absent_share`, chosen by a hash of the passage) is held out, so their questions measure refusal
when the answer is not in the articles. A record with no passage is such a question too.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.clean import sanitize_id
from index.errors import KabarError


@dataclass
class EvalItem:
    """One question of a set, with where its gold passage sits in the eval index."""

    qid: str
    source: str  # the file it came from (metrics are reported per source)
    question: str
    answers: list[str]
    is_impossible: bool = False
    passage_id: str | None = None
    passage: str | None = None
    gold_id: str | None = None  # article id of the gold document in the index; None: absent

    @property
    def kind(self) -> str:
        """'answerable' (gold indexed, answer in it), 'impossible' (gold indexed, no answer), 'absent'."""
        if self.gold_id is None:
            return "absent"
        return "impossible" if self.is_impossible else "answerable"


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of a .jsonl or .jsonl.gz file; a bad line says where it is."""
    opener: Callable[..., Any] = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise KabarError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(record, dict):
                raise KabarError(f"{path}:{n}: expected a JSON object")
            yield n, record


def is_ntrex(path: Path) -> bool:
    """True when the file holds NTREX documents (English sentences and an Indonesian text)."""
    for _, record in read_jsonl(path):
        return "sentences_en" in record and "text_id" in record
    return False


def read_qa(path: Path, limit: int | None = None) -> list[EvalItem]:
    """Questions of one QA file (at most `limit`)."""
    items: list[EvalItem] = []
    for n, r in read_jsonl(path):
        if limit is not None and len(items) >= limit:
            break
        question = r.get("question")
        if not isinstance(question, str) or not question.strip():
            raise KabarError(f"{path}:{n}: record has no question")
        answers = r.get("answers") or []
        if not isinstance(answers, list):
            raise KabarError(f"{path}:{n}: `answers` must be a list")
        passage = r.get("passage") or None
        items.append(
            EvalItem(
                qid=str(r.get("qid", f"{path.stem}-{n}")),
                source=path.name,
                question=question.strip(),
                answers=[str(a) for a in answers if str(a).strip()],
                is_impossible=bool(r.get("is_impossible")),
                passage_id=str(r["passage_id"]) if passage and r.get("passage_id") else None,
                passage=passage,
            )
        )
    return items


def read_ntrex(path: Path, limit: int | None = None, per_doc: int = 2, min_words: int = 8) -> list[EvalItem]:
    """English sentences (the first `per_doc` of >= `min_words` words) asking for their Indonesian text."""
    items: list[EvalItem] = []
    for n, r in read_jsonl(path):
        if "sentences_en" not in r or "text_id" not in r:
            raise KabarError(f"{path}:{n}: an NTREX record needs `sentences_en` and `text_id`")
        doc_id = str(r.get("doc_id", f"ntrex-{n}"))
        sentences = [s for s in r["sentences_en"] if len(s.split()) >= min_words][:per_doc]
        for i, s in enumerate(sentences):
            if limit is not None and len(items) >= limit:
                return items
            items.append(EvalItem(f"{doc_id}-{i}", path.name, s, [], False, doc_id, r["text_id"]))
    return items


def _unit(key: str) -> float:
    """A stable number in [0, 1) for a key."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


def gold_corpus(items: Sequence[EvalItem], absent_share: float = 0.0) -> list[dict[str, str]]:
    """Corpus records of the unique gold passages (by text), minus the held-out share; sets `gold_id`.

    Two passage ids with the same text are one document (the first id names it), so a question is never
    counted as missing its passage because a twin of it was retrieved.
    """
    canonical: dict[str, str] = {}  # passage text -> doc id
    records: list[dict[str, str]] = []
    for it in items:
        it.gold_id = None
        if it.passage is None or it.passage_id is None:
            continue
        key = " ".join(it.passage.split())
        doc_id = canonical.get(key)
        if doc_id is None:
            doc_id = canonical[key] = it.passage_id
            if _unit(doc_id) >= absent_share:
                records.append({"doc_id": doc_id, "text": it.passage})
        if _unit(doc_id) >= absent_share:
            it.gold_id = sanitize_id(doc_id)
    return records


def write_jsonl(records: Iterable[dict[str, Any]], path: Path) -> None:
    """Write records as JSON Lines (atomically: a reused data dir never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)
