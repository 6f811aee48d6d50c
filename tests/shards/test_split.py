"""The deterministic train/val/test split and shard assignment."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from pydantic import ValidationError

from shards.config import BuildConfig
from shards.split import AssignShards, AssignSplits, doc_id, num_shards, shard_index, split_hash
from core.beam import pipeline_options
from core.beam_config import BeamConfig


def _docs(n: int) -> list[dict]:
    return [{"id": doc_id(f"site.example/page/{i}")} for i in range(n)]


def _expected(docs, cfg: BuildConfig) -> list[tuple[str, str]]:
    """The documented rule, computed directly: hash thresholds plus the smallest-hash minimums."""
    ranked = sorted(docs, key=lambda d: split_hash(d["id"], cfg.split_salt))
    forced = len(docs) > cfg.min_val_docs + cfg.min_test_docs
    val = {d["id"] for d in ranked if split_hash(d["id"], cfg.split_salt) < cfg.val_fraction}
    if forced:
        val |= {d["id"] for d in ranked[:cfg.min_val_docs]}
    rest = [d for d in ranked if d["id"] not in val]
    test = {d["id"] for d in rest if split_hash(d["id"], cfg.split_salt) < cfg.val_fraction + cfg.test_fraction}
    if forced:
        test |= {d["id"] for d in rest[:cfg.min_test_docs]}
    return [("val" if d["id"] in val else "test" if d["id"] in test else "train", d["id"]) for d in docs]


def test_doc_id_is_stable():
    assert doc_id("example.test/a") == doc_id("example.test/a")
    assert len(doc_id("example.test/a")) == 16 and doc_id("example.test/a") != doc_id("example.test/b")
    assert 0 <= split_hash(doc_id("x"), "salt") < 1


CASES = [
    (5, BuildConfig()),  # tiny corpus: one val and one test document by the minimums
    (2, BuildConfig()),  # not more docs than the minimums: pure hash rule
    (80, BuildConfig(val_fraction=0.1, test_fraction=0.2, min_val_docs=12, min_test_docs=2)),  # both rules
]


def test_split_rule():
    with beam.Pipeline(options=pipeline_options(BeamConfig())) as p:  # one pipeline, one branch per case: Beam start-up is the slow part
        for case, (n, cfg) in enumerate(CASES):
            docs = _docs(n)
            split = p | f"Docs{case}" >> beam.Create(docs) | f"Split{case}" >> AssignSplits(cfg)
            assert_that(split | f"Ids{case}" >> beam.Map(lambda kv: (kv[0], kv[1]["id"])),
                        equal_to(_expected(docs, cfg)), label=f"Check{case}")


def test_expected_split_sizes():
    tiny = [s for s, _ in _expected(_docs(5), BuildConfig())]
    assert sorted(tiny) == ["test", "train", "train", "train", "val"]
    mixed = [s for s, _ in _expected(_docs(80), CASES[2][1])]
    assert mixed.count("val") == 12 and mixed.count("test") > 2  # minimum forced, hash rule fills test
    assert {s for s, _ in _expected(_docs(2), BuildConfig(val_fraction=0, test_fraction=0))} == {"train"}
    big = [s for s, _ in _expected(_docs(4000), BuildConfig(val_fraction=0.1, test_fraction=0.2))]
    assert 0.08 < big.count("val") / 4000 < 0.12 and 0.17 < big.count("test") / 4000 < 0.23


def test_split_survives_corpus_growth():
    """A document's split does not change when other documents are added."""
    cfg = BuildConfig(val_fraction=0.1, test_fraction=0.1)
    small, large = dict((i, s) for s, i in _expected(_docs(200), cfg)), dict((i, s) for s, i in _expected(_docs(400), cfg))
    assert all(large[i] == s for i, s in small.items())


def test_shards():
    assert num_shards(0, 4) == 1 and num_shards(4, 4) == 1 and num_shards(5, 4) == 2
    assert all(0 <= shard_index(d["id"], 3) < 3 for d in _docs(50))
    docs = [("train", d) for d in _docs(10)] + [("val", d) for d in _docs(2)]
    with beam.Pipeline(options=pipeline_options(BeamConfig())) as p:
        keys = p | beam.Create(docs) | AssignShards(4) | beam.Keys() | beam.Map(lambda k: (k[0], k[2]))
        assert_that(keys | beam.Distinct(), equal_to([("train", 3), ("val", 1)]))


@pytest.mark.parametrize("bad", [
    {"val_fraction": 0.6, "test_fraction": 0.4},
    {"val_fraction": -0.1},
    {"docs_per_shard": 0},
    {"compression_level": 30},
    {"min_val_docs": -1},
    {"shard_size": 3},
])
def test_bad_config_is_rejected(bad):
    with pytest.raises(ValidationError):
        BuildConfig(**bad)
