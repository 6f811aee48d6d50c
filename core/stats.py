"""Per-stage record accounting: records in, records out, records dropped by reason.

`StageCounts` must reconcile exactly: in == out + sum(dropped). Beam stages fill it from their
counters (`core.beam`); the others (crawl, tokenize) build it directly. Beam-free.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from pathlib import Path

from core.fsio import atomic_write_text

@dataclasses.dataclass
class StageCounts:
    stage: str
    records_in: int = 0
    records_out: int = 0
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def total_dropped(self) -> int:
        return sum(self.dropped.values())

    def reconciles(self) -> bool:
        return self.records_in == self.records_out + self.total_dropped

    def check(self) -> None:
        if not self.reconciles():
            raise AssertionError(
                f"stage {self.stage!r} does not reconcile: in={self.records_in} "
                f"out={self.records_out} dropped={self.total_dropped} {self.dropped}"
            )

    def to_json(self) -> dict:
        return {
            "in": self.records_in,
            "out": self.records_out,
            "dropped": dict(sorted(self.dropped.items())),
            "dropped_total": self.total_dropped,
            "reconciles": self.reconciles(),
        }

    @classmethod
    def from_json(cls, stage: str, data: dict) -> "StageCounts":
        return cls(stage, data["in"], data["out"], dict(data["dropped"]))


def counts_from_outcomes(stage: str, outcomes: Counter, kept_outcome: str = "ok") -> StageCounts:
    """StageCounts for a stage whose every record ends in one named outcome."""
    total = sum(outcomes.values())
    kept = outcomes.get(kept_outcome, 0)
    dropped = {k: v for k, v in outcomes.items() if k != kept_outcome and v}
    return StageCounts(stage, total, kept, dropped)


def counts_from_drops(chain: list[str], drops: dict[str, dict[str, int]], records_out: int) -> dict[str, StageCounts]:
    """The counts of a linear chain of stages from the pipeline's own output alone: what each
    stage dropped, by reason (e.g. the build's audit table), and how many records the last stage
    kept. A stage's `in` is its `out` plus its drops; its `out` is the next stage's `in`. No
    runner metrics are involved, so the numbers hold on any runner.

    ValueError for drops of a stage that is not in `chain` (they could not be placed)."""
    unknown = sorted(set(drops) - set(chain))
    if unknown:
        raise ValueError(f"drops of stage(s) {', '.join(unknown)} outside the chain {' -> '.join(chain)}")
    counts: dict[str, StageCounts] = {}
    flowing = records_out
    for stage in reversed(chain):
        dropped = {reason: n for reason, n in sorted(drops.get(stage, {}).items()) if n}
        counts[stage] = StageCounts(stage, flowing + sum(dropped.values()), flowing, dropped)
        flowing = counts[stage].records_in
    return {stage: counts[stage] for stage in chain}


def format_counts_table(counts: dict[str, StageCounts]) -> str:
    """A plain-text table of per-stage counts for the end-of-run summary."""
    lines = [f"{'stage':<14}{'in':>10}{'out':>10}{'dropped':>10}  by reason"]
    for sc in counts.values():
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(sc.dropped.items(), key=lambda kv: -kv[1]))
        lines.append(
            f"{sc.stage:<14}{sc.records_in:>10}{sc.records_out:>10}{sc.total_dropped:>10}  {reasons}"
        )
    return "\n".join(lines)


def write_stats_json(path: str | Path, counts: dict[str, StageCounts], extra: dict | None = None) -> None:
    payload = {"stages": {name: sc.to_json() for name, sc in counts.items()}}
    if extra:
        payload.update(extra)
    atomic_write_text(str(path), json.dumps(payload, indent=2, sort_keys=True) + "\n")


def stats_file(directory: str | Path, name: str, legacy_name: str | None = None) -> str:
    """The stats file `name` in the local `directory`, or `legacy_name` where only that exists: the
    name earlier versions wrote before the file got its leading `_` (Arrow's dataset discovery skips
    such files, so `pandas.read_parquet(directory)` reads the folder's table; docs/contracts.md)."""
    path = os.path.join(directory, name)
    if legacy_name is None or os.path.exists(path):
        return path
    legacy = os.path.join(directory, legacy_name)
    return legacy if os.path.exists(legacy) else path
