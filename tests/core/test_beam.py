import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
from apache_beam.testing.util import assert_that, equal_to

from core.beam import NAMESPACE_PREFIX, StageCounter, collect_stage_counts, pipeline_options, stage_diagnostics
from core.beam_config import BeamConfig


def test_direct_runner_never_uses_prism():
    opts = pipeline_options(BeamConfig())
    assert opts.view_as(StandardOptions).runner == "FnApiRunner"


def test_passthrough_overrides_config():
    cfg = BeamConfig(direct_num_workers=2)
    opts = pipeline_options(cfg, ["--direct_num_workers=3", "--runner=DataflowRunner", "--project=p"])
    assert opts.view_as(StandardOptions).runner == "DataflowRunner"
    assert opts.view_as(DirectOptions).direct_num_workers == 3
    assert opts.get_all_options()["project"] == "p"


class _KeepEven(beam.DoFn):
    def setup(self):
        self.counter = StageCounter("demo_stage")
        self.large = Metrics.counter(NAMESPACE_PREFIX + "demo_stage", "large")

    def process(self, n):
        self.counter.seen()
        if n % 2:
            self.counter.dropped("odd")
            return
        self.counter.kept()
        if n >= 6:
            self.large.inc()
        yield n


def test_stage_counts_from_a_real_pipeline():
    p = beam.Pipeline(options=pipeline_options(BeamConfig()))
    out = p | beam.Create(range(10)) | beam.ParDo(_KeepEven())
    assert_that(out, equal_to([0, 2, 4, 6, 8]))
    result = p.run()
    result.wait_until_finish()
    counts = collect_stage_counts(result)["demo_stage"]
    assert (counts.records_in, counts.records_out, counts.dropped) == (10, 5, {"odd": 5})
    counts.check()
    assert stage_diagnostics(result, "demo_stage") == {"large": 2}  # not part of the accounting
    assert stage_diagnostics(result, "other_stage") == {}
