"""The dataset writer on its own: staging, sidecars, and the publish sequence both writers use."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.parquet as pq

from core.stats import StageCounts
from shards.cli import dataset_config
from shards.manifest import MANIFEST, STAGE_CHAIN, audit_problems, dropped_section, make_manifest, read_manifest
from shards.verify import verify_dataset
from shards.writer import (
    DROPPED_DIR,
    DROPPED_SCHEMA,
    SCHEMA,
    fresh_staging,
    publish,
    schema_json,
    shard_bytes,
    shard_name,
    stage_dropped_shard,
    stage_empty_splits,
    stage_shard,
    staged_shard,
    staged_shards,
    staging_dir,
    to_dropped_row,
)
from webtext.config import load_config


def _rows(n: int) -> pa.Table:
    return pa.Table.from_pylist([{"id": f"{i:016x}", "text": f"text {i}", "domain": "a.example", "lang": "en",
                                  "n_words": 2, "n_chars": 6} for i in range(n)], schema=SCHEMA)


def test_staged_shards_need_their_sidecar_and_their_bytes(tmp_path):
    out = str(tmp_path / "data")
    staging = fresh_staging(out)
    info = stage_shard(staging, shard_name("train", 0, 2), "train", 3, shard_bytes(_rows(3), 2, 3), source="x")
    assert info["rows"] == 3 and info["source"] == "x" and len(info["sha256"]) == 64
    assert staged_shard(staging, info["path"]) == info
    assert staged_shard(staging, shard_name("train", 1, 2)) is None  # never staged
    os.unlink(os.path.join(staging, info["path"]))
    assert staged_shard(staging, info["path"]) is None  # sidecar without its bytes
    stage_shard(staging, info["path"], "train", 3, shard_bytes(_rows(3), 2, 3))
    # an empty split still gets one readable zero-row shard
    shards = stage_empty_splits(staging, staged_shards(staging), 2, 3)
    assert [(s["path"], s["rows"]) for s in shards] == [
        ("test/shard-00000-of-00001.parquet", 0), ("train/shard-00000-of-00002.parquet", 3),
        ("val/shard-00000-of-00001.parquet", 0)]
    assert pq.read_table(os.path.join(staging, "val/shard-00000-of-00001.parquet")).schema.equals(SCHEMA)
    assert fresh_staging(out) == staging and not os.listdir(staging)  # an earlier run's leftovers go


def test_publish_replaces_an_earlier_dataset(tmp_path):
    out = tmp_path / "data"
    stale = out / "train" / "shard-00000-of-00009.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"a shard of an earlier build")
    (out / MANIFEST).write_text("{}")
    staging = fresh_staging(str(out))
    shards = stage_empty_splits(staging, [stage_shard(staging, shard_name("train", 0, 1), "train", 4,
                                                      shard_bytes(_rows(4), 2, 3), cut=1)], 2, 3)
    counts = {stage: StageCounts(stage, 4, 4) for stage in STAGE_CHAIN}
    content = dataset_config(load_config()).model_dump(mode="json")
    manifest = make_manifest(content, "f" * 64, shards, schema_json(SCHEMA), counts, [])
    assert manifest["shards"][1] == {key: shards[1][key] for key in ("path", "split", "rows", "bytes", "sha256")}
    publish(str(out), manifest, "stats.json", {"write": counts["write"]}, {"note": 1}, top_domains=5)
    assert not stale.exists() and not os.path.exists(staging_dir(str(out)))
    assert pq.read_table(out / "train").num_rows == 4
    assert read_manifest(str(out))["shards"] == manifest["shards"]
    assert json.loads((out / "stats.json").read_text())["note"] == 1
    assert (out / "README.md").exists()
    assert verify_dataset(str(out)) == []


def test_publish_moves_the_audit_table_and_a_dataset_without_one_removes_it(tmp_path):
    out = tmp_path / "data"
    stale = out / DROPPED_DIR / "shard-00003-of-00009.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"audit rows of an earlier build")
    staging = fresh_staging(str(out))
    shards = stage_empty_splits(staging, [], 2, 3)
    rows = [{"id": None, "url": None, "final_url": None, "warc_file": "a.warc.gz", "warc_offset": None,
             "stage": "read", "reason": "warc_read_error"},
            {"id": "00ff", "url": "https://b.example/", "warc_file": "a.warc.gz", "warc_offset": 10,
             "stage": "filter", "reason": "too_short", "text": "kept only with audit text"}]
    files = [stage_dropped_shard(staging, [to_dropped_row(row, with_text=False) for row in rows], 0, 1, 2, 3)]
    assert files[0]["drops"] == {"read": {"warc_read_error": 1}, "filter": {"too_short": 1}}
    counts = {stage: StageCounts(stage) for stage in STAGE_CHAIN}
    counts["read"] = StageCounts("read", 2, 1, {"warc_read_error": 1})
    counts["captures"] = StageCounts("captures", 1, 1)
    counts["extract"] = StageCounts("extract", 1, 1)
    counts["filter"] = StageCounts("filter", 1, 0, {"too_short": 1})
    dropped = dropped_section(files, schema_json(DROPPED_SCHEMA), list(counts))
    assert audit_problems(counts, dropped) == []
    assert audit_problems({**counts, "extract": StageCounts("extract", 2, 1, {"no_text": 1})}, dropped) == [
        "stage extract: dropped/ holds {} but the stage counted {'no_text': 1}"]
    content = dataset_config(load_config()).model_dump(mode="json")
    manifest = make_manifest(content, "f" * 64, shards, schema_json(SCHEMA), counts, [], dropped)
    publish(str(out), manifest, "stats.json", counts, {}, top_domains=5)
    assert not stale.exists()
    table = pq.read_table(out / DROPPED_DIR)
    assert table.column("url").to_pylist() == [None, "https://b.example/"]  # sorted by url
    assert table.column("text").to_pylist() == [None, None]
    assert verify_dataset(str(out)) == [] and read_manifest(str(out))["dropped"]["rows"] == 2

    staging = fresh_staging(str(out))  # e.g. a decontaminated copy written into this folder: no audit table
    manifest = make_manifest(content, "f" * 64, stage_empty_splits(staging, [], 2, 3), schema_json(SCHEMA), counts, [])
    publish(str(out), manifest, "stats.json", counts, {}, top_domains=5)
    assert not list((out / DROPPED_DIR).glob("*.parquet"))
    assert verify_dataset(str(out)) == []
