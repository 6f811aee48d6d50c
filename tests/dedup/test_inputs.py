"""Broken and unusual input: malformed documents, duplicate ids, disabled stages, huge buckets."""

import itertools

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from dedup.config import DedupConfig
from dedup.exact import ExactDedup
from dedup.near import NearDedup
from dedup.near import _BucketPairs
from dedup.ranking import rank_key
from core.beam import pipeline_options
from core.beam_config import BeamConfig
from core.beam import collect_stage_counts


def doc(doc_id, text="some text here", **fields):
    return {"id": doc_id, "text": text, "score": 1, "created_utc": 0, "url": f"http://x.example/{doc_id}", **fields}


def _run(docs, transform):
    with beam.Pipeline(options=pipeline_options(BeamConfig())) as p:
        _ = p | beam.Create(docs) | transform


@pytest.mark.parametrize(
    "bad, message",
    [
        (doc("a", score="7"), r"document 'a': 'score' must be a number, got '7'"),
        (doc("a", score=float("nan")), r"'score' must be a number, got nan"),
        (doc("a", created_utc="yesterday"), r"'created_utc' must be a number"),
        (doc("a", text=None), r"document 'a': 'text' must be a string, got NoneType"),
        (doc("a", url=None), r"'url' must be a string"),
        ({"text": "x", "score": 1, "created_utc": 0, "url": "u"}, r"document None: 'id' must be a string"),
        (doc(""), r"empty 'id'"),
    ],
)
def test_malformed_documents_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        rank_key(bad)


def test_documents_without_provenance_rank_after_those_with_it():
    """Pages of a foreign WARC built without --urls have null score and created_utc."""
    docs = [doc("none", score=None, created_utc=None), doc("low", score=-5), doc("no_time", created_utc=None),
            doc("timed", created_utc=0)]
    assert [rank_key(d)[-1] for d in sorted(docs, key=rank_key)] == ["timed", "no_time", "low", "none"]


def test_malformed_document_fails_the_pipeline_with_its_id():
    with pytest.raises(Exception, match=r"document 'broken': 'score' must be a number"):
        _run([doc("fine"), doc("broken", score="high")], ExactDedup(DedupConfig()))


@pytest.mark.parametrize("transform", [ExactDedup, NearDedup])
def test_duplicate_ids_are_refused(transform):
    """Same text (exact dedup would otherwise pick one copy arbitrarily) or different texts."""
    twins = [doc("same", "first text of a few words"), doc("same", "another text with other words"),
             doc("same", "first text of a few words")]
    with pytest.raises(Exception, match=r"document id 'same' occurs more than once"):
        _run(twins[:2] if transform is NearDedup else twins, transform(DedupConfig(cc_rounds=1)))


def test_disabled_stages_keep_and_count_everything():
    cfg = DedupConfig(exact=False, near=False)
    docs = [doc("a", "same words"), doc("b", "same words"), doc("c", "Same words!")]
    with beam.Pipeline(options=pipeline_options(BeamConfig())) as p:
        out = p | beam.Create(docs) | ExactDedup(cfg) | NearDedup(cfg) | beam.Map(lambda d: (d["id"], d["dup_cluster"]))
        assert_that(out, equal_to([("a", "a"), ("b", "b"), ("c", "c")]))
    counts = collect_stage_counts(p.result)
    for stage in ("dedup_exact", "dedup_near"):
        assert (counts[stage].records_in, counts[stage].records_out, counts[stage].dropped) == (3, 3, {})


def test_oversized_bucket_pairs_members_with_the_best_ranked():
    pairs_of = _BucketPairs(max_bucket_size=3)
    pairs_of.setup()
    members = [(-1, 0, "u", f"d{i}") for i in range(6)]
    small = list(pairs_of.process(("key", members[2::-1])))
    assert small == list(itertools.combinations(members[:3], 2))
    big = list(pairs_of.process(("key", members[::-1])))
    assert len(big) == len(set(big)) == 3 + 3 * 3
    assert all(a < b and a in members[:3] for a, b in big)
    assert {b for _, b in big} == set(members[1:])
