"""Object-store paths (s3://) against a real S3 server: moto's standalone server on 127.0.0.1
(tests/s3.py, the session fixture `s3_server`).

- `core.fsio` on a bucket: atomic writes, listing a prefix (hidden `.staging/` skipped), rename,
  deleting a prefix.
- The dataset writer on a prefix: a killed run's staging and a rebuild with another shard count
  leave nothing behind.
- Bad stores give one line naming the path and the option to set: a missing bucket, refused
  credentials, an unreachable endpoint, a missing prefix, a gs:// path without the gcp extra;
  boto's own AWS_* variables work instead of options.
- End to end: harvest -> crawl (replay) -> build -> verify -> tokenize with s3:// paths, each
  stage's output identical to the same stage run on local paths.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core import fsio
from core.stats import StageCounts
from shards.cli import dataset_config
from shards.manifest import STAGE_CHAIN, make_manifest, read_manifest
from shards.verify import verify_dataset
from shards.writer import (
    SCHEMA,
    fresh_staging,
    publish,
    schema_json,
    shard_bytes,
    shard_name,
    stage_empty_splits,
    stage_shard,
    staged_shards,
)
from tests.s3 import free_port
from tests.test_end_to_end import BUILD_SETTINGS, CRAWL_SETTINGS, DUMP, WEB, built  # noqa: F401  (fixture)
from webtext.cli import main
from webtext.config import load_config

REPO = Path(__file__).resolve().parent.parent
TOKEN_SETTINGS = ["--set", "tokenizer.vocab_size=512", "--set", "tokenizer.workers=2",
                  "--set", "tokenizer.shard_tokens=20000"]


@pytest.fixture
def store(s3_server):
    """The server, with fsio (this process) using its options."""
    fsio.use_options(s3_server.options())
    return s3_server


def test_fsio_on_a_bucket(store):
    base = store.url("fsio")
    fsio.atomic_write_text(fsio.join(base, "a", "one.txt"), "one")
    fsio.atomic_write_bytes(fsio.join(base, "a", "two.warc.gz"), b"not gzip")  # stored as given, no codec
    fsio.atomic_write_text(fsio.join(base, ".staging", "x.json"), "{}")
    assert store.get("fsio/a/two.warc.gz") == b"not gzip"
    assert fsio.exists(fsio.join(base, "a", "one.txt")) and not fsio.exists(fsio.join(base, "a", "nope.txt"))
    assert fsio.isdir(base) and fsio.isdir(fsio.join(base, "a")) and not fsio.isdir(fsio.join(base, "b"))
    assert fsio.expand([base]) == [fsio.join(base, "a", "one.txt"), fsio.join(base, "a", "two.warc.gz")]
    assert fsio.expand([fsio.join(base, "a", "*.txt")]) == [fsio.join(base, "a", "one.txt")]
    with pytest.raises(FileNotFoundError, match="no files match"):
        fsio.expand([fsio.join(base, "b")])
    with fsio.open_read(fsio.join(base, "a", "one.txt")) as fh:
        fh.seek(1)
        assert fh.read() == b"ne"
    assert fsio.size(fsio.join(base, "a", "one.txt")) == 3
    fsio.rename(fsio.join(base, "a", "one.txt"), fsio.join(base, "c", "one.txt"))
    assert store.keys("fsio/") == ["fsio/.staging/x.json", "fsio/a/two.warc.gz", "fsio/c/one.txt"]
    fsio.remove_tree(fsio.join(base, ".staging"))
    fsio.remove(fsio.join(base, "a", "two.warc.gz"))
    fsio.remove(fsio.join(base, "a", "gone.txt"))  # missing: nothing to do
    assert store.keys("fsio/") == ["fsio/c/one.txt"]


def _rows(n: int) -> pa.Table:
    return pa.Table.from_pylist([{"id": f"{i:016x}", "text": f"text {i}", "domain": "a.example", "lang": "en",
                                  "n_words": 2, "n_chars": 6} for i in range(n)], schema=SCHEMA)


def _write_dataset(out: str, shard_count: int, rows: int = 6, lose=None) -> dict:
    """What a build does: stage `shard_count` train shards, then publish them (`lose(staging)`
    runs before publishing: a store that loses an object)."""
    staging = fresh_staging(out)
    table = _rows(rows)
    per_shard = -(-rows // shard_count)
    for index in range(shard_count):
        part = table.slice(index * per_shard, per_shard)
        stage_shard(staging, shard_name("train", index, shard_count), "train", part.num_rows,
                    shard_bytes(part, 2, 3))
    shards = stage_empty_splits(staging, staged_shards(staging), 2, 3)
    assert sum(info["rows"] for info in shards) == rows  # the build's own count check
    counts = {stage: StageCounts(stage, rows, rows) for stage in STAGE_CHAIN}
    manifest = make_manifest(dataset_config(load_config()).model_dump(mode="json"), "f" * 64, shards,
                             schema_json(SCHEMA), counts, [])
    if lose:
        lose(staging)
    publish(out, manifest, "_stats.json", {"write": counts["write"]}, {}, top_domains=5)
    return manifest


def test_the_writer_leaves_nothing_behind_on_a_prefix(store):
    """A killed run's staged shards, a publish that fails midway, and a rebuild with another
    shard count: the prefix never reads as finished while half-published, and ends holding
    exactly the new dataset, with no `.staging/` object left."""
    out = store.url("writer")
    killed = fresh_staging(out)
    stage_shard(killed, shard_name("train", 0, 4), "train", 2, shard_bytes(_rows(2), 2, 3))
    assert store.keys("writer/.staging/")
    _write_dataset(out, 2)
    first = store.keys("writer/")
    assert "writer/train/shard-00001-of-00002.parquet" in first
    assert not [key for key in first if "/.staging/" in key]

    def lose_a_shard(staging):
        store.client().delete_object(Bucket=store.bucket, Key="writer/.staging/train/shard-00001-of-00003.parquet")

    with pytest.raises(OSError):  # Beam's BeamIOError: the rename of the lost shard fails
        _write_dataset(out, 3, lose=lose_a_shard)
    with pytest.raises(FileNotFoundError, match="not a finished build"):
        read_manifest(out)
    manifest = _write_dataset(out, 3)  # the rerun, with build.docs_per_shard changed
    keys = store.keys("writer/")
    assert not [key for key in keys if "/.staging/" in key]
    assert [key for key in keys if key.startswith("writer/train/")] == [
        f"writer/train/shard-0000{i}-of-00003.parquet" for i in range(3)]
    assert read_manifest(out)["shards"] == manifest["shards"]
    assert verify_dataset(out) == []


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _bad_store_cases(server) -> dict:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    return {
        "missing bucket": ("s3://no-such-bucket/data", server.options(),
                           ["bucket 'no-such-bucket' does not exist", "--s3_endpoint_url"]),
        "wrong credentials": (server.url("data"), server.options(access_key="AKIAWRONG", secret_key="wrong"),
                              ["access to bucket 'webtext-test' denied", "--s3_access_key_id", "--s3_secret_access_key"]),
        "unreachable endpoint": (server.url("data"), server.options(endpoint=closed),
                                 [f"cannot reach the S3 endpoint {closed}", "--s3_endpoint_url"]),
    }


@pytest.mark.parametrize("case", ["missing bucket", "wrong credentials", "unreachable endpoint"])
@pytest.mark.parametrize("command", ["verify", "tokenize", "build", "harvest"])
def test_a_bad_store_is_one_line_naming_path_and_option(s3_server, capsys, tmp_path, case, command):
    """Checked before the command starts (Beam would retry for minutes, then fail deep inside)."""
    path, options, expected = _bad_store_cases(s3_server)[case]
    argv = {
        "verify": ["verify", path],
        "tokenize": ["tokenize", "--shards", path, "--tokenizer", str(tmp_path), "--out", str(tmp_path / "t")],
        "build": ["build", "--warc", str(tmp_path), "--out", path],
        "harvest": ["harvest", "--dumps", path + "/RS_*.zst", "--out", str(tmp_path / "urls")],
    }[command]
    assert main([*argv, "--", *options]) == 1
    line = _error_line(capsys)
    assert line.startswith(f"webtext {command}: error: {path}")
    for words in expected:
        assert words in line
    assert not (tmp_path / "t").exists() and not (tmp_path / "urls").exists()


def test_a_missing_prefix_is_one_line(s3_server, capsys, tmp_path):
    missing = s3_server.url("nothing-here")
    assert main(["verify", missing, "--", *s3_server.options()]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"webtext verify: {missing}: 1 problem(s):",
        f"  {missing}/manifest.json is missing: {missing} is not a finished build (rerun `webtext build`)"]
    assert main(["tokenize", "--shards", missing, "--tokenizer", str(tmp_path), "--out", str(tmp_path / "t"),
                 "--", *s3_server.options()]) == 1
    assert _error_line(capsys) == f"webtext tokenize: error: {missing}: dataset shard directory not found"


def test_boto_environment_variables_work_without_options(s3_server, tmp_path):
    """README: credentials and endpoint may come from boto's usual AWS_* variables instead."""
    missing = s3_server.url("env-only")
    done = subprocess.run([sys.executable, "-m", "webtext", "verify", missing], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, **s3_server.env})
    assert done.returncode == 1 and f"{missing}/manifest.json is missing" in done.stderr  # reached the bucket
    assert "error" not in done.stderr


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


@pytest.mark.skipif(_installed("google.cloud.storage"), reason="the gcp extra is installed")
def test_gs_without_the_gcp_extra_names_the_extra(capsys):
    assert main(["verify", "gs://some-bucket/dataset"]) == 1
    assert _error_line(capsys) == ("webtext verify: error: gs://some-bucket/dataset: no filesystem for gs:// paths "
                                   "is installed: pip install 'webtext[gcp]'")


# -- end to end ----------------------------------------------------------------------------------
def _webtext(*args: str) -> subprocess.CompletedProcess:
    """One `webtext` command as users run it (its own process, Beam options after `--`)."""
    proc = subprocess.run([sys.executable, "-m", "webtext", *args], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, f"webtext {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def _files(root: Path, suffix: str) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob(f"*{suffix}"))
            if not any(part.startswith(".") for part in path.relative_to(root).parts)}


def _objects(server, prefix: str, suffix: str) -> dict[str, bytes]:
    return {key[len(prefix) + 1:]: server.get(key) for key in server.keys(prefix + "/")
            if key.endswith(suffix) and "/." not in key[len(prefix):]}


def _crawl_outcomes(crawl_log: Path) -> list[tuple]:
    """The crawl log without its times: what was fetched and how it ended."""
    rows = pq.read_table(crawl_log).select(["url", "final_url", "outcome", "http_status"]).to_pylist()
    assert rows
    return sorted(tuple(row.values()) for row in rows)


def _shard_list(manifest: dict) -> list[tuple]:
    files = manifest["shards"] + manifest.get("dropped", {}).get("files", [])
    return sorted((info["path"], info["rows"], info["sha256"]) for info in files)


def _token_shards(manifest: dict) -> list[tuple]:
    return [(split, shard["file"], shard["tokens"], shard["sha256"])
            for split, state in sorted(manifest["splits"].items()) for shard in state["shards"]]


@pytest.mark.slow
def test_end_to_end_on_s3_matches_the_local_run(s3_server, built, tmp_path):
    """harvest -> crawl (replay) -> build -> verify -> tokenize on s3:// paths. Each stage's
    output equals the same stage's on local paths: the URL files byte for byte (against the
    local end-to-end run), the crawl's outcomes, the dataset shards and the token shards (against
    a local build and tokenize of the WARC the S3 crawl wrote: a crawl's fetch times differ)."""
    server, options = s3_server, ["--", *s3_server.options()]
    local = built["out"]
    server.upload_tree(DUMP.parent, "e2e/dumps")
    s3 = server.url("e2e")

    _webtext("harvest", "--dumps", f"{s3}/dumps/{DUMP.name}", "--out", f"{s3}/urls", *options)
    assert _objects(server, "e2e/urls", ".parquet") == _files(local / "urls", ".parquet")

    _webtext("crawl", "--urls", f"{s3}/urls", "--out", f"{s3}/crawl", "--replay", str(WEB), *CRAWL_SETTINGS,
             "--set", f"crawl.local_work_dir={tmp_path / 'crawl-work'}", *options)  # not one shared by test runs
    crawled = tmp_path / "crawl"
    for key in server.keys("e2e/crawl/"):
        (crawled / key[len("e2e/crawl/"):]).parent.mkdir(parents=True, exist_ok=True)
        (crawled / key[len("e2e/crawl/"):]).write_bytes(server.get(key))
    assert _crawl_outcomes(crawled / "crawl_log") == _crawl_outcomes(local / "crawl" / "crawl_log")

    _webtext("build", "--warc", f"{s3}/crawl", "--out", f"{s3}/dataset", *BUILD_SETTINGS, *options)
    _webtext("verify", f"{s3}/dataset", *options)
    _webtext("build", "--warc", str(crawled), "--out", str(tmp_path / "dataset"), *BUILD_SETTINGS)
    fsio.use_options(server.options())
    on_s3, here = read_manifest(f"{s3}/dataset"), read_manifest(str(tmp_path / "dataset"))
    assert _shard_list(on_s3) == _shard_list(here) and on_s3["rows"] == here["rows"] > 0
    assert not [key for key in server.keys("e2e/") if "/." in key]  # no staging left on the prefix

    _webtext("tokenizer", "train", "--shards", str(tmp_path / "dataset"), "--out", str(tmp_path / "tokenizer"),
             *TOKEN_SETTINGS)
    _webtext("tokenize", "--shards", f"{s3}/dataset", "--tokenizer", str(tmp_path / "tokenizer"),
             "--out", f"{s3}/tokens", *TOKEN_SETTINGS, *options)
    _webtext("tokenize", "--shards", str(tmp_path / "dataset"), "--tokenizer", str(tmp_path / "tokenizer"),
             "--out", str(tmp_path / "tokens"), *TOKEN_SETTINGS)
    tokens_s3 = json.loads(server.get("e2e/tokens/manifest.json"))
    tokens_here = json.loads((tmp_path / "tokens" / "manifest.json").read_text())
    assert _token_shards(tokens_s3) == _token_shards(tokens_here)
    for _split, file, _tokens, sha256 in _token_shards(tokens_s3):
        assert hashlib.sha256(server.get(f"e2e/tokens/{file}")).hexdigest() == sha256
    assert server.keys("e2e/tokens/tokenizer/")  # the tokens' own tokenizer beside them

    # a rebuild with another shard count replaces the dataset on the prefix
    _webtext("build", "--warc", f"{s3}/crawl", "--out", f"{s3}/dataset", "--force", *BUILD_SETTINGS,
             "--set", f"build.docs_per_shard={max(2, on_s3['rows'] // 3)}", *options)
    rebuilt = read_manifest(f"{s3}/dataset")  # its count check passed: no sidecar of the first build was read
    assert rebuilt["rows"] == on_s3["rows"] and len(rebuilt["shards"]) > len(on_s3["shards"])
    assert sorted(key for key in server.keys("e2e/dataset/") if key.endswith(".parquet")) == sorted(
        f"e2e/dataset/{path}" for path, _rows, _sha in _shard_list(rebuilt))
    assert not [key for key in server.keys("e2e/") if "/." in key]
