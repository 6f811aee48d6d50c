"""kill -9 in the middle of a crawl, rerun the same command: nothing finished is fetched again,
every URL is logged once and every WARC file is valid. Also: --shard I/N split the work, and
a run under another --shard setting resumes from the logs of every earlier one."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.lock import FolderBusyError

from crawl.crawl_log import SCHEMA
from crawl.crawler import shard_lock
from crawl.replay import serve
from crawl.url_table import Shard
from crawl.warc import record_end
from tests.crawl.test_crawler_support import crawl_cli, generated_web, read_log, warc_records, write_url_table


def _proxy_settings(server) -> list[str]:
    static = {host: "127.0.0.1" for host in server.hosts}
    return [f"crawl.proxy={server.proxy_url}", f"crawl.static_hosts={json.dumps(static)}",
            "crawl.resolve_dns=false", "crawl.allow_loopback=true"]


def _source_urls(out) -> dict[tuple[str, int], str]:
    """(WARC file, offset) of each final response -> the source URL its metadata record names
    (WebText-Source-URL), or (outputs before metadata records) its own header of that name."""
    records = warc_records(out)
    by_id = {r["headers"]["WARC-Record-ID"]: r for r in records}
    urls = {}
    for record in records:
        if record["type"] == "metadata":
            fields = dict(line.split(": ", 1) for line in record["body"].decode().splitlines() if ": " in line)
            response = by_id[record["headers"]["WARC-Concurrent-To"]]
            urls[(response["file"], response["offset"])] = fields["WebText-Source-URL"]
        elif record["type"] == "response" and "WebText-Source-URL" in record["headers"]:
            urls[(record["file"], record["offset"])] = record["headers"]["WebText-Source-URL"]
    return urls


def _assert_ok_rows_point_at_their_records(out, rows):
    sources = _source_urls(out)
    ok = [r for r in rows if r["outcome"] == "ok"]
    assert len(sources) == len(ok)
    for row in ok:
        assert sources[(row["warc_file"], row["warc_offset"])] == row["url"]


def test_resume_after_kill_9_fetches_no_finished_url_again(tmp_path):
    web, urls = generated_web(tmp_path / "web", n_pages=30, hosts=3, slow_seconds=0.1)
    write_url_table(tmp_path / "urls", urls)
    out = tmp_path / "out"
    args = ("--urls", str(tmp_path / "urls"), "--out", str(out))
    with serve(web) as server:
        settings = _kill_after_log_parts(server, args, out, 3)
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


def _fetches(server) -> Counter:
    return Counter(u for _, u in server.request_log if not u.endswith("robots.txt"))


def _crawl_shards(urls_dir, out, server, shards, at_once=False) -> list[str]:
    """`webtext crawl --shard S` for each S, one after the other or all at once; their stdout."""
    def start(shard):
        return crawl_cli("--urls", str(urls_dir), "--out", str(out), "--shard", shard,
                         settings=_proxy_settings(server), wait=False)

    procs, outputs = [], []
    for shard in shards:
        procs.append(start(shard))
        if not at_once:
            outputs.append(procs[-1].communicate(timeout=90)[0].decode())
    if at_once:
        outputs = [proc.communicate(timeout=90)[0].decode() for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * len(shards), outputs
    return outputs


def _assert_each_url_logged_and_stored_once(out, urls):
    rows = read_log(out)
    assert Counter(r["url"] for r in rows) == Counter(urls)
    responses = Counter(_source_urls(out).values())
    assert responses == Counter(urls), "a URL has a second response record"
    _assert_ok_rows_point_at_their_records(out, rows)


def _shard_stats(out, shard: str) -> dict:
    parsed = Shard.parse(shard)
    name = "crawl_stats.json" if parsed.count == 1 else f"crawl_stats-{parsed.tag}.json"
    return json.loads((out / name).read_text())


@pytest.mark.parametrize("first, then", [(["0/1"], ["0/2", "1/2"]), (["0/2", "1/2"], ["0/1"])])
def test_another_shard_setting_resumes_from_the_logs_of_every_earlier_one(tmp_path, first, then):
    """A full crawl, then both halves into the same --out (and the reverse): nothing is fetched
    or stored twice, and every stats file counts each URL once."""
    web, urls = generated_web(tmp_path / "web", n_pages=24, hosts=3)
    write_url_table(tmp_path / "urls", urls)
    out = tmp_path / "out"
    with serve(web) as server:
        _crawl_shards(tmp_path / "urls", out, server, first)
        fetched = _fetches(server)
        later = _crawl_shards(tmp_path / "urls", out, server, then)
        assert _fetches(server) == fetched == Counter(urls), "a finished URL was fetched again"
    assert all("this run 0 URLs" in stdout for stdout in later), later
    _assert_each_url_logged_and_stored_once(out, urls)
    for shard in then:
        stats = _shard_stats(out, shard)
        assert stats["complete"] and stats["duplicate_rows"] == 0 and stats["logged"] == stats["urls"] > 0
        assert stats["stages"]["crawl"]["in"] == stats["stages"]["crawl"]["out"] == stats["urls"]
    assert sum(_shard_stats(out, shard)["urls"] for shard in then) == len(urls)
    combined = json.loads((out / "crawl_stats.json").read_text())
    assert combined["stages"]["crawl"]["in"] == combined["stages"]["crawl"]["out"] == len(urls)
    assert combined["stages"]["crawl"]["reconciles"] and combined["duplicate_rows"] == 0


def test_kill_9_under_one_shard_setting_resumes_under_another(tmp_path):
    """A full crawl killed mid-way leaves WARC records no log row refers to; both halves, run
    at once, cut them off and fetch only what the killed run did not log."""
    web, urls = generated_web(tmp_path / "web", n_pages=30, hosts=3, slow_seconds=0.1)
    write_url_table(tmp_path / "urls", urls)
    out = tmp_path / "out"
    with serve(web) as server:
        settings = _kill_after_log_parts(server, ("--urls", str(tmp_path / "urls"), "--out", str(out)), out, 2)
        logged_before_kill = {r["url"] for r in read_log(out)}
        assert 0 < len(logged_before_kill) < len(urls)
        # A response written but not yet logged when the kill came, for certain: a copy of a logged one.
        row = next(r for r in read_log(out) if r["outcome"] == "ok")
        warc_file = out / "warc" / row["warc_file"]
        data = warc_file.read_bytes()
        with open(warc_file, "ab") as fh:
            fh.write(data[row["warc_offset"]:record_end(str(warc_file), row["warc_offset"])])
        before = _fetches(server)

        _crawl_shards(tmp_path / "urls", out, server, ["0/2", "1/2"], at_once=True)
        refetched = _fetches(server) - before
    assert set(refetched) == set(urls) - logged_before_kill, "a URL logged before the kill was fetched again"
    _assert_each_url_logged_and_stored_once(out, urls)
    combined = json.loads((out / "crawl_stats.json").read_text())
    assert combined["stages"]["crawl"]["in"] == len(urls) and combined["duplicate_rows"] == 0
    assert combined["shards_seen"] == ["00000-of-00001", "00000-of-00002", "00001-of-00002"]


def test_duplicate_rows_an_older_run_left_are_counted_once_and_reported(tmp_path):
    """Rows an older version wrote for URLs already logged (a half crawled after the full
    crawl refetched them): each URL counts once, by its first row; the extra rows are reported."""
    web, urls = generated_web(tmp_path / "web", n_pages=24, hosts=3)
    write_url_table(tmp_path / "urls", urls)
    out = tmp_path / "out"
    half = Shard(1, 2)
    with serve(web) as server:
        _crawl_shards(tmp_path / "urls", out, server, ["0/1"])
        log_rows = [r for r in read_log(out) if half.owns(r["url"].split("://", 1)[1])]
        older_run = [{**r, "outcome": "http_5xx", "warc_file": None, "warc_offset": None} for r in log_rows]
        pq.write_table(pa.Table.from_pylist(older_run, schema=SCHEMA),
                       out / "crawl_log" / f"crawl-{half.tag}-29991231T235959Z-0a0a0a-00000.parquet")
        fetched = _fetches(server)
        result = crawl_cli("--urls", str(tmp_path / "urls"), "--out", str(out), "--shard", "1/2",
                           settings=_proxy_settings(server))
        assert _fetches(server) == fetched
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"holds {len(older_run)} extra rows for URLs logged before" in result.stderr
    stats = _shard_stats(out, "1/2")
    assert stats["duplicate_rows"] == len(older_run) > 0 and stats["complete"]
    assert stats["stages"]["crawl"]["in"] == stats["stages"]["crawl"]["out"] == stats["urls"] == len(older_run)
    combined = json.loads((out / "crawl_stats.json").read_text())
    assert combined["duplicate_rows"] == len(older_run)
    assert combined["stages"]["crawl"]["in"] == combined["stages"]["crawl"]["out"] == len(urls)
    assert combined["stages"]["crawl"]["dropped"] == {} and combined["stages"]["crawl"]["reconciles"]


def test_a_shard_of_another_count_running_now_is_refused_before_anything_is_touched(tmp_path):
    """Shards of different counts share URLs: running them at once would fetch those twice."""
    write_url_table(tmp_path / "urls", [f"http://site.example/p/{i}.html" for i in range(8)])
    out = tmp_path / "out"
    (out / "warc").mkdir(parents=True)
    unlogged = out / "warc" / "crawl-00000-of-00001-20000101T000000Z-0b0b0b-00000.warc.gz"
    unlogged.write_bytes(b"records the running crawl has not logged yet")
    with shard_lock(str(out), Shard(0, 1)):
        result = crawl_cli("--urls", str(tmp_path / "urls"), "--out", str(out), "--shard", "1/2")
    assert result.returncode == 1
    assert "another `webtext crawl --shard 00000-of-00001` is writing" in result.stderr
    assert "wait for it to finish, or run only shards of one count at once" in result.stderr
    assert unlogged.read_bytes() == b"records the running crawl has not logged yet"
    assert not (out / "crawl_log").exists()


def _kill_after_log_parts(server, args, out, parts: int) -> list[str]:
    """Start a slow crawl, kill -9 it once it has logged `parts` log parts (3 rows each), and
    return the crawl settings it ran with (for the resuming runs)."""
    settings = _proxy_settings(server) + ["crawl.log_flush_rows=3", "crawl.concurrent_requests=2",
                                          "crawl.concurrent_requests_per_domain=1"]
    proc = crawl_cli(*args, settings=settings, wait=False)
    deadline = time.monotonic() + 60
    while len(list((out / "crawl_log").glob("*.parquet"))) < parts:
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "the crawl never checkpointed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    return settings
