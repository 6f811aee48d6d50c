"""Exact dedup: documents with the same normalised text collapse to their best-ranked copy.

Documents are keyed by the SHA-256 of their normalised text and grouped per key. Each group is
iterated twice and never copied into a list (runners that page grouped values in, such as
Dataflow, then hold one copy at a time even for a text shared by millions): once for its
best-ranked document, once to drop every other copy as `exact_duplicate` of it, on the
`DROPPED` output. The survivor gets `dup_cluster` = its id and adds the copies (and what they
had absorbed before) to its `dup_count`.
"""

from __future__ import annotations

import apache_beam as beam

from dedup.config import DedupConfig
from dedup.ranking import duplicate_id_error, rank_key
from dedup.text import exact_key
from core.beam import DROPPED, KEPT, StageCounter

STAGE = "dedup_exact"
DROP_REASON = "exact_duplicate"


def removed_before(doc: dict) -> int:
    """Duplicates a document already absorbed (`dup_count`; 0 for one that never met dedup)."""
    return doc.get("dup_count") or 0


def survivor(doc: dict, absorbed: int = 0) -> dict:
    """`doc` kept as its cluster's survivor, which also absorbed `absorbed` removed documents."""
    return {**doc, "dup_cluster": doc["id"], "dup_count": removed_before(doc) + absorbed}


def _key_by_text(doc: dict) -> tuple[bytes, dict]:
    rank_key(doc)  # fail early, with the document id, on a malformed record
    return exact_key(doc["text"]), doc


class _KeepBestCopy(beam.DoFn):
    """(text key, copies) -> the best-ranked copy kept, every other on `DROPPED` with `duplicate_of`."""

    def setup(self):
        self.counter = StageCounter(STAGE)

    def process(self, element):
        _key, copies = element
        best, best_rank, count, removed = None, None, 0, 0
        for doc in copies:
            rank = rank_key(doc)
            if rank == best_rank:  # equal ranks: one id twice, so the choice would be arbitrary
                raise duplicate_id_error(doc["id"])
            if best is None or rank < best_rank:
                best, best_rank = doc, rank
            count += 1
            removed += 1 + removed_before(doc)
        self.counter.seen(count)
        self.counter.kept()
        yield survivor(best, removed - 1 - removed_before(best))
        if count > 1:
            for doc in copies:
                if rank_key(doc) != best_rank:
                    yield self.counter.drop(DROP_REASON, doc, duplicate_of=best["id"])


class KeepEveryDocument(beam.DoFn):
    """Disabled stage: every document is kept as its own cluster, and counted as such."""

    def __init__(self, stage: str):
        self.stage = stage

    def setup(self):
        self.counter = StageCounter(self.stage)

    def process(self, doc):
        rank_key(doc)
        self.counter.seen()
        self.counter.kept()
        yield survivor(doc)


class ExactDedup(beam.PTransform):
    """Document dicts -> one survivor per normalised text, with `dup_cluster` = survivor id.

    With `with_dropped`: (kept, dropped), each dropped copy labelled with `stage`, `reason` and
    `duplicate_of` (its survivor's id)."""

    def __init__(self, cfg: DedupConfig, with_dropped: bool = False):
        super().__init__()
        self.cfg = cfg
        self.with_dropped = with_dropped

    def expand(self, docs):
        if not self.cfg.exact:
            kept = docs | "ExactDedupDisabled" >> beam.ParDo(KeepEveryDocument(STAGE))
            return (kept, docs.pipeline | "NothingDropped" >> beam.Create([])) if self.with_dropped else kept
        outputs = (
            docs
            | "KeyByNormalizedText" >> beam.Map(_key_by_text)
            | "GroupByText" >> beam.GroupByKey()
            | "KeepBestCopy" >> beam.ParDo(_KeepBestCopy()).with_outputs(DROPPED, main=KEPT)
        )
        return (outputs[KEPT], outputs[DROPPED]) if self.with_dropped else outputs[KEPT]
