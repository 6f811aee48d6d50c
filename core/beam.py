"""Beam glue shared by the Beam stages: pipeline options and per-stage counters.

Only modules that build or run Beam pipelines import this (importing Beam costs seconds);
everything else in `core` is Beam-free. Every stage counts with Beam metrics under the
namespace `webtext.<stage>` using the counter names `in`, `out` and `drop.<reason>` (for UIs and
as a cross-check: the counts a command writes come from its pipeline's own output, such as the
build's audit table or harvest's tallies, because some runners report no metrics; see
`reported_stage_counts`); `collect_stage_counts` reads the committed counters back into `StageCounts`; any other counter
name in a stage's namespace is a diagnostic, read with `stage_diagnostics`. A stage drops a
record with `StageCounter.drop`, which counts it and hands it, labelled with stage and reason,
to the stage's `DROPPED` output: the build writes those to its audit table (`DIR/dropped/`).
"""

from __future__ import annotations

from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pvalue import TaggedOutput

from core.beam_config import BeamConfig
from core.stats import StageCounts

NAMESPACE_PREFIX = "webtext."
IN, OUT, DROP_PREFIX = "in", "out", "drop."
DROPPED = "dropped"  # the tagged output that carries every record a stage drops
KEPT = "kept"  # the main output's name beside it: `ParDo(...).with_outputs(DROPPED, main=KEPT)`

# Beam's DirectRunner first tries PrismRunner, which downloads a Go binary from the internet
# before falling back. Locally we go straight to the Python FnApiRunner that DirectRunner
# would fall back to: same semantics, honours the direct_* options, never touches the network.
LOCAL_RUNNER = "FnApiRunner"


def pipeline_options(cfg: BeamConfig, passthrough: list[str] = ()) -> PipelineOptions:
    """Options for `beam.Pipeline`; arguments given after `--` override the config. Call it
    before touching any input path: it also hands the options to Beam's FileSystems."""
    runner = cfg.runner
    for arg in passthrough:
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
    local = runner.lower() in ("directrunner", "direct", "fnapirunner")
    args = [f"--runner={LOCAL_RUNNER if local else runner}"]
    if local:
        args += [
            f"--direct_num_workers={cfg.direct_num_workers}",
            f"--direct_running_mode={cfg.direct_running_mode}",
        ]
    args += list(cfg.options) + [a for a in passthrough if not a.startswith("--runner=")]
    options = PipelineOptions(args)
    # Beam's FileSystems read their options (S3 endpoint and credentials, GCP project) only
    # from here: set before the stage lists or opens any input.
    FileSystems.set_options(options)
    return options


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

    def drop(self, reason: str, record: dict, **fields) -> TaggedOutput:
        """Count `record` as dropped for `reason` and return it for the `DROPPED` output, labelled
        with `stage`, `reason` and `fields` (e.g. `duplicate_of`): one audit row per counted drop."""
        self.dropped(reason)
        return TaggedOutput(DROPPED, {**record, "stage": self.stage, "reason": reason, **fields})


def _webtext_counters(result):
    """(stage, counter name, value) of every committed `webtext.*` counter of a finished pipeline.

    The one place that reads Beam metrics; runners that do not commit report attempted values.
    """
    for counter in result.metrics().query(MetricsFilter())["counters"]:
        namespace = counter.key.metric.namespace
        if namespace.startswith(NAMESPACE_PREFIX):
            value = counter.committed if counter.committed is not None else counter.attempted
            yield namespace[len(NAMESPACE_PREFIX):], counter.key.metric.name, value


def collect_stage_counts(result) -> dict[str, StageCounts]:
    """Read the committed `webtext.*` record counters (in, out, drop.*) of a finished Beam pipeline."""
    counts: dict[str, StageCounts] = {}
    for stage, name, value in _webtext_counters(result):
        if name == IN:
            counts.setdefault(stage, StageCounts(stage)).records_in += value
        elif name == OUT:
            counts.setdefault(stage, StageCounts(stage)).records_out += value
        elif name.startswith(DROP_PREFIX):
            dropped = counts.setdefault(stage, StageCounts(stage)).dropped
            reason = name[len(DROP_PREFIX):]
            dropped[reason] = dropped.get(reason, 0) + value
    return counts


def reported_stage_counts(result) -> dict[str, StageCounts] | None:
    """The stage counts the runner reported through Beam metrics, or None where it reported none:
    its result has no metrics, or not one `webtext.*` counter came back. Commands whose counts
    come from the pipeline's own output use this only as a cross-check; commands that have no
    such output must fail when it is None, never write zeros as if true."""
    try:
        counts = collect_stage_counts(result)
    except NotImplementedError:
        return None
    return counts or None


def stage_diagnostics(result, stage: str) -> dict[str, int]:
    """A stage's other counters (not record accounting), by name: e.g. dedup_near's candidate pairs.

    Count them with `Metrics.counter(NAMESPACE_PREFIX + stage, name)`; any name but `in`, `out`
    and `drop.*` is a diagnostic.
    """
    totals: dict[str, int] = {}
    for counter_stage, name, value in _webtext_counters(result):
        if counter_stage == stage and name not in (IN, OUT) and not name.startswith(DROP_PREFIX):
            totals[name] = totals.get(name, 0) + value
    return dict(sorted(totals.items()))
