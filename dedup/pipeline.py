"""`Deduplicate`: exact then near dedup, with every removed document pointing at a kept one.

A copy removed by exact dedup names its exact survivor; when near dedup then removes that
survivor too, the copy's `duplicate_of` is moved on to the near cluster's survivor. So every
removed document names a document that is kept, and a kept document's `dup_count` equals the
number of removed documents that name it.
"""

from __future__ import annotations

import apache_beam as beam

from dedup.config import DedupConfig
from dedup.exact import ExactDedup
from dedup.near import NearDedup


def _to_kept_survivor(element):
    """(exact survivor id, {copies: [dropped copy], moved: [near survivor id]}) -> copies naming a kept id."""
    _key, joined = element
    moved = list(joined["moved"])
    for copy in joined["copies"]:
        yield {**copy, "duplicate_of": moved[0]} if moved else copy


class Deduplicate(beam.PTransform):
    """Document dicts -> survivors of exact and near dedup (stages `dedup_exact`, `dedup_near`).

    With `with_dropped`: (kept, dropped), every removed document labelled with `stage`,
    `reason` and `duplicate_of`, the id of the kept document it duplicates.
    """

    def __init__(self, cfg: DedupConfig, with_dropped: bool = False):
        super().__init__()
        self.cfg = cfg
        self.with_dropped = with_dropped

    def expand(self, docs):
        if not self.with_dropped:
            return docs | "ExactDedup" >> ExactDedup(self.cfg) | "NearDedup" >> NearDedup(self.cfg)
        kept, exact_dropped = docs | "ExactDedup" >> ExactDedup(self.cfg, with_dropped=True)
        kept, near_dropped = kept | "NearDedup" >> NearDedup(self.cfg, with_dropped=True)
        if self.cfg.exact and self.cfg.near:
            exact_dropped = (
                {"copies": exact_dropped | "BySurvivor" >> beam.Map(lambda row: (row["duplicate_of"], row)),
                 "moved": near_dropped | "ByRemovedId" >> beam.Map(lambda row: (row["id"], row["duplicate_of"]))}
                | "JoinNearSurvivor" >> beam.CoGroupByKey()
                | "ToKeptSurvivor" >> beam.FlatMap(_to_kept_survivor)
            )
        return kept, (exact_dropped, near_dropped) | "Dropped" >> beam.Flatten()
