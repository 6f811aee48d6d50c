"""Exact dedup: documents with the same normalised text collapse to their best-ranked copy.

Documents are keyed by the SHA-256 of their normalised text and grouped per key with a
CombinePerKey (a GroupByKey whose combiner keeps only the running best document and a count,
so a key shared by millions of copies never materialises them in one worker).
"""

from __future__ import annotations

import apache_beam as beam

from dedup.config import DedupConfig
from dedup.ranking import duplicate_id_error, rank_key
from dedup.text import exact_key
from core.beam import StageCounter

STAGE = "dedup_exact"
DROP_REASON = "exact_duplicate"


def _key_by_text(doc: dict) -> tuple[bytes, dict]:
    rank_key(doc)  # fail early, with the document id, on a malformed record
    return exact_key(doc["text"]), doc


def _better(doc: dict | None, best: dict | None) -> dict | None:
    """The better-ranked of two documents; equal ranks mean one id twice, which is refused."""
    if doc is None or best is None:
        return best if doc is None else doc
    doc_rank, best_rank = rank_key(doc), rank_key(best)
    if doc_rank == best_rank:
        raise duplicate_id_error(doc["id"])
    return doc if doc_rank < best_rank else best


class _BestDocument(beam.CombineFn):
    """Accumulator: (number of documents seen, best-ranked document so far)."""

    def create_accumulator(self):
        return 0, None

    def add_input(self, accumulator, doc):
        count, best = accumulator
        return count + 1, _better(doc, best)

    def merge_accumulators(self, accumulators):
        count, best = 0, None
        for n, doc in accumulators:
            count, best = count + n, _better(doc, best)
        return count, best

    def extract_output(self, accumulator):
        return accumulator


class _KeepSurvivor(beam.DoFn):
    def setup(self):
        self.counter = StageCounter(STAGE)

    def process(self, element):
        _key, (count, best) = element
        self.counter.seen(count)
        self.counter.kept()
        if count > 1:
            self.counter.dropped(DROP_REASON, count - 1)
        yield {**best, "dup_cluster": best["id"]}


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
        yield {**doc, "dup_cluster": doc["id"]}


class ExactDedup(beam.PTransform):
    """Document dicts -> one survivor per normalised text, with `dup_cluster` = survivor id."""

    def __init__(self, cfg: DedupConfig):
        super().__init__()
        self.cfg = cfg

    def expand(self, docs):
        if not self.cfg.exact:
            return docs | "ExactDedupDisabled" >> beam.ParDo(KeepEveryDocument(STAGE))
        return (
            docs
            | "KeyByNormalizedText" >> beam.Map(_key_by_text)
            | "BestPerText" >> beam.CombinePerKey(_BestDocument())
            | "KeepSurvivor" >> beam.ParDo(_KeepSurvivor())
        )
