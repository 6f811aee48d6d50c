"""Broken inputs to `webtext crawl` fail early with an error that says what is wrong."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawl.url_table import LEGACY_STATS_FILE, STATS_FILE, read_url_table
from tests.crawl.test_crawler_support import mark_harvest_complete, write_url_table
from webtext.cli import main


def _crawl(capsys, *args: str) -> tuple[int, str]:
    try:
        rc = main(["crawl", *args])
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


@pytest.mark.parametrize("shard", ["2/2", "1/0", "x", "1", "-1/3", "0/2/4"])
def test_bad_shard_values_are_usage_errors(tmp_path, capsys, shard):
    rc, text = _crawl(capsys, "--urls", str(tmp_path), "--out", str(tmp_path / "o"), "--shard", shard)
    assert rc == 2 and "--shard" in text and "I/N" in text


def _table(**overrides):
    columns = {
        "url": ["http://a.example/1", "http://a.example/2"], "url_key": ["a.example/1", "a.example/2"],
        "score": [3, 4], "post_ids": [["x"], ["y"]], "subreddits": [["s"], ["s"]],
        "first_created_utc": [1, 2],
    }
    columns.update(overrides)
    return pa.table({k: v for k, v in columns.items() if v is not None})


def _harvested(directory, table, name="urls-0.parquet", urls=None):
    """`table` as the only URL file of a completed harvest (stats counting `urls`, default its rows)."""
    directory.mkdir()
    pq.write_table(table, directory / name)
    mark_harvest_complete(directory, table.num_rows if urls is None else urls)


@pytest.mark.parametrize("make,message", [
    (lambda d: None, "does not exist"),
    (lambda d: d.mkdir(), "no urls-*.parquet files"),
    (lambda d: (d.mkdir(), (d / "urls-00000.parquet").write_bytes(b"not parquet at all"), mark_harvest_complete(d, 2)),
     "not a readable Parquet file"),
    (lambda d: _harvested(d, _table().slice(0, 0)), "has no rows"),
    (lambda d: _harvested(d, _table(post_ids=None, score=None)), "lacks column(s) post_ids, score"),
    (lambda d: _harvested(d, _table(url_key=["k", "k"])), "url_key is not unique"),
    (lambda d: _harvested(d, _table(url=["http://a.example/1", None])), "null url"),
])
def test_missing_empty_or_ill_formed_url_tables_are_clear_errors(tmp_path, capsys, make, message):
    make(tmp_path / "urls")
    rc, text = _crawl(capsys, "--urls", str(tmp_path / "urls"), "--out", str(tmp_path / "out"))
    assert rc == 1 and message in text, text
    assert not (tmp_path / "out").exists()  # nothing was started


def _stats(directory):
    return directory / STATS_FILE


@pytest.mark.parametrize("fault,message", [
    # a harvest that failed or was killed before it published: no stats file
    (lambda d: _stats(d).unlink(), f"{STATS_FILE} is missing"),
    (lambda d: _stats(d).write_text('{"stages": {"harv'), f"{STATS_FILE} is unreadable"),
    (lambda d: _stats(d).write_text('{"stages": {}, "urls": 2, "complete": true}'), "does not say the harvest"),
    (lambda d: _stats(d).write_text(_stats(d).read_text().replace('"complete": true', '"complete": false')),
     "does not say the harvest"),
    (lambda d: _stats(d).write_text(_stats(d).read_text().replace('"reconciles": true', '"x": 0').replace(
        '"in": 2', '"in": 3')), "does not say the harvest"),
    # URL files added or removed after the harvest
    (lambda d: (d / "urls-00001.parquet").unlink(), f"holds 1 URL rows but its {STATS_FILE} counts 2"),
    (lambda d: write_url_table(d / "extra", ["http://c.example/"]).joinpath("urls-00000.parquet").rename(
        d / "urls-00002.parquet"), f"holds 3 URL rows but its {STATS_FILE} counts 2"),
])
def test_a_url_folder_not_proven_complete_is_refused(tmp_path, capsys, fault, message):
    urls = write_url_table(tmp_path / "urls", ["http://a.example/1", "http://b.example/2"], files=2)
    fault(urls)
    rc, text = _crawl(capsys, "--urls", str(urls), "--out", str(tmp_path / "out"))
    assert rc == 1, text
    error = text.strip().splitlines()[-1]
    assert error.startswith("webtext crawl: error: ") and message in error, text
    assert f"rerun `webtext harvest --out {urls}`" in error
    assert not (tmp_path / "out").exists()  # nothing was started


def test_stats_of_a_harvest_before_the_complete_key_still_prove_a_folder(tmp_path):
    """Earlier versions wrote harvest_stats.json (no leading `_`) last too, without `complete`:
    counts that reconcile and a `urls` count equal to the rows present are its proof."""
    urls = write_url_table(tmp_path / "urls", ["http://a.example/1", "http://b.example/2"])
    legacy = _stats(urls).rename(urls / LEGACY_STATS_FILE)
    stats = json.loads(legacy.read_text())
    del stats["complete"]
    legacy.write_text(json.dumps(stats))
    assert read_url_table(str(urls)).num_rows == 2
    stats["urls"] = 3
    legacy.write_text(json.dumps(stats))
    with pytest.raises(ValueError, match=f"holds 2 URL rows but its {LEGACY_STATS_FILE} counts 3"):
        read_url_table(str(urls))


def test_a_replay_dir_without_routes_is_a_clear_error(tmp_path, capsys):
    write_url_table(tmp_path / "urls", ["http://a.example/1"])
    rc, text = _crawl(capsys, "--urls", str(tmp_path / "urls"), "--out", str(tmp_path / "out"),
                      "--replay", str(tmp_path / "no-web"))
    assert rc == 1 and "routes.json: no such file" in text


@pytest.mark.parametrize("override,message", [
    ("crawl.static_hosts={intranet.test: nope}", "does not appear to be an IPv4 or IPv6 address"),
    ("crawl.download_timeout=0", "crawl.download_timeout"),
    ("crawl.max_body_bytes=-5", "crawl.max_body_bytes"),
    ("crawl.concurrent_requests=many", "crawl.concurrent_requests"),
    ("crawl.no_such_knob=1", "crawl.no_such_knob: unknown key"),
    ("crawl.warc_gzip_level=10", "crawl.warc_gzip_level"),
    ("crawl.warc_gzip_level=fast", "crawl.warc_gzip_level"),
    ("crawl.proxy=socks5://proxy.test:1080", "proxy must look like http://host:port"),
    ("crawl.proxy=http://proxy.test:8080/some/path", "proxy must look like http://host:port"),
    ("crawl.proxy=http://proxy.test:99999", "crawl.proxy"),
    ("crawl.proxy=http://user:secret@proxy.test:8080", "credentials in the URL are not supported"),
])
def test_bad_crawl_config_values_are_refused(tmp_path, capsys, override, message):
    write_url_table(tmp_path / "urls", ["http://a.example/1"])
    rc, text = _crawl(capsys, "--urls", str(tmp_path / "urls"), "--out", str(tmp_path / "out"), "--set", override)
    assert rc == 2 and message in text, text
