"""Address policy in a real crawl with loopback NOT allowed, and Crawl-delay.

The replay server runs in this test process and the crawler uses it as `crawl.proxy`; the
sample hosts map to a public address in `crawl.static_hosts` (it is never connected to: the
proxy is), so only the refused targets differ from a real crawl.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from crawl.replay import serve
from tests.crawl.test_crawler_support import PAGE, crawl_cli, read_log, write_url_table, write_web

PUBLIC_IP = "93.184.215.14"


def test_private_and_loopback_targets_are_refused_before_any_request(tmp_path):
    pages = {"a.html": PAGE % (b"a", b"a")}
    routes = {
        "news.example/ok.html": {"body": "a.html"},
        "news.example/to-loopback": {"status": 302, "headers": {"Location": "http://127.0.0.1/admin"}},
        "news.example/to-private": {"status": 301, "headers": {"Location": "http://10.0.0.1/"}},
        "news.example/to-intranet": {"status": 307, "headers": {"Location": "http://intranet.test/wiki"}},
        "polite.example/1.html": {"body": "a.html"},
        "polite.example/2.html": {"body": "a.html"},
        "polite.example/3.html": {"body": "a.html"},
    }
    hosts = {"news.example": {"robots": None}, "polite.example": {"robots": "User-agent: *\nCrawl-delay: 1\n"}}
    web = write_web(tmp_path / "web", hosts, routes, pages)
    expected = {
        "http://news.example/ok.html": "ok",
        "http://polite.example/1.html": "ok", "http://polite.example/2.html": "ok", "http://polite.example/3.html": "ok",
        "http://news.example/to-loopback": "blocked_address",
        "http://news.example/to-private": "blocked_address",
        "http://news.example/to-intranet": "blocked_address",
        "http://127.0.0.1:1/x": "blocked_address",
        "http://[::1]/x": "blocked_address",
        "http://localhost/x": "dns",  # not in the static table, and DNS is off
        "http://localhost/y": "dns",  # the same host again: its verdict is remembered
        "http://intranet.test/": "blocked_address",
        "http://intranet.test/again": "blocked_address",
        "http://192.168.0.1/router": "blocked_address",
    }
    write_url_table(tmp_path / "urls", sorted(expected))
    with serve(web) as server:
        static = {"news.example": PUBLIC_IP, "polite.example": PUBLIC_IP, "intranet.test": "10.20.30.40"}
        result = crawl_cli(
            "--urls", str(tmp_path / "urls"), "--out", str(tmp_path / "out"),
            settings=[f"crawl.proxy={server.proxy_url}", f"crawl.static_hosts={json.dumps(static)}",
                      "crawl.resolve_dns=false", "crawl.allow_loopback=false",
                      "crawl.concurrent_requests_per_domain=1"],
        )
        requested = [url for _, url in server.request_log]
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {r["url"]: r for r in read_log(tmp_path / "out")}
    assert {u: r["outcome"] for u, r in rows.items()} == expected
    assert rows["http://news.example/to-loopback"]["final_url"] == "http://127.0.0.1/admin"
    for url in ("http://news.example/to-intranet", "http://intranet.test/", "http://intranet.test/again"):
        assert "intranet.test resolves to 10.20.30.40 is not a public address" in rows[url]["error"], rows[url]
    assert "localhost" in rows["http://localhost/y"]["error"] and "DNS is off" in rows["http://localhost/y"]["error"]
    # Redirect sources were fetched; no refused target ever reached the proxy.
    assert "http://news.example/to-private" in requested
    refused_hosts = {"127.0.0.1", "::1", "10.0.0.1", "intranet.test", "192.168.0.1", "localhost"}
    assert not [u for u in requested if urlsplit(u).hostname in refused_hosts]
    # Crawl-delay: 1 spaces the three polite.example pages; Scrapy varies a delay by +-50%, so
    # the two gaps take at least 1 s together (without the delay: milliseconds).
    times = sorted(rows[f"http://polite.example/{i}.html"]["crawl_time"] for i in (1, 2, 3))
    assert (times[2] - times[0]).total_seconds() >= 0.9
    assert requested.count("http://polite.example/robots.txt") == 1
