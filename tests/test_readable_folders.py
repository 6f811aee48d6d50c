"""Every output folder that holds a table reads as that table, as is: `pandas.read_parquet(DIR)`,
`pyarrow.dataset.dataset(DIR)` and DuckDB's `DIR/*.parquet` (docs/contracts.md, "Readable
folders"). Stats files beside the Parquet files start with `_`, which Arrow's dataset discovery
skips; folders written by earlier versions (stats without the `_`) still read.

Each folder comes from the real stage: harvest (Beam), crawl (Scrapy against the loopback
replay server), build (Beam) and dedup (Beam)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from crawl.harvest import run_harvest
from crawl.url_table import LEGACY_STATS_FILE as HARVEST_LEGACY_STATS_FILE
from crawl.url_table import STATS_FILE as HARVEST_STATS_FILE
from crawl.url_table import read_url_table
from dedup.parquet import LEGACY_STATS_FILE as DEDUP_LEGACY_STATS_FILE
from dedup.parquet import STATS_FILE as DEDUP_STATS_FILE
from dedup.parquet import run_dedup
from shards.split import SPLITS
from tests.crawl.submissions import dump_line, submission
from tests.crawl.test_crawler_support import crawl_cli, generated_web
from tests.shards.conftest import SMALL_SHARDS, build
from tests.shards.warc_fixture import write_fixture
from webtext.config import load_config

N_URLS = 6


def parquet_rows(folder: Path) -> int:
    """Rows in the folder's own Parquet files, counted file by file from their footers."""
    return sum(pq.ParquetFile(path).metadata.num_rows for path in folder.glob("*.parquet"))


def assert_reads_as_one_table(folder: Path, rows: int) -> pd.DataFrame:
    """`folder` reads as a table of `rows` rows the three ways users read a Parquet folder."""
    frame = pd.read_parquet(folder)
    arrow_rows = ds.dataset(folder, format="parquet").count_rows()
    duckdb_rows = duckdb.connect().execute(f"SELECT count(*) FROM '{folder}/*.parquet'").fetchone()[0]
    assert (len(frame), arrow_rows, duckdb_rows) == (rows, rows, rows), folder
    return frame


@pytest.fixture(scope="module")
def harvested(tmp_path_factory) -> Path:
    """A URL folder in two files, harvested over the stats file an earlier version left there."""
    root = tmp_path_factory.mktemp("harvest")
    _, urls = generated_web(root / "web", N_URLS)
    dump = root / "RS_test.ndjson"
    dump.write_bytes(b"\n".join(dump_line(submission(f"p{i}", url, 5)) for i, url in enumerate(urls)) + b"\n")
    out = root / "urls"
    out.mkdir()
    (out / HARVEST_LEGACY_STATS_FILE).write_text(json.dumps({"urls": 99}))  # an earlier version's
    config = load_config(overrides=["harvest.output_files=2"])
    run_harvest([str(dump)], str(out), config.harvest, config.beam)
    return out


def test_url_folder_reads_as_one_table(harvested):
    assert sorted(path.name for path in harvested.iterdir()) == [
        HARVEST_STATS_FILE, "urls-00000-of-00002.parquet", "urls-00001-of-00002.parquet"]
    stats = json.loads((harvested / HARVEST_STATS_FILE).read_text())
    frame = assert_reads_as_one_table(harvested, N_URLS)
    assert stats["urls"] == N_URLS and frame["url"].is_unique


def test_url_folder_of_an_earlier_version_still_reads(harvested, tmp_path):
    """Stats under the old name: the crawl reads the folder; where both names exist the new one
    counts; a wrong old file is named in the error."""
    old = tmp_path / "urls"
    shutil.copytree(harvested, old)
    (old / HARVEST_STATS_FILE).rename(old / HARVEST_LEGACY_STATS_FILE)
    assert read_url_table(str(old)).num_rows == N_URLS
    (old / HARVEST_LEGACY_STATS_FILE).write_text(json.dumps({"urls": 99}))
    with pytest.raises(ValueError, match=f"{HARVEST_LEGACY_STATS_FILE} does not say the harvest"):
        read_url_table(str(old))
    shutil.copy(harvested / HARVEST_STATS_FILE, old / HARVEST_STATS_FILE)
    assert read_url_table(str(old)).num_rows == N_URLS


@pytest.fixture(scope="module")
def crawled(harvested, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("crawl")
    result = crawl_cli("--urls", str(harvested), "--out", str(out), "--replay", str(harvested.parent / "web"),
                       settings=["crawl.log_flush_rows=2"])
    assert result.returncode == 0, result.stderr
    return out


def test_crawl_log_reads_as_one_table(crawled):
    log = crawled / "crawl_log"
    assert len(list(log.glob("*.parquet"))) > 1  # checkpoint parts
    frame = assert_reads_as_one_table(log, N_URLS)
    assert set(frame["outcome"]) == {"ok"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dataset")
    fixture = write_fixture(str(tmp_path_factory.mktemp("warc")))
    build(SMALL_SHARDS, fixture.root, str(out))
    return out


def test_every_table_folder_of_a_dataset_reads_as_one_table(dataset):
    """The split folders and the audit table `dropped/`; the root itself holds these tables and the
    dataset card, and is read as a Hugging Face dataset (tests/shards/test_card.py)."""
    manifest = json.loads((dataset / "manifest.json").read_text())
    tables = sorted(path for path in dataset.iterdir()
                    if path.is_dir() and not path.name.startswith((".", "_")) and any(path.glob("*.parquet")))
    assert [path.name for path in tables] == sorted([*SPLITS, "dropped"])
    for folder in tables:
        rows = manifest["dropped"]["rows"] if folder.name == "dropped" else manifest["splits"][folder.name]["rows"]
        assert rows == parquet_rows(folder)
        assert_reads_as_one_table(folder, rows)


def test_dedup_output_reads_as_one_table(dataset, tmp_path):
    out = tmp_path / "dedup"
    out.mkdir()
    (out / DEDUP_LEGACY_STATS_FILE).write_text("{}")  # an earlier version's, replaced by this run
    config = load_config()
    counts = run_dedup([str(dataset / "train")], str(out), config.dedup, config.beam)
    assert not (out / DEDUP_LEGACY_STATS_FILE).exists() and (out / DEDUP_STATS_FILE).exists()
    assert_reads_as_one_table(out, counts["dedup_near"].records_out)
