"""`webtext crawl` with its URL table and its output on an object store (a real S3 server, moto,
on 127.0.0.1): the crawl runs in a local work folder and publishes WARC files, then log parts,
then stats; a rerun, on this machine or another, fetches nothing published again, and completes
a publish that stopped midway."""

from __future__ import annotations

import io
import json
from collections import Counter

import pyarrow.parquet as pq
import pytest

from crawl.replay import serve
from tests.crawl.test_crawler_support import crawl_cli, generated_web, write_url_table
from tests.s3 import S3Server


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server.start(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.stop()


def _settings(server, work) -> list[str]:
    static = {host: "127.0.0.1" for host in server.hosts}
    return [f"crawl.proxy={server.proxy_url}", f"crawl.static_hosts={json.dumps(static)}", "crawl.resolve_dns=false",
            "crawl.allow_loopback=true", "crawl.log_flush_rows=4", f"crawl.local_work_dir={work}"]


def _fetches(server) -> Counter:
    return Counter(u for _, u in server.request_log if not u.endswith("robots.txt"))


def _remote_log(s3, prefix: str) -> list[dict]:
    rows = []
    for key in s3.keys(f"{prefix}/crawl_log/"):
        rows.extend(pq.read_table(io.BytesIO(s3.get(key))).to_pylist())
    return rows


def test_a_crawl_reads_and_writes_s3_and_resumes_from_what_was_published(s3, tmp_path):
    web, urls = generated_web(tmp_path / "web", n_pages=12, hosts=3)
    s3.upload_tree(write_url_table(tmp_path / "urls", urls, files=2), "t1/urls")
    args = ("--urls", s3.url("t1", "urls"), "--out", s3.url("t1", "crawl"))
    with serve(web) as server:
        first = crawl_cli(*args, settings=_settings(server, tmp_path / "work1"), beam_args=s3.options())
        assert first.returncode == 0, first.stdout + first.stderr
        fetched = _fetches(server)
        assert fetched == Counter(urls)
        keys = s3.keys("t1/crawl/")
        assert "t1/crawl/crawl_stats.json" in keys and "t1/crawl/crawl_report.md" in keys
        assert any(k.startswith("t1/crawl/warc/") and k.endswith(".warc.gz") for k in keys)
        rows = _remote_log(s3, "t1/crawl")
        assert Counter(r["url"] for r in rows) == Counter(urls) and {r["outcome"] for r in rows} == {"ok"}
        assert {f"t1/crawl/warc/{r['warc_file']}" for r in rows} <= set(keys)  # every row's WARC file is there
        stats = json.loads(s3.get("t1/crawl/crawl_stats.json"))
        assert stats["complete"] and stats["stages"]["crawl"]["out"] == len(urls)
        assert not list((tmp_path / "work1" / "warc").glob("*.warc.gz"))  # published, then removed locally

        assert not list((tmp_path / "work1" / "crawl_log").glob("*.parquet"))  # the bucket holds them now

        # The bucket lost a log part and the stats (emptied, replaced, a failed copy): the bucket is
        # the truth, so the rerun fetches exactly that part's URLs again and publishes them.
        lost_part = s3.keys("t1/crawl/crawl_log/")[0]
        lost_urls = Counter(row["url"] for row in pq.read_table(io.BytesIO(s3.get(lost_part))).to_pylist())
        s3.client().delete_objects(Bucket=s3.bucket, Delete={"Objects": [{"Key": lost_part},
                                                                          {"Key": "t1/crawl/crawl_stats.json"}]})
        again = crawl_cli(*args, settings=_settings(server, tmp_path / "work1"), beam_args=s3.options())
        assert again.returncode == 0 and f"this run {sum(lost_urls.values())} URLs" in again.stdout, again.stdout + again.stderr
        fetched = _fetches(server)
        assert fetched == Counter(urls) + lost_urls
        assert json.loads(s3.get("t1/crawl/crawl_stats.json"))["complete"]

        # Another machine (an empty work folder), another shard setting: resumes from the bucket alone.
        other = crawl_cli(*args, "--shard", "1/2", settings=_settings(server, tmp_path / "work2"),
                          beam_args=s3.options())
        assert other.returncode == 0 and "this run 0 URLs" in other.stdout, other.stdout + other.stderr
        assert _fetches(server) == fetched, "a published URL was fetched again"
    assert Counter(r["url"] for r in _remote_log(s3, "t1/crawl")) == Counter(urls)
    combined = json.loads(s3.get("t1/crawl/crawl_stats.json"))
    assert combined["stages"]["crawl"]["in"] == combined["stages"]["crawl"]["out"] == len(urls)
    assert combined["duplicate_rows"] == 0


@pytest.mark.parametrize("where", ["urls", "out"])
def test_wrong_s3_credentials_are_a_one_line_error_naming_the_path(s3, tmp_path, where):
    urls = s3.url("t2", "urls") if where == "urls" else str(write_url_table(tmp_path / "urls", ["http://a.example/1"]))
    if where == "urls":
        s3.upload_tree(write_url_table(tmp_path / "urls", ["http://a.example/1"]), "t2/urls")
    result = crawl_cli("--urls", urls, "--out", s3.url("t2", "crawl"),
                       settings=[f"crawl.local_work_dir={tmp_path / 'work'}"],
                       beam_args=s3.options(secret_key="not-the-secret"))
    assert result.returncode == 1, result.stdout + result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("webtext crawl: error: s3://webtext-test/t2/"), result.stderr
    assert "denied" in error and "--s3_secret_access_key" in error
    assert not s3.keys("t2/crawl/")
