"""`webtext harvest` with dumps and output on an S3-compatible server (moto, on 127.0.0.1):
the options after `--` reach Beam's FileSystems before the dumps are listed, and staging and
publishing on a prefix leave nothing behind, also when the file count changes between runs."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions

from crawl.harvest import run_harvest
from tests.crawl.test_harvest import hand_dumps, hand_run, read_rows  # noqa: F401 - fixtures
from tests.s3 import S3Server
from webtext.config import load_config


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server.start(tmp_path_factory.mktemp("s3") / "moto.log")
    yield server
    server.stop()


def harvest_s3(s3, *overrides) -> dict:
    # Options without the server's endpoint: only the run's own options (after `--`) can reach
    # the bucket, so listing the dumps before they are set would fail.
    FileSystems.set_options(PipelineOptions([]))
    config = load_config(None, ["harvest.merge_buckets=4", *overrides])  # fewer run objects: moto is slow
    return run_harvest([s3.url("dumps", "RS_*")], s3.url("urls"), config.harvest, config.beam, s3.options())


def s3_rows(s3, keys: list[str]) -> list[dict]:
    return [row for key in keys for row in pq.read_table(pa.BufferReader(s3.get(key))).to_pylist()]


def test_harvest_on_s3_publishes_only_its_files_and_reruns_with_another_file_count(s3, hand_dumps, hand_run):
    s3.upload_tree(hand_dumps, "dumps")
    stats = harvest_s3(s3, "harvest.rows_per_file=3")
    two = ["urls/urls-00000-of-00002.parquet", "urls/urls-00001-of-00002.parquet"]
    assert s3.keys("urls/") == ["urls/_harvest_stats.json", *two]  # no staging objects, no runs
    assert stats["urls"] == 4
    assert sorted(s3_rows(s3, two), key=lambda row: row["url_key"]) == read_rows(hand_run[0])

    harvest_s3(s3)
    assert s3.keys("urls/") == ["urls/_harvest_stats.json", "urls/urls-00000-of-00001.parquet"]
    assert s3.get("urls/urls-00000-of-00001.parquet") == (hand_run[0] / "urls-00000-of-00001.parquet").read_bytes()
    assert s3.keys() == sorted([*s3.keys("dumps/"), *s3.keys("urls/")])
