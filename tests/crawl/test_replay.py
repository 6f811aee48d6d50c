"""The replay proxy (crawl/replay.py) and its command (`webtext replay`, crawl/cli.py) serving the
bundled sample web, fetched with http.client."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
import zlib

import pytest

from crawl.cli import register
from crawl.replay import RoutesError, load_routes, serve
from tests.sample.truth import BUNDLED

ARTICLE = "http://news.example/2017/01/with-statement-context-managers.html"


@pytest.fixture(scope="module")
def server():
    with serve(BUNDLED.web) as srv:
        yield srv


def fetch(server, url, method="GET", headers=None, timeout=5.0, origin_form=False):
    """One request through the proxy on a fresh connection: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        if origin_form:
            host, _, path = url.split("://", 1)[1].partition("/")
            conn.request(method, "/" + path, headers={"Host": host, **(headers or {})})
        else:
            conn.request(method, url, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_serves_a_page_as_forward_proxy(server):
    status, headers, body = fetch(server, ARTICLE)
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    route = server.routes.routes[ARTICLE[len("http://"):]]
    assert body == route.body.read_bytes() and int(headers["content-length"]) == len(body)
    assert ("GET", ARTICLE) in list(server.request_log)
    assert server.proxy_url == f"http://127.0.0.1:{server.port}"


def test_origin_form_routes_by_host_header_and_aliases(server):
    direct = fetch(server, ARTICLE)[2]
    assert fetch(server, ARTICLE, origin_form=True)[2] == direct
    assert fetch(server, ARTICLE.replace("//news.", "//www.news."))[2] == direct
    assert fetch(server, ARTICLE.replace("//news.example", "//NEWS.example:80"))[2] == direct
    assert "www.news.example" in server.hosts and "news.example" in server.hosts


def test_head_sends_headers_only(server):
    status, headers, body = fetch(server, ARTICLE, method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 1000


def test_unknown_host_is_502_and_unknown_path_404(server):
    status, headers, _ = fetch(server, "http://nowhere.example/a.html")
    assert status == 502 and headers["x-replay-error"] == "unknown-host"
    status, headers, _ = fetch(server, "http://news.example/no/such/page.html")
    assert status == 404 and "x-replay-error" not in headers


def test_query_strings_are_part_of_the_route(server):
    key = next(k for k in server.routes.routes if k.startswith("localgazette.test/index.php?"))
    body = fetch(server, "http://" + key)[2]
    path, query = key.split("?")
    reordered = path + "?" + "&".join(reversed(query.split("&")))  # as URL canonicalisers sort them
    assert reordered != key and fetch(server, "http://" + reordered)[2] == body
    assert fetch(server, "http://" + key.replace("section=local&", ""))[0] == 404


def test_robots_txt(server):
    status, headers, body = fetch(server, "http://news.example/robots.txt")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert b"Disallow: /private/" in body
    assert b"Crawl-delay: 1" in fetch(server, "http://slowpoke.example/robots.txt")[2]
    assert fetch(server, "http://faults.test/robots.txt")[0] == 404


def test_redirect_statuses_and_chain_followed_by_urllib(server):
    status, headers, _ = fetch(server, "http://faults.test/moved/permanent.html")
    assert status == 301 and headers["location"].startswith("http://news.example/")
    assert fetch(server, "http://faults.test/moved/temporary.html")[0] == 302
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": server.proxy_url}))
    with opener.open("http://faults.test/chain/1.html", timeout=5) as resp:
        assert resp.status == 200 and resp.url == "http://faults.test/chain/end.html"
    with pytest.raises(urllib.error.HTTPError, match="redirect"):
        opener.open("http://faults.test/loop/a.html", timeout=5)


def test_redirect_hops_exceed_any_sane_cap(server):
    url, hops = "http://faults.test/hops/00.html", 0
    while True:
        status, headers, _ = fetch(server, url)
        if status != 302:
            break
        url, hops = headers["location"], hops + 1
    assert status == 200 and hops == 25


def test_fail_first_then_ok_and_reset(server):
    server.reset()
    assert fetch(server, "http://faults.test/flaky/503.html")[0] == 503
    assert fetch(server, "http://faults.test/flaky/503.html")[0] == 200
    status, headers, _ = fetch(server, "http://faults.test/flaky/429.html")
    assert status == 429 and headers["retry-after"] == "1"
    assert fetch(server, "http://faults.test/flaky/429.html")[0] == 200
    server.reset()
    assert fetch(server, "http://faults.test/flaky/503.html")[0] == 503
    assert len(server.request_log) == 1


def test_always_failing_statuses(server):
    assert fetch(server, "http://faults.test/error/500.html")[0] == 500
    assert fetch(server, "http://faults.test/error/500.html")[0] == 500
    assert fetch(server, "http://faults.test/gone/missing.html")[0] == 404
    assert fetch(server, "http://faults.test/gone/removed.html")[0] == 410


def test_slow_page_outlasts_a_short_client_timeout(server):
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        fetch(server, "http://faults.test/slow/article.html", timeout=0.3)
    assert time.monotonic() - started < 4  # the client's 0.3 s, not the page's 5 s


def test_shutdown_is_quick_while_a_slow_answer_is_pending():
    with serve(BUNDLED.web) as srv:
        worker = threading.Thread(target=lambda: pytest.raises(Exception, fetch, srv,
                                                               "http://faults.test/slow/article.html", timeout=10))
        worker.start()
        time.sleep(0.2)
        started = time.monotonic()
    assert time.monotonic() - started < 4  # not the pending answer's 5 s
    worker.join(timeout=5)
    assert not worker.is_alive()


def test_oversized_bodies_with_and_without_content_length(server):
    status, headers, body = fetch(server, "http://faults.test/big/with-length.html")
    assert status == 200 and headers["content-length"] == "3000000" and len(body) == 3_000_000
    status, headers, body = fetch(server, "http://faults.test/big/chunked.html")
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    assert len(body) == 3_000_000 and body.startswith(b"<html>")


def test_gzip_bomb_is_small_on_the_wire_and_huge_inflated(server):
    status, headers, body = fetch(server, "http://faults.test/big/bomb.html")
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert len(body) == int(headers["content-length"]) < 60_000
    inflater = zlib.decompressobj(wbits=31)
    first = inflater.decompress(body, 2_000_000)  # stop at 2 MB: never inflate all of it
    assert len(first) == 2_000_000 and first.startswith(b"<html><body>") and inflater.unconsumed_tail
    assert server.routes.routes["faults.test/big/bomb.html"].generate["inflated_bytes"] > 50_000_000


def test_binary_files_at_html_urls(server):
    status, headers, body = fetch(server, "http://faults.test/files/report.html")
    assert headers["content-type"] == "text/html" and body.startswith(b"%PDF-")
    status, headers, body = fetch(server, "http://faults.test/files/chart.html")
    assert headers["content-type"] == "image/png" and body.startswith(b"\x89PNG\r\n\x1a\n")


def test_charset_trouble(server):
    _, headers, body = fetch(server, "http://faults.test/charset/wrong-header.html")
    assert headers["content-type"] == "text/html; charset=utf-8"
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert "Café owners say “business is up”" in body.decode("cp1252")
    _, headers, body = fetch(server, "http://faults.test/charset/meta-only.html")
    assert headers["content-type"] == "text/html"
    assert b'<meta charset="windows-1252">' in body and "—" in body.decode("cp1252")


def test_connection_reset_and_connect_refused(server):
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        fetch(server, "http://faults.test/reset.html")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("CONNECT", "news.example:443")
    resp = conn.getresponse()
    assert resp.status == 501 and resp.getheader("X-Replay-Error") == "no-connect"
    conn.close()


def test_concurrent_keep_alive_clients(server):
    """16 clients, each reusing one connection for several requests (as Scrapy does)."""
    urls = [ARTICLE, "http://techblog.example/robots.txt", "http://nowhere.example/",
            "http://faults.test/gone/missing.html", "http://faults.test/moved/permanent.html"]
    expected = {url: fetch(server, url)[:3:2] for url in urls}
    errors = []

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            for _ in range(3):
                for url in urls:
                    conn.request("GET", url)
                    resp = conn.getresponse()
                    if (resp.status, resp.read()) != expected[url]:
                        errors.append(url)
        except Exception as exc:  # collected: an exception in a thread would go unnoticed
            errors.append(repr(exc))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []


# -- routes.json validation -------------------------------------------------------------------

def _web(tmp_path, routes, hosts=None, files=("a.html",), doc_extra=None) -> Path:
    (tmp_path / "pages").mkdir()
    for name in files:
        (tmp_path / "pages" / name).write_text("<html><body>a</body></html>")
    hosts = {"a.example": {"robots": None}} if hosts is None else hosts
    doc = {"version": 1, "hosts": hosts, "routes": routes, **(doc_extra or {})}
    (tmp_path / "routes.json").write_text(json.dumps(doc))
    return tmp_path


@pytest.mark.parametrize("routes, hosts, extra, message", [
    ({"a.example/x": {"body": "a.html", "colour": "red"}}, None, None, "unknown keys ['colour']"),
    ({"a.example/x": {"status": 301}}, None, None, "needs a Location header"),
    ({"a.example/x": {"body": "missing.html"}}, None, None, "does not exist"),
    ({"a.example/x": {"body": "../routes.json"}}, None, None, "escapes"),
    ({"a.example/x": {"body": "a.html", "expect": "fine"}}, None, None, "not a crawl outcome"),
    ({"a.example/x": {"generate": {"kind": "zeros", "bytes": 5}}}, None, None, "generate.kind"),
    ({"a.example/x": {"generate": {"kind": "filler"}}}, None, None, "generate.bytes"),
    ({"a.example/x": {"fault": {"kind": "slow"}}}, None, None, "needs seconds"),
    ({"a.example/x": {"fault": {"kind": "fail_first", "times": 1}}}, None, None, "integer times and status"),
    ({"a.example/x": {"status": 999}}, None, None, "HTTP status code"),
    ({"b.example/x": {"body": "a.html"}}, None, None, "declared host"),
    ({}, {"A.example": {"robots": None}}, None, "lower-case"),
    ({}, {"a.example": {"robots": 5}}, None, "robots must be text or null"),
    ({}, {}, None, '"hosts" must be a non-empty object'),
    ({}, None, {"offsite": {"http://x.example/": "maybe"}}, '"offsite" must map'),
    ({}, None, {"version": 2}, '"version": 1'),
    ({}, None, {"extras": 1}, "unknown top-level keys"),
])
def test_broken_routes_json_is_a_clear_error(tmp_path, routes, hosts, extra, message):
    web = _web(tmp_path, routes, hosts, doc_extra=extra)
    with pytest.raises(RoutesError, match="routes.json") as err:
        load_routes(web)
    assert message in str(err.value)


def test_missing_or_unparsable_routes_file(tmp_path):
    with pytest.raises(RoutesError, match="no such file"):
        load_routes(tmp_path)
    (tmp_path / "routes.json").write_bytes(b'{"version": 1, "hosts": {')
    with pytest.raises(RoutesError, match="not valid JSON"):
        load_routes(tmp_path)
    (tmp_path / "routes.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(RoutesError, match="not valid JSON"):
        load_routes(tmp_path)


# -- CLI --------------------------------------------------------------------------------------

def _replay_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(), argparse.ArgumentParser(add_help=False))
    return parser


def test_cli_rejects_a_broken_web(tmp_path):
    parser = _replay_parser()
    (tmp_path / "routes.json").write_text("[]")
    args = parser.parse_args(["replay", "--web", str(tmp_path)])
    with pytest.raises(RoutesError, match=r"routes.json: must be an object"):
        args.func(args, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["replay", "--port", "eighty"])


def test_cli_serves_until_interrupted(capsys):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = _replay_parser().parse_args(["replay", "--port", str(port)])
    statuses = []

    def client():  # fetch one page through the running CLI, then press Ctrl-C
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{port}"}))
        try:
            for _ in range(50):
                try:
                    with opener.open(ARTICLE, timeout=5) as resp:
                        statuses.append(resp.status)
                    return
                except urllib.error.URLError:
                    time.sleep(0.1)
        finally:
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=client)
    thread.start()
    assert args.func(args, None) == 0
    thread.join()
    out = capsys.readouterr().out
    assert statuses == [200]
    assert f"proxy: http://127.0.0.1:{port}" in out and "served 1 requests" in out
