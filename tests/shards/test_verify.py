"""`webtext verify` passes on a finished build and names every kind of damage."""

from __future__ import annotations

import json
import os
import shutil

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
