"""Deduplicate (ExactDedup + NearDedup) end to end on a small labelled corpus, run once per runner mode."""

import json
from collections import Counter

import apache_beam as beam
import pytest
from pydoc_data.topics import topics

from core.beam import collect_stage_counts, pipeline_options, stage_diagnostics
from core.beam_config import BeamConfig
from core.text import normalize_for_exact
from dedup.config import DedupConfig
from dedup.pipeline import Deduplicate

CFG = DedupConfig(cc_rounds=3)  # the test corpus has components of at most 3 documents
WORDS = normalize_for_exact(" ".join(topics[k] for k in sorted(topics))).split()


def passage(n: int, words: int = 200) -> list[str]:
    start = 1000 + 3000 * n  # disjoint windows of real prose
    return WORDS[start:start + words]


def substitute(words: list[str], positions) -> list[str]:
    out = list(words)
    for i in positions:
        out[i] = f"edit{i}"
    return out


def true_jaccard(a: str, b: str, k: int = 5) -> float:
    def sh(t):
        w = normalize_for_exact(t).split()
        return {tuple(w[i:i + k]) for i in range(len(w) - k + 1)}

    return len(sh(a) & sh(b)) / len(sh(a) | sh(b))


def doc(doc_id, text, score=1, created_utc=1000, url=None):
    url = url if url is not None else f"http://site.example/{doc_id}"
    return {"id": doc_id, "text": text, "score": score, "created_utc": created_utc, "url": url, "title": doc_id}


def corpus() -> list[dict]:
    t = lambda n: " ".join(passage(n))  # noqa: E731
    base = passage(10)
    chain_b = substitute(base, range(7, 200, 66))  # 3 edits
    chain_c = substitute(chain_b, range(40, 200, 66))  # 3 more
    return [
        # exact duplicates (normalisation only), survivor by score, then date, then url, then id
        doc("score_lo", t(1), score=3), doc("score_hi", t(1).upper() + " !!", score=9),
        doc("date_late", t(2), created_utc=2000), doc("date_early", "  " + t(2).replace(" ", "\n"), created_utc=1500),
        doc("url_b", t(3), url="http://b.example/"), doc("url_a", t(3) + ".", url="http://a.example/"),
        doc("id_2", t(4), url="http://same.example/"), doc("id_1", t(4), url="http://same.example/"),
        # near-duplicate chain: A~B, B~C, A and C below threshold -> one cluster; C ranks best
        doc("chain_a", " ".join(base), score=2), doc("chain_b", " ".join(chain_b), score=1),
        doc("chain_c", " ".join(chain_c), score=5),
        # exact copy of a near duplicate: exact dedup first, then the near cluster
        doc("chain_b_copy", " ".join(chain_b).title(), score=1, created_utc=999),
        # similar but below threshold: both kept
        doc("far_a", t(5)), doc("far_b", " ".join(substitute(passage(5), range(3, 200, 20)))),
        # unique, short and empty documents
        doc("unique", t(6)), doc("short_1", "Hello, world!"), doc("short_2", "hello world"),
        doc("short_3", "hello world again"), doc("four_words", "one two three four"),
        doc("five_words", "one two three four five"), doc("empty_1", "", score=0), doc("empty_2", " ?! ", score=4),
    ]


EXPECTED_SURVIVORS = {
    "score_hi", "date_early", "url_a", "id_1", "chain_c", "far_a", "far_b", "unique",
    "short_1", "short_3", "four_words", "five_words", "empty_2",
}
# Every removed document: (stage, the kept document it names). chain_b is an exact copy of
# chain_b_copy, which near dedup then removes for chain_c: chain_b names chain_c, the one kept.
EXPECTED_DROPPED = {
    "score_lo": ("dedup_exact", "score_hi"), "date_late": ("dedup_exact", "date_early"),
    "url_b": ("dedup_exact", "url_a"), "id_2": ("dedup_exact", "id_1"), "short_2": ("dedup_exact", "short_1"),
    "empty_1": ("dedup_exact", "empty_2"), "chain_b": ("dedup_exact", "chain_c"),
    "chain_a": ("dedup_near", "chain_c"), "chain_b_copy": ("dedup_near", "chain_c"),
}


def run(docs, out_dir, mode="in_memory", workers=1, cfg=CFG):
    """Deduplicate with its dropped output; returns the Beam result, the survivors as sorted
    (id, dup_cluster, title, dup_count) and the dropped documents as {id: (stage, reason, duplicate_of)}."""
    options = pipeline_options(BeamConfig(direct_running_mode=mode, direct_num_workers=workers))
    pipeline = beam.Pipeline(options=options)
    kept, dropped = pipeline | beam.Create(docs) | Deduplicate(cfg, with_dropped=True)
    _ = (kept | "Kept" >> beam.Map(lambda d: json.dumps([d["id"], d["dup_cluster"], d["title"], d["dup_count"]]))
         | "WriteKept" >> beam.io.WriteToText(str(out_dir / "kept.jsonl"), shard_name_template=""))
    _ = (dropped | "Dropped" >> beam.Map(lambda d: json.dumps([d["id"], d["stage"], d["reason"], d["duplicate_of"]]))
         | "WriteDropped" >> beam.io.WriteToText(str(out_dir / "dropped.jsonl"), shard_name_template=""))
    result = pipeline.run()
    result.wait_until_finish()
    survivors = sorted(tuple(json.loads(line)) for line in (out_dir / "kept.jsonl").read_text().splitlines())
    removed = {}
    for line in (out_dir / "dropped.jsonl").read_text().splitlines():
        doc_id, stage, reason, duplicate_of = json.loads(line)
        assert doc_id not in removed
        removed[doc_id] = (stage, reason, duplicate_of)
    return result, survivors, removed


@pytest.fixture(scope="session")
def in_memory_run(tmp_path_factory):
    return run(corpus(), tmp_path_factory.mktemp("in_memory"))


def test_corpus_is_what_the_tests_claim():
    docs = {d["id"]: d["text"] for d in corpus()}
    assert true_jaccard(docs["chain_a"], docs["chain_b"]) >= 0.85
    assert true_jaccard(docs["chain_b"], docs["chain_c"]) >= 0.85
    assert true_jaccard(docs["chain_a"], docs["chain_c"]) < 0.8
    assert 0.4 < true_jaccard(docs["far_a"], docs["far_b"]) < 0.8


def test_survivors_and_tie_breaks(in_memory_run):
    _result, survivors, _dropped = in_memory_run
    assert {doc_id for doc_id, _, _, _ in survivors} == EXPECTED_SURVIVORS


def test_survivors_keep_their_fields_and_record_their_cluster(in_memory_run):
    _result, survivors, _dropped = in_memory_run
    for doc_id, cluster, title, _count in survivors:
        assert cluster == doc_id == title


def test_every_removed_document_names_the_kept_one(in_memory_run):
    _result, survivors, dropped = in_memory_run
    reasons = {"dedup_exact": "exact_duplicate", "dedup_near": "near_duplicate"}
    assert dropped == {doc_id: (stage, reasons[stage], kept) for doc_id, (stage, kept) in EXPECTED_DROPPED.items()}
    # dup_count: the removed documents that name the survivor, through exact and near dedup
    named = Counter(duplicate_of for _, _, duplicate_of in dropped.values())
    assert {doc_id: count for doc_id, _, _, count in survivors} == {doc_id: named[doc_id] for doc_id in EXPECTED_SURVIVORS}
    assert named["chain_c"] == 3


def test_counts_of_earlier_dedup_runs_add_up(tmp_path):
    """Survivors of an earlier run carry dup_count; what they absorbed moves on with them."""
    t = " ".join(passage(20))
    docs = [doc("old_best", t, score=1) | {"dup_count": 2}, doc("new_best", t.upper(), score=9) | {"dup_count": 1},
            doc("other", " ".join(passage(21))) | {"dup_count": 4}]
    _result, survivors, dropped = run(docs, tmp_path)
    assert survivors == [("new_best", "new_best", "new_best", 1 + 1 + 2), ("other", "other", "other", 4)]
    assert dropped == {"old_best": ("dedup_exact", "exact_duplicate", "new_best")}


@pytest.mark.parametrize("exact, near", [(False, False), (True, False), (False, True)])
def test_disabled_stages_drop_nothing_they_would_have(tmp_path, exact, near):
    _result, survivors, dropped = run(corpus(), tmp_path, cfg=CFG.model_copy(update={"exact": exact, "near": near}))
    enabled = {stage for stage, on in (("dedup_exact", exact), ("dedup_near", near)) if on}
    assert {stage for stage, _, _ in dropped.values()} <= enabled
    named = Counter(duplicate_of for _, _, duplicate_of in dropped.values())
    assert all(count == named[doc_id] for doc_id, _, _, count in survivors)
    assert len(survivors) + len(dropped) == len(corpus())


def test_counts_reconcile(in_memory_run):
    result, _, _ = in_memory_run
    counts = collect_stage_counts(result)
    exact, near = counts["dedup_exact"], counts["dedup_near"]
    assert (exact.records_in, exact.records_out, exact.dropped) == (22, 15, {"exact_duplicate": 7})
    assert (near.records_in, near.records_out, near.dropped) == (15, 13, {"near_duplicate": 2})
    exact.check()
    near.check()
    diagnostics = stage_diagnostics(result, "dedup_near")
    assert diagnostics["verified_pairs"] == 2  # chain_a~chain_b, chain_b~chain_c
    assert diagnostics["candidate_pairs"] >= diagnostics["verified_pairs"]


def test_same_result_in_another_order_on_two_worker_processes(in_memory_run, tmp_path):
    """Determinism across runs, input order and processes (multi_processing spawns new interpreters)."""
    _result, survivors, dropped = in_memory_run
    _result, again, dropped_again = run(corpus()[::-1], tmp_path, mode="multi_processing", workers=2)
    assert again == survivors
    assert dropped_again == dropped
