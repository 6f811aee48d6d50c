"""Which duplicate survives: one total order over documents, used by exact and near dedup.

Best first: highest Reddit `score` (the karma signal WebText selects on), then earliest
`created_utc` (the original is usually posted first), then smallest `url`, then smallest `id`
(unique, so the order is total and the choice never depends on processing order). A document
without Reddit provenance (null `score` / `created_utc`: a page of a foreign WARC built without
`--urls`) ranks after every document that has it.
"""

from __future__ import annotations

import math

Rank = tuple  # (-score, created_utc, url, id): smaller is better; a null number is +inf


def _number(doc: dict, field: str) -> float | int:
    value = doc.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
        isinstance(value, float) and math.isnan(value)
    ):
        raise ValueError(f"dedup: document {doc.get('id')!r}: {field!r} must be a number, got {value!r}")
    return value


def _number_or_null(doc: dict, field: str) -> float | int | None:
    return None if doc.get(field) is None else _number(doc, field)


def _string(doc: dict, field: str) -> str:
    value = doc.get(field)
    if not isinstance(value, str):
        raise ValueError(f"dedup: document {doc.get('id')!r}: {field!r} must be a string, got {type(value).__name__}")
    return value


def rank_key(doc: dict) -> Rank:
    """Sort key of a document (smaller = kept); validates the fields dedup relies on."""
    doc_id = _string(doc, "id")
    if not doc_id:
        raise ValueError("dedup: document with an empty 'id'")
    _string(doc, "text")
    score, created = _number_or_null(doc, "score"), _number_or_null(doc, "created_utc")
    return (math.inf if score is None else -score, math.inf if created is None else created,
            _string(doc, "url"), doc_id)


def doc_id(rank: Rank) -> str:
    return rank[-1]


def duplicate_id_error(doc_key: str) -> ValueError:
    """Ids must be unique: with one id twice the survivor and the clusters would be ambiguous."""
    return ValueError(f"dedup: document id {doc_key!r} occurs more than once; ids must be unique")
