"""The dataset card's front matter: a finished dataset folder is a Hugging Face dataset that
`datasets.load_dataset(DIR)` loads (three splits, `val` as validation; the audit table `dropped/`
as a second config) without a warning; the card's link-rot section from the crawl's crawl_stats.json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from crawl.crawl_log import SCHEMA as LOG_SCHEMA
from crawl.report import crawl_report
from shards import card
from shards.split import SPLITS
from shards.writer import DROPPED_SCHEMA, SCHEMA, shard_bytes
from tests.shards.conftest import build

# Loads DIR [CONFIG] with `datasets` in a fresh process, offline (the settings are read at import),
# and prints the splits' row counts, ids and columns plus every warning and log record at WARNING
# or above that loading produced.
LOAD = r"""
import json, logging, sys, warnings
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(f"{record.name}: {record.getMessage()}")
logging.getLogger().addHandler(Keep(logging.WARNING))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import datasets
    loaded = datasets.load_dataset(*sys.argv[1:])
print(json.dumps({
    "splits": {name: {"rows": split.num_rows, "ids": sorted(value or "" for value in split["id"]),
                      "columns": split.column_names}
               for name, split in loaded.items()},
    "warnings": [f"{w.category.__name__}: {w.message}" for w in caught] + records,
}))
"""


def load_dataset(tmp_path, *args: str) -> dict:
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    result = subprocess.run([sys.executable, "-c", LOAD, *args], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def card_metadata(directory: str) -> dict:
    with open(os.path.join(directory, card.CARD), encoding="utf-8") as fh:
        text = fh.read()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


def test_front_matter_describes_the_dataset(built):
    out, manifest = built
    metadata = card_metadata(out)
    assert metadata["language"] == manifest["config"]["extract"]["languages"] == ["en"]
    assert metadata["size_categories"] == ["n<1K"]
    assert metadata["license"] == "other" and metadata["license_link"] == card.CARD
    assert metadata["task_categories"] == ["text-generation"]
    default = metadata["configs"][0]
    assert default["config_name"] == "default" and default["default"] is True
    assert default["data_files"] == [{"split": "train", "path": "train/*.parquet"},
                                     {"split": "validation", "path": "val/*.parquet"},
                                     {"split": "test", "path": "test/*.parquet"}]
    assert card.audit_folders(manifest) == ["dropped"]
    assert metadata["configs"][1:] == [{"config_name": "dropped",
                                        "data_files": [{"split": "dropped", "path": "dropped/*.parquet"}]}]


def test_every_split_folder_has_a_hugging_face_name():
    assert list(card.HF_SPLITS) == list(SPLITS)


@pytest.mark.parametrize("documents, category", [
    (0, "n<1K"), (999, "n<1K"), (1_000, "1K<n<10K"), (250_000, "100K<n<1M"), (8_000_000, "1M<n<10M"),
    (10 ** 12 - 1, "100B<n<1T"), (10 ** 12, "n>1T")])
def test_size_category(documents, category):
    assert card.size_category(documents) == category


def test_datasets_loads_the_three_splits_without_a_warning(built, tmp_path):
    out, manifest = built
    loaded = load_dataset(tmp_path, out)
    assert loaded["warnings"] == []
    assert list(loaded["splits"]) == ["train", "validation", "test"]
    for split, hf_split in card.HF_SPLITS.items():
        got = loaded["splits"][hf_split]
        assert got["rows"] == manifest["splits"][split]["rows"] > 0
        assert got["ids"] == sorted(pd.read_parquet(os.path.join(out, split))["id"])
        assert got["columns"] == SCHEMA.names


def test_the_audit_table_is_a_config_of_its_own(built, tmp_path):
    """DIR/dropped/ (the documents the build dropped, a schema of its own) is the config `dropped`:
    never part of the splits, and the split folders still read with pandas."""
    out, manifest = built
    assert manifest["dropped"]["rows"] > 0
    loaded = load_dataset(tmp_path, out, "dropped")
    assert loaded["warnings"] == []
    assert list(loaded["splits"]) == ["dropped"]
    assert loaded["splits"]["dropped"]["rows"] == manifest["dropped"]["rows"] == len(pd.read_parquet(
        os.path.join(out, "dropped")))
    assert loaded["splits"]["dropped"]["columns"] == DROPPED_SCHEMA.names
    assert len(pd.read_parquet(os.path.join(out, "train"))) == manifest["splits"]["train"]["rows"]


def test_splits_without_documents_are_left_out(crawl, tmp_path):
    """`datasets` cannot load an empty split: a corpus that fills only train maps train alone."""
    out = str(tmp_path / "dataset")
    manifest = build(["build.val_fraction=0", "build.test_fraction=0", "build.min_val_docs=0", "build.min_test_docs=0"],
                     crawl.root, out)
    assert manifest["splits"]["val"]["rows"] == manifest["splits"]["test"]["rows"] == 0
    assert card.loadable_splits(manifest) == ["train"]
    loaded = load_dataset(tmp_path, out)
    assert loaded["warnings"] == []
    assert {name: split["rows"] for name, split in loaded["splits"].items()} == {"train": manifest["rows"]}


def test_an_emptied_shard_does_not_break_loading(built, tmp_path):
    """A shard can lose every row (decontamination): written without row groups, `datasets`
    skips it instead of failing on a batch size of 0."""
    source, manifest = built
    out = tmp_path / "dataset"
    shutil.copytree(source, out)
    emptied = next(shard for shard in manifest["shards"] if shard["split"] == "train")
    (out / emptied["path"]).write_bytes(shard_bytes(SCHEMA.empty_table(), 2, 3))
    assert len(pd.read_parquet(out / emptied["path"])) == 0
    loaded = load_dataset(tmp_path, str(out))
    assert loaded["warnings"] == []
    assert loaded["splits"]["train"]["rows"] == manifest["splits"]["train"]["rows"] - emptied["rows"]


def _link_rot_report(tmp_path) -> dict:
    """A crawl_report (crawl/report.py) of 4 links: posted 2011 (live, archived) and 2016 (lost twice)."""
    rows = [{"url": url, "outcome": outcome, "source": source, "first_created_utc": created}
            for url, outcome, source, created in [("https://a.com/1", "ok", "live", 1_300_000_000),
                                                   ("https://a.com/2", "ok", "archive", 1_300_000_000),
                                                   ("https://b.com/1", "dns", "live", 1_460_000_000),
                                                   ("https://b.com/2", "http_4xx", "live", 1_460_000_000)]]
    part = tmp_path / "crawl-00000-of-00001-r-00000.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=LOG_SCHEMA), part)
    return crawl_report([str(part)], top_domains=5)


def test_the_crawl_report_is_read_beside_the_warc_folder(tmp_path, caplog):
    report = _link_rot_report(tmp_path)
    crawl_dir = tmp_path / "crawl"
    (crawl_dir / "warc").mkdir(parents=True)
    assert card.crawl_report_beside(str(crawl_dir / "warc")) is None  # WARCs from elsewhere
    (crawl_dir / card.CRAWL_STATS).write_text(json.dumps({"stages": {}}))
    assert card.crawl_report_beside(str(crawl_dir / "warc")) is None  # a crawl by an older version
    (crawl_dir / card.CRAWL_STATS).write_text(json.dumps({"stages": {}, "crawl_report": report}))
    assert card.crawl_report_beside(str(crawl_dir / "warc")) == report
    assert card.crawl_report_beside(str(crawl_dir / "warc") + "/") == report
    assert card.crawl_report_beside(str(crawl_dir)) == report  # WARC files beside the stats
    caplog.set_level("WARNING", logger="shards.card")
    (crawl_dir / card.CRAWL_STATS).write_text(json.dumps({"crawl_report": {"urls": 3}}))
    assert card.crawl_report_beside(str(crawl_dir / "warc")) is None
    (crawl_dir / card.CRAWL_STATS).write_text("{half a file")
    assert card.crawl_report_beside(str(crawl_dir / "warc")) is None
    assert [record.getMessage().rsplit(": ", 1)[1] for record in caplog.records] == [
        "the dataset card leaves out the crawl's link rot"] * 2
    assert "without by_year, lost, lost_share" in caplog.records[0].getMessage()


def test_the_card_summarises_the_crawls_link_rot(crawl, built, tmp_path):
    """A build whose --warc crawl folder has crawl_stats.json with a crawl_report: the manifest
    keeps the report and the card has a link-rot section, still a loadable Hugging Face folder.
    Without one (the `built` fixture), neither has it."""
    assert built[1]["crawl_report"] is None
    assert "## Link rot" not in open(os.path.join(built[0], card.CARD), encoding="utf-8").read()
    report = _link_rot_report(tmp_path)
    crawl_dir = tmp_path / "crawl"
    shutil.copytree(os.path.join(crawl.root, "warc"), crawl_dir / "warc")
    (crawl_dir / card.CRAWL_STATS).write_text(json.dumps({"stages": {}, "crawl_report": report}))
    out = str(tmp_path / "dataset")
    manifest = build([], str(crawl_dir), out)
    assert manifest["crawl_report"] == report
    with open(os.path.join(out, card.CARD), encoding="utf-8") as fh:
        text = fh.read()
    assert ("The crawl behind these documents tried 4 links posted on Reddit: 1\n(25.0%) were fetched live, "
            "1 (25.0%) were\nrecovered from a web archive and 2 (50.0%) were lost for good") in text
    assert "| 2011 | 2 | 1 | 1 | 0 | 0.0% |\n| 2016 | 2 | 0 | 0 | 2 | 100.0% |\n" in text
    assert text.index("## Link rot") < text.index("## Sources")
    loaded = load_dataset(tmp_path, out)
    assert loaded["warnings"] == []
    assert {name: split["rows"] for name, split in loaded["splits"].items()} == {
        card.HF_SPLITS[split]: manifest["splits"][split]["rows"] for split in SPLITS}
