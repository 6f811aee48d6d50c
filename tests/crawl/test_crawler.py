"""A real Scrapy crawl (`webtext crawl --replay`) of a web full of faults, through the replay proxy."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pyarrow.parquet as pq
import pytest
from crawl.crawl_log import SCHEMA
from tests.sample.truth import BUNDLED, expected_outcomes
from tests.crawl.test_crawler_support import (
    PAGE,
    crawl_cli,
    read_log,
    warc_fields,
    warc_records,
    write_url_table,
    write_web,
)

NEWS_ROBOTS = "User-agent: OtherBot\nDisallow: /\n\nUser-agent: *\nDisallow: /private/\n"
BLOG_ROBOTS = "User-agent: *\nDisallow: /\n\nUser-agent: webtextbot\nDisallow: /drafts/\n"  # our group wins
REDIRECT_CHAIN = {f"news.example/hop{i}": {"status": 302, "headers": {"Location": f"/hop{i + 1}"}} for i in range(12)}
REDIRECT_CHAIN["news.example/hop0"]["expect"] = "too_many_redirects"
# A loop that closes on the last hop max_redirects (10) allows is still a loop.
REDIRECT_RING = {f"news.example/ring{i}": {"status": 302, "headers": {"Location": f"/ring{(i + 1) % 11}"}} for i in range(11)}
REDIRECT_RING["news.example/ring0"]["expect"] = "redirect_loop"


def fault_web(web_dir):
    pages = {
        "a.html": PAGE % (b"a", b"a"),
        "gz.html": gzip.compress(PAGE % (b"gz", b"gz")),
        "doc.pdf": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
        "img.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(32),
        "plain.txt": b"Just some plain text, no markup at all.\n",
    }
    routes = {
        "news.example/ok.html": {"body": "a.html", "expect": "ok"},
        "news.example/gz.html": {"body": "gz.html", "headers": {"Content-Encoding": "gzip"}, "expect": "ok"},
        "news.example/octet": {"body": "a.html", "headers": {"Content-Type": "application/octet-stream"}, "expect": "ok"},
        # A 12 KB header line: over aiohttp's default 8190-byte limit, inside ours (64 KiB).
        "news.example/big-cookie.html": {"body": "a.html", "headers": {"Set-Cookie": "s=" + "x" * 12_000}, "expect": "ok"},
        "news.example/untyped-plain": {"body": "plain.txt", "headers": {"Content-Type": "text/plain"}, "expect": "not_html"},
        "news.example/pdf-as-html": {"body": "doc.pdf", "expect": "not_html"},
        "news.example/png-as-html": {"body": "img.png", "expect": "not_html"},
        "news.example/real.pdf": {"body": "doc.pdf", "headers": {"Content-Type": "application/pdf"}, "expect": "not_html"},
        "news.example/private/secret.html": {"body": "a.html", "expect": "robots"},
        "blog.example/drafts/1": {"body": "a.html", "expect": "robots"},
        "news.example/slow.html": {"body": "a.html", "fault": {"kind": "slow", "seconds": 4}, "expect": "timeout"},
        "news.example/big.html": {"generate": {"kind": "filler", "bytes": 3_000_000}, "expect": "too_large"},
        "news.example/big-chunked.html": {"generate": {"kind": "filler", "bytes": 3_000_000, "content_length": False},
                                          "expect": "too_large"},
        "news.example/bomb.html": {"generate": {"kind": "gzip_bomb", "inflated_bytes": 8_000_000}, "expect": "too_large"},
        "news.example/gone.html": {"status": 410, "expect": "http_4xx"},
        "news.example/broken.html": {"status": 500, "expect": "http_5xx"},
        "news.example/flaky.html": {"body": "a.html", "expect": "ok",
                                    "fault": {"kind": "fail_first", "times": 1, "status": 429, "headers": {"Retry-After": "1"}}},
        "news.example/reset.html": {"fault": {"kind": "reset"}, "expect": "connection"},
        "news.example/moved": {"status": 301, "headers": {"Location": "http://blog.example/post/1"}, "expect": "ok"},
        "news.example/loop-a": {"status": 302, "headers": {"Location": "/loop-b"}, "expect": "redirect_loop"},
        "news.example/loop-b": {"status": 302, "headers": {"Location": "/loop-a"}},
        "news.example/to-private": {"status": 302, "headers": {"Location": "http://10.0.0.1/admin"}, "expect": "blocked_address"},
        **REDIRECT_CHAIN,
        **REDIRECT_RING,
        "blog.example/post/1": {"body": "a.html", "expect": "ok"},
        # RFC 9309: a robots.txt answering 5xx, or not at all, disallows the host; 404 allows it.
        "down.example/robots.txt": {"status": 503},
        "down.example/page.html": {"body": "a.html", "expect": "robots"},
        "stuck.example/robots.txt": {"body": "a.html", "fault": {"kind": "slow", "seconds": 4}},
        "stuck.example/page.html": {"body": "a.html", "expect": "robots"},
        "open.example/page.html": {"body": "a.html", "expect": "ok"},
    }
    offsite = {
        "http://unknown-host.example/page": "dns",
        "http://10.1.2.3/page": "blocked_address",
        "http://169.254.169.254/latest/meta-data/": "blocked_address",
        "http://[fe80::1]/x": "blocked_address",
    }
    hosts = {"news.example": {"robots": NEWS_ROBOTS}, "blog.example": {"robots": BLOG_ROBOTS},
             "down.example": {"robots": None}, "stuck.example": {"robots": None}, "open.example": {"robots": None}}
    return write_web(web_dir, hosts, routes, pages, offsite)


def test_fault_web_crawl(tmp_path):
    """One crawl of the fault web, checked from every side."""
    web = fault_web(tmp_path / "web")
    expected = {**expected_outcomes(web), "ftp://news.example/file.txt": "invalid_url"}
    write_url_table(tmp_path / "urls", sorted(expected), files=2)
    out = tmp_path / "out"
    result = crawl_cli("--urls", str(tmp_path / "urls"), "--out", str(out), "--replay", str(web))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "RefererMiddleware" not in result.stderr  # Scrapy's warning that redirects have none
    rows = read_log(out)
    check_every_url_ends_in_its_expected_outcome(rows, expected)
    check_log_has_each_url_once_in_the_contract_schema(out, rows, expected)
    check_warc_files_are_valid_and_ok_rows_point_at_their_records(out, rows)
    check_stats_json_reconciles_with_the_log(out, rows, expected, result.stdout)


def check_every_url_ends_in_its_expected_outcome(rows, expected):
    got = {row["url"]: row["outcome"] for row in rows}
    wrong = {url: (got.get(url), want) for url, want in expected.items() if got.get(url) != want}
    assert not wrong, f"(got, expected) per URL: {wrong}"


def check_log_has_each_url_once_in_the_contract_schema(out, rows, expected):
    assert Counter(r["url"] for r in rows) == Counter(set(expected))
    for part in (out / "crawl_log").glob("*.parquet"):
        assert pq.read_schema(part).equals(SCHEMA, check_metadata=False)
    by_url = {r["url"]: r for r in rows}
    moved = by_url["http://news.example/moved"]
    assert moved["final_url"] == "http://blog.example/post/1" and moved["redirects"] == ["http://news.example/moved"]
    assert by_url["http://news.example/hop0"]["redirects"][:3] == [f"http://news.example/hop{i}" for i in range(3)]
    assert by_url["http://news.example/to-private"]["final_url"] == "http://10.0.0.1/admin"
    assert by_url["http://news.example/gone.html"]["http_status"] == 410
    assert by_url["http://news.example/flaky.html"]["fetch_seconds"] >= 1.0, "Retry-After: 1 was not waited for"
    for row in rows:
        assert (row["warc_file"] is not None) == (row["outcome"] == "ok") == (row["warc_offset"] is not None)
        assert (row["error"] is None) == (row["outcome"] == "ok")
        assert row["crawl_time"] is not None


def check_warc_files_are_valid_and_ok_rows_point_at_their_records(out, rows):
    records = warc_records(out)
    by_position = {(r["file"], r["offset"]): r for r in records}
    ok_rows = [r for r in rows if r["outcome"] == "ok"]
    responses = [r for r in records if r["type"] == "response"]
    requests = {r["headers"]["WARC-Concurrent-To"]: r for r in records if r["type"] == "request"}
    metadata = {r["headers"]["WARC-Concurrent-To"]: r for r in records if r["type"] == "metadata"}
    assert len(metadata) == len(ok_rows) == 8
    # A request + response pair per redirect hop and per final answer.
    assert len(responses) == len(requests) == 8 + sum(len(row["redirects"]) for row in ok_rows) == 9
    for row in ok_rows:
        record = by_position[(row["warc_file"], row["warc_offset"])]
        headers = record["headers"]
        assert record["type"] == "response" and headers["WARC-Target-URI"] == row["final_url"]
        assert not [name for name in headers if name.startswith("WebText-")]
        fields = warc_fields(metadata[headers["WARC-Record-ID"]]["body"])
        assert fields["WebText-Source-URL"] == row["url"]
        assert fields["WebText-Redirect-Chain"] == " ".join(row["redirects"])
        assert fields["WebText-Subreddits"] == "news,science"
        assert fields["WebText-Post-Ids"].count(",") == 1 and int(fields["WebText-Score"]) >= 3
        assert int(fields["WebText-First-Created-UTC"]) >= 1_500_000_000
        assert record["body"].startswith(b"<!doctype html>") and len(record["body"]) == row["bytes"]
        assert record["http"].get_header("Content-Encoding") is None  # stored decoded
        paired = requests[headers["WARC-Record-ID"]]
        assert paired["headers"]["WARC-Target-URI"] == row["final_url"]
        assert paired["http"].get_header("User-Agent").startswith("WebTextBot/0.1 (+")
        for hop in row["redirects"]:  # each hop's own 3xx, its Location leading on
            hop_response = next(r for r in responses if r["headers"]["WARC-Target-URI"] == hop)
            assert hop_response["http"].get_statuscode() == "301" and hop_response["http"].get_header("Location")


def check_stats_json_reconciles_with_the_log(out, rows, expected, stdout):
    stats = json.loads((out / "crawl_stats.json").read_text())
    crawl = stats["stages"]["crawl"]
    outcomes = Counter(r["outcome"] for r in rows)
    assert crawl["in"] == len(expected) and crawl["out"] == outcomes["ok"] and crawl["reconciles"]
    assert crawl["dropped"] == {k: v for k, v in outcomes.items() if k != "ok"}
    assert stats["complete"] and stats["missing"] == 0
    assert "too_large=3" in stdout and "stage" in stdout  # the summary table


def test_bundled_sample_web_outcomes(tmp_path):
    """The bundled offline sample (what `make crawl` crawls) gives every outcome it declares."""
    expected = expected_outcomes(BUNDLED.web)
    write_url_table(tmp_path / "urls", sorted(expected))
    result = crawl_cli("--urls", str(tmp_path / "urls"), "--out", str(tmp_path / "out"), "--replay", str(BUNDLED.web))
    assert result.returncode == 0, result.stdout + result.stderr
    check_every_url_ends_in_its_expected_outcome(read_log(tmp_path / "out"), expected)
    warc_records(tmp_path / "out")  # all valid


def test_requests_through_a_proxy_share_its_keep_alive_connections(tmp_path):
    """Through the proxy, connections are kept alive and reused per target host (at most
    concurrent_requests_per_domain each), not opened per request."""
    from crawl.replay import serve
    from tests.crawl.test_crawler_support import generated_web

    web, urls = generated_web(tmp_path / "web", 120, hosts=4)
    write_url_table(tmp_path / "urls", urls)
    with serve(web) as server:
        static = json.dumps({f"site{i}.example": "127.0.0.1" for i in range(4)})
        result = crawl_cli("--urls", str(tmp_path / "urls"), "--out", str(tmp_path / "out"), settings=[
            f"crawl.proxy={server.proxy_url}", f"crawl.static_hosts={static}", "crawl.resolve_dns=false",
            "crawl.allow_loopback=true", "crawl.concurrent_requests=8", "crawl.concurrent_requests_per_domain=2"])
        connections, served = server.connections, len(server.request_log)
    assert result.returncode == 0, result.stdout + result.stderr
    assert Counter(r["outcome"] for r in read_log(tmp_path / "out")) == {"ok": 120}
    assert served == 124 and connections <= 8, connections  # 120 pages + 4 robots.txt
