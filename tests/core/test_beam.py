import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
from apache_beam.testing.util import assert_that, equal_to

from core.beam import pipeline_options
from webtext.config import load_config
from core.beam import StageCounter, collect_stage_counts


def test_direct_runner_never_uses_prism():
    opts = pipeline_options(load_config().beam)
    assert opts.view_as(StandardOptions).runner == "FnApiRunner"


def test_passthrough_overrides_config():
    cfg = load_config(overrides=["beam.direct_num_workers=2"]).beam
    opts = pipeline_options(cfg, ["--direct_num_workers=3", "--runner=DataflowRunner", "--project=p"])
    assert opts.view_as(StandardOptions).runner == "DataflowRunner"
    assert opts.view_as(DirectOptions).direct_num_workers == 3
    assert opts.get_all_options()["project"] == "p"


class _KeepEven(beam.DoFn):
    def setup(self):
        self.counter = StageCounter("demo_stage")

    def process(self, n):
        self.counter.seen()
        if n % 2:
            self.counter.dropped("odd")
            return
        self.counter.kept()
        yield n


def test_stage_counts_from_a_real_pipeline():
    p = beam.Pipeline(options=pipeline_options(load_config().beam))
    out = p | beam.Create(range(10)) | beam.ParDo(_KeepEven())
    assert_that(out, equal_to([0, 2, 4, 6, 8]))
    result = p.run()
    result.wait_until_finish()
    counts = collect_stage_counts(result)["demo_stage"]
    assert (counts.records_in, counts.records_out, counts.dropped) == (10, 5, {"odd": 5})
    counts.check()
