"""Per-stage record accounting: records in, records out, records dropped by reason.

Every stage counts with Beam metrics under the namespace `webtext.<stage>` using the counter
names `in`, `out` and `drop.<reason>`. After the pipeline finishes, `collect_stage_counts`
reads the committed counters back into `StageCounts`, which must reconcile exactly:
in == out + sum(dropped). Non-Beam stages (crawl, tokenize) build `StageCounts` directly.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter

NAMESPACE_PREFIX = "webtext."
IN, OUT, DROP_PREFIX = "in", "out", "drop."


class StageCounter:
    """Beam counters of one stage; create it in a DoFn/transform and call from `process`."""

    def __init__(self, stage: str):
        self.stage = stage
        self._namespace = NAMESPACE_PREFIX + stage
        self._in = Metrics.counter(self._namespace, IN)
        self._out = Metrics.counter(self._namespace, OUT)
        self._drops: dict[str, object] = {}

    def seen(self, n: int = 1) -> None:
        self._in.inc(n)

    def kept(self, n: int = 1) -> None:
        self._out.inc(n)

    def dropped(self, reason: str, n: int = 1) -> None:
        counter = self._drops.get(reason)
        if counter is None:
            counter = self._drops[reason] = Metrics.counter(self._namespace, DROP_PREFIX + reason)
        counter.inc(n)


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


def collect_stage_counts(result) -> dict[str, StageCounts]:
    """Read the committed `webtext.*` counters of a finished Beam pipeline."""
    counts: dict[str, StageCounts] = {}
    query = result.metrics().query(MetricsFilter())
    for res in query["counters"]:
        namespace = res.key.metric.namespace
        if not namespace.startswith(NAMESPACE_PREFIX):
            continue
        stage = namespace[len(NAMESPACE_PREFIX):]
        value = res.committed if res.committed is not None else res.attempted
        sc = counts.setdefault(stage, StageCounts(stage))
        name = res.key.metric.name
        if name == IN:
            sc.records_in += value
        elif name == OUT:
            sc.records_out += value
        elif name.startswith(DROP_PREFIX):
            reason = name[len(DROP_PREFIX):]
            sc.dropped[reason] = sc.dropped.get(reason, 0) + value
    return counts


def counts_from_outcomes(stage: str, outcomes: Counter, kept_outcome: str = "ok") -> StageCounts:
    """StageCounts for a stage whose every record ends in one named outcome."""
    total = sum(outcomes.values())
    kept = outcomes.get(kept_outcome, 0)
    dropped = {k: v for k, v in outcomes.items() if k != kept_outcome and v}
    return StageCounts(stage, total, kept, dropped)


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
    from webtext.fsio import atomic_write_text

    payload = {"stages": {name: sc.to_json() for name, sc in counts.items()}}
    if extra:
        payload.update(extra)
    atomic_write_text(str(path), json.dumps(payload, indent=2, sort_keys=True) + "\n")
