"""`webtext verify` passes on a finished build and names every kind of damage."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shards.verify import verify_dataset
from tests.shards.conftest import run_cli


@pytest.fixture
def copy(built, tmp_path):
    out, manifest = built
    target = tmp_path / "dataset"
    shutil.copytree(out, target)
    return str(target), manifest


def _shard(copy, index=0):
    out, manifest = copy
    return os.path.join(out, manifest["shards"][index]["path"])


def test_cli_ok(built):
    result = run_cli("verify", built[0])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ")
    assert len(result.stdout.strip().splitlines()) == 1
    assert f"{built[1]['rows']} rows" in result.stdout


def test_flipped_bytes(copy):
    path = _shard(copy)
    with open(path, "r+b") as fh:
        fh.seek(200)
        byte = fh.read(1)
        fh.seek(200)
        fh.write(bytes([byte[0] ^ 0xFF]))
    problems = verify_dataset(copy[0])
    assert any("sha256 differs" in p for p in problems), problems
    assert not any("bytes, manifest says" in p for p in problems)


def test_truncated_shard(copy):
    path = _shard(copy)
    os.truncate(path, os.path.getsize(path) // 2)
    problems = verify_dataset(copy[0])
    assert any("bytes, manifest says" in p for p in problems)
    assert any("not readable as Parquet" in p for p in problems)
    result = run_cli("verify", copy[0])
    assert result.returncode == 1
    assert os.path.basename(path) in result.stderr


def test_missing_shard(copy):
    path = _shard(copy, -1)
    os.unlink(path)
    problems = verify_dataset(copy[0])
    assert problems == [f"{copy[1]['shards'][-1]['path']}: missing"]


def test_unlisted_shard(copy):
    shutil.copy(_shard(copy), os.path.join(copy[0], "train", "shard-00099-of-00100.parquet"))
    problems = verify_dataset(copy[0])
    assert len(problems) == 1 and "not in the manifest, so not part of the dataset" in problems[0]


def test_missing_manifest(copy):
    os.unlink(os.path.join(copy[0], "manifest.json"))
    result = run_cli("verify", copy[0])
    assert result.returncode == 1
    assert "not a finished build" in result.stderr


@pytest.mark.parametrize("text,message", [
    ("{not json", "not valid JSON"),
    ('["a list"]', "not a webtext-dataset-v1 manifest"),
    ('{"format": "webtext-dataset-v1", "shards": []}', "manifest lacks code_version, config"),
])
def test_broken_manifest(copy, text, message):
    with open(os.path.join(copy[0], "manifest.json"), "w") as fh:
        fh.write(text)
    assert message in verify_dataset(copy[0])[0]


def test_manifest_rows_edited(copy):
    out, manifest = copy
    edited = json.loads(json.dumps(manifest))
    edited["shards"][0]["rows"] += 1
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(edited, fh)
    problems = verify_dataset(out)
    assert any("rows, manifest says" in p for p in problems)
    assert any("manifest rows=" in p for p in problems)


def test_schema_mismatch(copy):
    out, manifest = copy
    edited = json.loads(json.dumps(manifest))
    edited["schema"][1]["type"] = "int64"
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(edited, fh)
    problems = verify_dataset(out)
    assert len(problems) == len(manifest["shards"])
    assert all("schema differs" in p for p in problems)


def test_counts_that_do_not_reconcile(copy):
    out, manifest = copy
    edited = json.loads(json.dumps(manifest))
    edited["stages"]["filter"]["out"] -= 1
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(edited, fh)
    problems = verify_dataset(out)
    assert any(p.startswith("stage filter:") for p in problems)
    assert any("filter.out=" in p for p in problems)


def _edit_manifest(out: str, edit) -> None:
    with open(os.path.join(out, "manifest.json")) as fh:
        manifest = json.load(fh)
    edit(manifest)
    with open(os.path.join(out, "manifest.json"), "w") as fh:
        json.dump(manifest, fh)


def _dropped_file(copy, index=0):
    out, manifest = copy
    return os.path.join(out, manifest["dropped"]["files"][index]["path"])


def test_damaged_audit_table(copy):
    path = _dropped_file(copy)
    os.truncate(path, os.path.getsize(path) // 2)
    problems = verify_dataset(copy[0])
    name = copy[1]["dropped"]["files"][0]["path"]
    assert any(p.startswith(f"{name}: ") and "bytes, manifest says" in p for p in problems), problems
    assert any(p.startswith(f"{name}: not readable as Parquet") for p in problems)
    os.unlink(path)
    assert f"{name}: missing" in verify_dataset(copy[0])


def test_unlisted_file_in_the_audit_table(copy):
    shutil.copy(_dropped_file(copy), os.path.join(copy[0], "dropped", "shard-00099-of-00100.parquet"))
    problems = verify_dataset(copy[0])
    assert len(problems) == 1 and "dropped/shard-00099-of-00100.parquet: not in the manifest" in problems[0]


def test_audit_rows_that_differ_from_the_counts(copy):
    """A rewritten audit file (manifest updated to match its bytes) whose rows say another reason."""
    out, manifest = copy
    path = _dropped_file(copy)
    table = pq.read_table(path)
    reasons = table.column("reason").to_pylist()
    reasons[0] = "made_up"
    pq.write_table(table.set_column(table.schema.get_field_index("reason"), table.schema.field("reason"),
                                    pa.array(reasons, pa.string())), path)
    with open(path, "rb") as fh:
        data = fh.read()

    def match_the_bytes(edited):
        entry = edited["dropped"]["files"][0]
        entry["bytes"], entry["sha256"] = len(data), hashlib.sha256(data).hexdigest()

    _edit_manifest(out, match_the_bytes)
    problems = verify_dataset(out)
    assert len(problems) == 1 and problems[0].startswith("dropped/: its rows by stage and reason")
    assert "made_up" in problems[0]


def test_stage_counts_the_audit_table_does_not_hold(copy):
    """Stage counts edited (still reconciling): the audit table no longer holds what the stage dropped."""
    def one_more_bot_check(edited):
        stage = edited["stages"]["filter"]
        stage["in"] += 1
        stage["dropped"]["bot_check"] += 1
        edited["stages"]["extract"]["out"] += 1
        edited["stages"]["extract"]["in"] += 1
        edited["stages"]["captures"]["out"] += 1
        edited["stages"]["captures"]["in"] += 1
        edited["stages"]["read"]["out"] += 1
        edited["stages"]["read"]["in"] += 1

    _edit_manifest(copy[0], one_more_bot_check)
    filter_drops = copy[1]["stages"]["filter"]["dropped"]
    problems = verify_dataset(copy[0])
    assert problems == [f"stage filter: dropped/ holds {copy[1]['dropped']['counts']['filter']} but the stage counted "
                        f"{dict(filter_drops, bot_check=filter_drops['bot_check'] + 1)}"]


def test_dataset_without_an_audit_table_still_verifies(copy):
    """Datasets built before the audit table existed (and decontaminated copies) list none."""
    shutil.rmtree(os.path.join(copy[0], "dropped"))
    _edit_manifest(copy[0], lambda edited: edited.pop("dropped"))
    assert verify_dataset(copy[0]) == []


def test_broken_audit_entry(copy):
    _edit_manifest(copy[0], lambda edited: edited["dropped"].pop("counts"))
    assert "manifest entry `dropped` lacks one of counts, files, rows, schema" in verify_dataset(copy[0])[0]
