"""kill -9 in the middle of a crawl, rerun the same command: nothing finished is fetched again,
every URL is logged once and every WARC file is valid. Also: --shard I/N split the work."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest

from core.lock import FolderBusyError

from crawl.crawler import shard_lock
from crawl.replay import serve
from crawl.url_table import Shard
from tests.crawl.test_crawler_support import crawl_cli, generated_web, read_log, warc_records, write_url_table


def _proxy_settings(server) -> list[str]:
    static = {host: "127.0.0.1" for host in server.hosts}
    return [f"crawl.proxy={server.proxy_url}", f"crawl.static_hosts={json.dumps(static)}",
            "crawl.resolve_dns=false", "crawl.allow_loopback=true"]


def _assert_ok_rows_point_at_their_records(out, rows):
    records = {(r["file"], r["offset"]): r for r in warc_records(out) if r["type"] == "response"}
    ok = [r for r in rows if r["outcome"] == "ok"]
    assert len(records) == len(ok)
    for row in ok:
        assert records[(row["warc_file"], row["warc_offset"])]["headers"]["WebText-Source-URL"] == row["url"]


def test_resume_after_kill_9_fetches_no_finished_url_again(tmp_path):
    web, urls = generated_web(tmp_path / "web", n_pages=30, hosts=3, slow_seconds=0.1)
    write_url_table(tmp_path / "urls", urls)
    out = tmp_path / "out"
    args = ("--urls", str(tmp_path / "urls"), "--out", str(out))
    with serve(web) as server:
        settings = _proxy_settings(server) + ["crawl.log_flush_rows=3", "crawl.concurrent_requests=2",
                                              "crawl.concurrent_requests_per_domain=1"]
        proc = crawl_cli(*args, settings=settings, wait=False)
        deadline = time.monotonic() + 60
        while len(list((out / "crawl_log").glob("*.parquet"))) < 3:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the crawl never checkpointed"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        first_run = {r["url"] for r in read_log(out)}
        assert 0 < len(first_run) < len(urls)
        torn_part = out / "crawl_log" / ".crawl-00000-of-00001-x-00009.parquet.k1ll.tmp"  # as atomic_open leaves it
        torn_part.write_bytes(b"PAR1 half a checkpoint")
        fetched_in_first_run = Counter(u for _, u in server.request_log if not u.endswith("robots.txt"))

        result = crawl_cli(*args, settings=settings)
        assert result.returncode == 0, result.stdout + result.stderr
        fetches = Counter(u for _, u in server.request_log if not u.endswith("robots.txt"))
        again = crawl_cli(*args, settings=settings)
        assert again.returncode == 0 and "this run 0 URLs" in again.stdout
        assert Counter(u for _, u in server.request_log if not u.endswith("robots.txt")) == fetches

    rows = read_log(out)
    assert Counter(r["url"] for r in rows) == Counter(urls)
    assert all(r["outcome"] == "ok" for r in rows)
    assert not torn_part.exists()
    assert all(fetches[u] == 1 for u in first_run), "a URL logged before the kill was fetched again"
    assert set(fetches) == set(urls)
    refetched = {u for u, n in fetches.items() if n > 1}
    assert refetched <= set(fetched_in_first_run) - first_run  # only work lost in the kill is redone
    _assert_ok_rows_point_at_their_records(out, rows)  # also: every WARC file is valid
    stats = json.loads((out / "crawl_stats.json").read_text())
    assert stats["complete"] and stats["stages"]["crawl"]["out"] == len(urls)


def test_two_shards_cover_the_table_exactly_once_without_colliding(tmp_path):
    web, urls = generated_web(tmp_path / "web", n_pages=24, hosts=3)
    write_url_table(tmp_path / "urls", urls, files=2)
    out = tmp_path / "out"
    with serve(web) as server:
        procs = [crawl_cli("--urls", str(tmp_path / "urls"), "--out", str(out), "--shard", f"{i}/2",
                           settings=_proxy_settings(server), wait=False) for i in range(2)]
        outputs = [p.communicate(timeout=90)[0].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        fetched = Counter(u for _, u in server.request_log if not u.endswith("robots.txt"))
    rows = read_log(out)
    assert Counter(r["url"] for r in rows) == Counter(urls) and set(fetched) == set(urls)
    per_shard = [json.loads((out / f"crawl_stats-0000{i}-of-00002.json").read_text()) for i in range(2)]
    assert sum(s["urls"] for s in per_shard) == len(urls) and all(s["complete"] for s in per_shard)
    assert min(s["urls"] for s in per_shard) > 0
    for shard in ("00000-of-00002", "00001-of-00002"):
        assert list((out / "warc").glob(f"crawl-{shard}-*.warc.gz")) and list((out / "crawl_log").glob(f"crawl-{shard}-*"))
    combined = json.loads((out / "crawl_stats.json").read_text())
    assert combined["stages"]["crawl"]["in"] == len(urls) and combined["shards_seen"] == ["00000-of-00002", "00001-of-00002"]
    _assert_ok_rows_point_at_their_records(out, rows)


def test_the_same_shard_cannot_run_twice_at_once(tmp_path):
    """A second process would cut the first one's WARC files during recovery (flock is per open file)."""
    with shard_lock(str(tmp_path), Shard(0, 1)):
        with pytest.raises(FolderBusyError, match="another `webtext crawl --shard 00000-of-00001` is writing"):
            with shard_lock(str(tmp_path), Shard(0, 1)):
                pass
        with shard_lock(str(tmp_path), Shard(1, 2)):  # other shards are independent
            pass


def test_ctrl_c_stops_gracefully_and_counts_unfinished_urls_as_pending(tmp_path):
    web, urls = generated_web(tmp_path / "web", n_pages=20, hosts=1, slow_seconds=0.3)
    write_url_table(tmp_path / "urls", urls)
    out = tmp_path / "out"
    with serve(web) as server:
        settings = _proxy_settings(server) + ["crawl.log_flush_rows=2", "crawl.concurrent_requests=2",
                                              "crawl.concurrent_requests_per_domain=1"]
        proc = crawl_cli("--urls", str(tmp_path / "urls"), "--out", str(out), settings=settings, wait=False)
        deadline = time.monotonic() + 60
        while not list((out / "crawl_log").glob("*.parquet")):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        stdout = proc.communicate(timeout=60)[0].decode()
    assert proc.returncode == 1, stdout
    assert "URLs not finished; rerun the same command to resume" in stdout
    stats = json.loads((out / "crawl_stats.json").read_text())
    crawl = stats["stages"]["crawl"]
    assert not stats["complete"] and crawl["reconciles"] and crawl["in"] == len(urls)
    assert crawl["dropped"]["pending"] == stats["missing"] > 0
    assert crawl["out"] == len(read_log(out)) == len(urls) - stats["missing"]
