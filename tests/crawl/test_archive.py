"""Archive recovery (crawl/archive.py) against a real Wayback server: pywb on 127.0.0.1.

One collection is built from WARC files written here with pages of the bundled sample web:
URLs dead live but archived, several captures per URL (the latest inside the window wins),
captures only after the window, a redirect capture, a capture indexed under another URL and
a truncated capture. pywb's `wayback` serves it as CDX + raw (`id_`) replay; pywb's
`warcserver` answers CDX queries the way Common Crawl's index server (also pywb) does, and a
byte-range server here hands out the WARC records. A third server answers CDX queries with
HTML, nothing, garbage or 429s. pywb runs from its own virtualenv (.venv-pywb, `make pywb`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from urllib.request import urlopen

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from crawl.archive import (
    Capture,
    ArchiveError,
    choose_capture,
    cdx_query_url,
    is_archive_redirect,
    parse_cdx,
    restore_wayback_headers,
)
from crawl.config import ArchiveConfig
from tests.crawl.test_crawler_support import REPO, crawl_cli, read_log, warc_fields, warc_records, write_url_table, write_web
from tests.sample.truth import BUNDLED, dump_truth, expected_outcomes_with_archive

PYWB_BIN = Path(os.environ.get("WEBTEXT_PYWB_BIN", REPO / ".venv-pywb" / "bin"))
WINDOW_END = datetime(2018, 1, 1, tzinfo=timezone.utc)

# Live web (replay server): live.example, robots.txt forbidding /private/.
LIVE = {
    "live.example/ok.html": {"body": "ok.html", "expect": "ok"},
    "live.example/gone.html": {"status": 404},
    "live.example/later.html": {"status": 404},
    "live.example/not-found-200.html": {"body": "not-found.html"},
    "live.example/parked.html": {"body": "parked.html"},
    "live.example/private/secret.html": {"body": "ok.html"},
}
NOT_FOUND_PAGE = b"<html><head><title>Page Not Found</title></head><body><p>Sorry.</p></body></html>"
PARKED_PAGE = b"<html><head><title>live.example</title></head><body><h1>This domain is for sale!</h1></body></html>"


def _sample_pages(count: int) -> list[bytes]:
    """Article pages of the bundled sample web (what the archive captured)."""
    routes = json.loads((BUNDLED.web / "routes.json").read_text())["routes"]
    articles = [route["body"] for route in routes.values() if route.get("note") == "article" and route.get("body")]
    return [(BUNDLED.web / "pages" / name).read_bytes() for name in sorted(articles)[:count]]


def _captures(pages: list[bytes]) -> list[tuple[str, str, str, list, bytes]]:
    """(url, WARC-Date, status line, headers, body) of every capture in the collection."""
    html = [("Content-Type", "text/html; charset=utf-8")]
    return [
        ("http://live.example/gone.html", "2016-05-01T00:00:00Z", "200 OK", html, pages[0]),
        ("http://live.example/gone.html", "2017-06-01T12:00:00Z", "200 OK", html + [("Server", "old-httpd")], pages[1]),
        ("http://live.example/gone.html", "2019-06-01T00:00:00Z", "200 OK", html, pages[2]),  # after the window
        ("http://live.example/gone.html", "2017-09-01T00:00:00Z", "404 Not Found", html, b"gone"),  # not a 200
        ("http://live.example/later.html", "2019-02-01T00:00:00Z", "200 OK", html, pages[2]),
        ("http://live.example/not-found-200.html", "2015-03-01T00:00:00Z", "200 OK", html, pages[3]),
        ("http://live.example/private/secret.html", "2017-01-01T00:00:00Z", "200 OK", html, pages[4]),
        ("http://dead.example/a.html", "2017-02-01T00:00:00Z", "200 OK", html, pages[5]),
        ("http://dead.example/old.html", "2017-03-01T00:00:00Z", "301 Moved Permanently",
         [("Location", "http://dead.example/new.html")], b""),
        ("http://dead.example/new.html", "2017-03-01T00:00:01Z", "200 OK", html, pages[6]),
    ]


def _write_warc(path: Path, captures) -> None:
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url, date, status, headers, body in captures:
            http = StatusAndHeaders(status, [*headers, ("Content-Length", str(len(body)))], protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=BytesIO(body), http_headers=http,
                                                          warc_headers_dict={"WARC-Date": date}))


def _pywb(*args: str, cwd: Path) -> None:
    subprocess.run([str(PYWB_BIN / args[0]), *args[1:]], cwd=cwd, check=True, capture_output=True, timeout=120)


def _build_collection(root: Path, pages: list[bytes]) -> Path:
    """collections/web/ with index.cdxj; returns the folder of its WARC files."""
    _write_warc(root / "captures.warc.gz", _captures(pages))
    _write_warc(root / "cut.warc.gz", [("http://dead.example/cut.html", "2017-04-01T00:00:00Z", "200 OK",
                                        [("Content-Type", "text/html")], pages[7])])
    _pywb("wb-manager", "init", "web", cwd=root)
    _pywb("wb-manager", "add", "web", str(root / "captures.warc.gz"), str(root / "cut.warc.gz"), cwd=root)
    _pywb("wb-manager", "init", "sample", cwd=root)  # the bundled sample's own archive, as the demo serves it
    _pywb("wb-manager", "add", "sample", str(BUNDLED.archive / "captures.warc.gz"), cwd=root)
    archive = root / "collections" / "web" / "archive"
    cut = archive / "cut.warc.gz"
    os.truncate(cut, cut.stat().st_size - 200)  # indexed whole, then cut mid-record
    index = root / "collections" / "web" / "indexes" / "index.cdxj"
    lines = index.read_text().splitlines()
    a_row = next(line for line in lines if line.startswith("example,dead)/a.html "))
    fields = json.loads(a_row.split(" ", 2)[2])
    fields["url"] = "http://dead.example/elsewhere.html"  # the row points at a.html's record
    lines.append("example,dead)/elsewhere.html 20170201000000 " + json.dumps(fields))
    index.write_text("\n".join(sorted(lines)) + "\n")
    return archive


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_pywb(command: str, root: Path, probe_path: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    process = subprocess.Popen([str(PYWB_BIN / command), "-p", str(port), "-b", "127.0.0.1", *(
        ["-d", str(root)] if command == "wayback" else [])], cwd=root, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urlopen(f"http://127.0.0.1:{port}{probe_path}", timeout=2):
                return process, port
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"pywb {command} did not start on port {port}")
            time.sleep(0.2)


class _RangeHandler(BaseHTTPRequestHandler):
    """Serves the collection's WARC files with `Range: bytes=a-b` (206), as data.commoncrawl.org."""

    folder: Path

    def do_GET(self):
        path = self.folder / urlsplit(self.path).path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        first, _, last = self.headers.get("Range", "bytes=0-").removeprefix("bytes=").partition("-")
        start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        self.wfile.write(data[start:end + 1])

    def log_message(self, *args):
        pass


class _FaultyCdxHandler(BaseHTTPRequestHandler):
    """A CDX server gone wrong, chosen by the host of the URL asked about."""

    requests: Counter
    in_flight = 0
    most_in_flight = 0
    lock = threading.Lock()

    def do_GET(self):
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        try:
            if self.path.startswith("/web/"):  # the replay of other.example's capture shows another URL
                host, (status, content_type, body) = "replay", (200, "text/html", b"<html><p>x</p></html>")
            else:
                host = urlsplit(parse_qs(urlsplit(self.path).query).get("url", [""])[0]).hostname or ""
                status, content_type, body = {
                    "html.example": (200, "text/html", b"<html><body>Service unavailable</body></html>"),
                    "empty.example": (200, "text/x-ndjson", b""),
                    "malformed.example": (200, "text/x-ndjson", b'{"timestamp": "2017010100'),
                    "busy.example": (429, "text/plain", b"slow down"),
                    "other.example": (200, "text/x-ndjson",
                                      b'{"timestamp": "20170101000000", "url": "http://other.example/a", "status": "200"}'),
                }[host]
            cls.requests[host] += 1
            time.sleep(0.02)  # overlapping requests would show in most_in_flight
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if host == "replay":
                self.send_header("Link", '<http://another.example/b>; rel="original"')
            self.send_header("Content-Length", str(len(body)))
            if status == 429:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(body)
        finally:
            with cls.lock:
                cls.in_flight -= 1

    def log_message(self, *args):
        pass


def _serve(handler) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The collection, pywb's wayback and warcserver on it, and the byte-range server."""
    if not (PYWB_BIN / "wayback").exists():
        pytest.fail(f"pywb is not installed in {PYWB_BIN.parent} (run `make pywb`, or set WEBTEXT_PYWB_BIN)")
    root = tmp_path_factory.mktemp("archive")
    pages = _sample_pages(8)
    warc_folder = _build_collection(root, pages)
    wayback, wayback_port = _start_pywb("wayback", root, "/web/cdx?url=http://x.example/")
    warcserver, warcserver_port = _start_pywb("warcserver", root, "/web/index?url=http://x.example/")
    range_server = _serve(type("RangeHandler", (_RangeHandler,), {"folder": warc_folder}))
    try:
        yield {"pages": pages, "root": root, "wayback": f"http://127.0.0.1:{wayback_port}",
               "warcserver": f"http://127.0.0.1:{warcserver_port}",
               "data": f"http://127.0.0.1:{range_server.server_address[1]}/"}
    finally:
        range_server.shutdown()
        for process in (wayback, warcserver):
            process.terminate()
            process.wait(timeout=20)


ARCHIVED_URLS = [
    "http://live.example/ok.html", "http://live.example/gone.html", "http://live.example/later.html",
    "http://live.example/not-found-200.html", "http://live.example/parked.html",
    "http://live.example/private/secret.html", "http://dead.example/a.html", "http://dead.example/old.html",
    "http://dead.example/elsewhere.html", "http://dead.example/cut.html", "http://dead.example/never.html",
]
ARCHIVE_SETTINGS = ["crawl.allow_loopback=true", "crawl.archive.requests_per_second=200"]


def _crawl(tmp_path: Path, name: str, settings: list[str], replay: Path | None = None, urls=ARCHIVED_URLS):
    write_url_table(tmp_path / f"{name}-urls", urls)
    out = tmp_path / name
    args = ["--urls", str(tmp_path / f"{name}-urls"), "--out", str(out)] + (["--replay", str(replay)] if replay else [])
    result = crawl_cli(*args, settings=ARCHIVE_SETTINGS + settings, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    return out, {row["url"]: row for row in read_log(out)}


def _archived_pages(out: Path) -> dict[str, dict]:
    """Final URL -> its response record and metadata fields, for every page in the WARC files."""
    records = warc_records(out)
    metadata = {r["headers"]["WARC-Concurrent-To"]: warc_fields(r["body"]) for r in records if r["type"] == "metadata"}
    return {r["headers"]["WARC-Target-URI"]: {**r, "fields": metadata[r["headers"]["WARC-Record-ID"]]}
            for r in records if r["type"] == "response" and r["headers"]["WARC-Record-ID"] in metadata}


@pytest.fixture(scope="module")
def wayback_crawl(archive, tmp_path_factory):
    """live_then_archive through the replay web, the archive a real Wayback (pywb)."""
    tmp = tmp_path_factory.mktemp("wayback-crawl")
    web = write_web(tmp / "web", {"live.example": {"robots": "User-agent: *\nDisallow: /private/\n"}}, LIVE,
                    {"ok.html": archive["pages"][0], "not-found.html": NOT_FOUND_PAGE, "parked.html": PARKED_PAGE},
                    {"http://dead.example/a.html": "dns"})
    return _crawl(tmp, "crawl", [
        "crawl.source=live_then_archive", "crawl.archive.kind=wayback",
        f"crawl.archive.cdx_url={archive['wayback']}/web/cdx",
        f"crawl.archive.replay_url={archive['wayback']}/web/{{timestamp}}id_/{{url}}",
        "crawl.retry_times=0",  # the truncated capture times out once, not three times
    ], replay=web)


@pytest.fixture(scope="module")
def commoncrawl_crawl(archive, tmp_path_factory):
    """source archive, the commoncrawl kind: pywb's CDX server + WARC byte ranges."""
    return _crawl(tmp_path_factory.mktemp("commoncrawl-crawl"), "crawl", [
        "crawl.source=archive", "crawl.archive.kind=commoncrawl",
        f"crawl.archive.cdx_url={archive['warcserver']}/web/index", f"crawl.archive.data_url={archive['data']}",
    ])


def _outcomes(rows) -> dict[str, tuple[str, str | None]]:
    return {url: (row["outcome"], row["source"]) for url, row in rows.items()}


def test_live_then_archive_recovers_dead_links_from_wayback(wayback_crawl, archive):
    out, rows = wayback_crawl
    assert _outcomes(rows) == {
        "http://live.example/ok.html": ("ok", "live"),
        "http://live.example/gone.html": ("ok", "archive"),  # live 404, the latest 200 in the window
        "http://live.example/later.html": ("archive_missing", "archive"),  # only captured after the window
        "http://live.example/not-found-200.html": ("ok", "archive"),  # a soft 404 live
        "http://live.example/parked.html": ("archive_missing", "archive"),  # parked live, never archived
        "http://live.example/private/secret.html": ("robots", "live"),  # archived, but robots never goes there
        "http://dead.example/a.html": ("ok", "archive"),  # dns live
        "http://dead.example/old.html": ("ok", "archive"),  # a redirect capture, followed in the archive
        # Mis-indexed: the row points at a.html's record. A Wayback replay does not show the
        # record's own URL (pywb answers with the URL asked for), so only the commoncrawl kind,
        # which reads the record, can tell (test_commoncrawl_kind_...).
        "http://dead.example/elsewhere.html": ("ok", "archive"),
        # Truncated: pywb declares the original Content-Length, sends less and stalls.
        "http://dead.example/cut.html": ("archive_error", "archive"),
        "http://dead.example/never.html": ("archive_missing", "archive"),
    }
    gone = rows["http://live.example/gone.html"]
    assert gone["capture_time"] == datetime(2017, 6, 1, 12, tzinfo=timezone.utc)
    assert gone["error"].startswith("live http_4xx: HTTP 404")
    assert "live soft_404: parked domain" in rows["http://live.example/parked.html"]["error"]
    assert rows["http://live.example/ok.html"]["capture_time"] is None
    moved = rows["http://dead.example/old.html"]
    assert moved["final_url"] == "http://dead.example/new.html" and moved["redirects"] == ["http://dead.example/old.html"]
    pages = _archived_pages(out)
    recovered = pages["http://live.example/gone.html"]
    assert recovered["body"] == archive["pages"][1]
    assert recovered["http"].get_header("Server") == "old-httpd"  # X-Archive-Orig-Server restored
    assert recovered["http"].get_header("Memento-Datetime") is None  # the archive's own headers dropped
    assert recovered["headers"]["WARC-Date"].startswith("2017-06-01T12:00:00")
    assert recovered["fields"]["WebText-Source"] == "archive" and recovered["fields"]["WebText-Archive"] == "wayback"
    assert recovered["fields"]["WebText-Capture-Time"] == "2017-06-01T12:00:00Z"
    assert recovered["fields"]["WebText-Capture-URL"] == (
        f"{archive['wayback']}/web/20170601120000id_/http://live.example/gone.html")
    assert pages["http://live.example/ok.html"]["fields"]["WebText-Source"] == "live"
    assert pages["http://dead.example/new.html"]["body"] == archive["pages"][6]
    hop = [r for r in warc_records(out) if r["type"] == "response"
           and r["headers"]["WARC-Target-URI"] == "http://dead.example/old.html"]
    assert [r["http"].get_statuscode() for r in hop] == ["301"]


def test_stats_count_archive_outcomes_and_reconcile(wayback_crawl):
    out, rows = wayback_crawl
    stats = json.loads((out / "crawl_stats.json").read_text())["stages"]["crawl"]
    assert stats["reconciles"] and stats["in"] == len(rows) == len(ARCHIVED_URLS)
    assert stats["out"] == 6
    assert stats["dropped"] == {"archive_missing": 3, "archive_error": 1, "robots": 1}


def test_a_rerun_resumes_without_asking_the_archive_again(wayback_crawl, archive, tmp_path):
    out, rows = wayback_crawl
    copy = tmp_path / "again"
    shutil.copytree(out, copy)
    write_url_table(tmp_path / "urls", ARCHIVED_URLS)
    result = crawl_cli("--urls", str(tmp_path / "urls"), "--out", str(copy), settings=ARCHIVE_SETTINGS + [
        "crawl.source=archive", "crawl.archive.cdx_url=http://127.0.0.1:9/unused"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert {row["url"]: row["outcome"] for row in read_log(copy)} == {url: row["outcome"] for url, row in rows.items()}


def test_commoncrawl_kind_reads_the_same_captures_by_byte_range(commoncrawl_crawl, wayback_crawl, archive):
    out, rows = commoncrawl_crawl
    assert {url: row["outcome"] for url, row in rows.items()} == {
        "http://live.example/ok.html": "archive_missing",  # never archived
        "http://live.example/gone.html": "ok",
        "http://live.example/later.html": "archive_missing",
        "http://live.example/not-found-200.html": "ok",
        "http://live.example/parked.html": "archive_missing",
        "http://live.example/private/secret.html": "ok",  # source archive: the live site is never contacted
        "http://dead.example/a.html": "ok",
        "http://dead.example/old.html": "ok",
        "http://dead.example/elsewhere.html": "archive_error",
        "http://dead.example/cut.html": "archive_error",
        "http://dead.example/never.html": "archive_missing",
    }
    assert {row["source"] for row in rows.values()} == {"archive"}
    assert "different URL" in rows["http://dead.example/elsewhere.html"]["error"]
    assert "truncated" in rows["http://dead.example/cut.html"]["error"]
    pages, wayback_pages = _archived_pages(out), _archived_pages(wayback_crawl[0])
    for url in ("http://live.example/gone.html", "http://dead.example/a.html", "http://dead.example/new.html"):
        assert pages[url]["body"] == wayback_pages[url]["body"]
        assert pages[url]["fields"]["WebText-Archive"] == "commoncrawl"
        assert pages[url]["fields"]["WebText-Capture-URL"].startswith(archive["data"] + "captures.warc.gz#")
    assert rows["http://live.example/gone.html"]["capture_time"] == datetime(2017, 6, 1, 12, tzinfo=timezone.utc)


def test_bad_archive_answers_are_archive_errors_and_429_is_retried(tmp_path):
    handler = type("Faulty", (_FaultyCdxHandler,), {"requests": Counter()})
    server = _serve(handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        _, rows = _crawl(tmp_path, "crawl", [
            "crawl.source=archive", f"crawl.archive.cdx_url={base}/cdx",
            f"crawl.archive.replay_url={base}/web/{{timestamp}}id_/{{url}}", "crawl.retry_times=2",
        ], urls=["http://html.example/a", "http://empty.example/a", "http://malformed.example/a", "http://busy.example/a",
                 "http://other.example/a"])
    finally:
        server.shutdown()
    outcomes = {urlsplit(url).hostname: (row["outcome"], row["error"]) for url, row in rows.items()}
    assert outcomes["html.example"][0] == "archive_error" and "HTML" in outcomes["html.example"][1]
    assert outcomes["empty.example"][0] == "archive_missing"  # an empty answer: no captures (pywb, Wayback)
    assert outcomes["malformed.example"][0] == "archive_error" and "malformed" in outcomes["malformed.example"][1]
    assert outcomes["busy.example"][0] == "archive_error" and "429" in outcomes["busy.example"][1]
    assert outcomes["other.example"][0] == "archive_error" and "different URL" in outcomes["other.example"][1]
    assert handler.requests["busy.example"] == 3  # the first try and retry_times retries
    assert handler.most_in_flight == 1  # one archive request at a time


def test_the_bundled_sample_with_its_archive_ends_as_its_truth_says(archive, tmp_path):
    """The demo's crawl: the sample web live, its dead links from the bundled archive."""
    urls = sorted(row["url"] for row in dump_truth()["urls"].values())
    _, rows = _crawl(tmp_path, "sample", [
        "crawl.source=live_then_archive", f"crawl.archive.cdx_url={archive['wayback']}/sample/cdx",
        f"crawl.archive.replay_url={archive['wayback']}/sample/{{timestamp}}id_/{{url}}",
    ], replay=BUNDLED.web, urls=urls)
    expected = expected_outcomes_with_archive(BUNDLED.web, BUNDLED.archive)
    assert _outcomes(rows) == {url: expected[url] for url in urls}
    recovered = json.loads((BUNDLED.archive / "captures.json").read_text())["recovered"]
    assert {url: rows[url]["final_url"] for url in recovered} == recovered


# -- the pure parts ----------------------------------------------------------------------------

def test_both_cdx_answer_forms_parse():
    wayback_json = json.dumps([["urlkey", "timestamp", "original", "mimetype", "statuscode", "digest", "length"],
                               ["com,a)/", "20170101000000", "http://a.com/", "text/html", "200", "D", "12"],
                               ["com,a)/", "20170102000000", "http://a.com/", "warc/revisit", "-", "D", "9"]])
    assert parse_cdx(wayback_json.encode()) == [Capture("20170101000000", "http://a.com/", 200, None, None, 12),
                                                Capture("20170102000000", "http://a.com/", None, None, None, 9)]
    ndjson = b'{"timestamp": "20170101000000", "url": "http://a.com/", "status": "301", "filename": "f.warc.gz", ' \
             b'"offset": "10", "length": "20"}\n'
    assert parse_cdx(ndjson) == [Capture("20170101000000", "http://a.com/", 301, "f.warc.gz", 10, 20)]
    assert parse_cdx(b"") == parse_cdx(b"[]") == []
    for bad in (b"<html>busy</html>", b'{"url": "http://a.com/"}', b"[1, 2]", b"\xff\xfe"):
        with pytest.raises(ArchiveError):
            parse_cdx(bad)


def test_the_latest_200_inside_the_window_wins_else_the_latest_redirect():
    captures = [Capture("20160101000000", "http://a.com/x", 200), Capture("20171231235959", "https://www.a.com/x", 200),
                Capture("20180101000000", "http://a.com/x", 200), Capture("20171231000000", "http://a.com/x", 404),
                Capture("20170101000000", "http://a.com/other", 200)]
    assert choose_capture(captures, "http://a.com/x", None, WINDOW_END).timestamp == "20171231235959"
    assert choose_capture(captures, "http://a.com/x", datetime(2017, 1, 1, tzinfo=timezone.utc), datetime(
        2017, 6, 1, tzinfo=timezone.utc)) is None
    redirects = [Capture("20170101000000", "http://a.com/x", 302), Capture("20170201000000", "http://a.com/x", 301)]
    assert choose_capture(redirects, "http://a.com/x", None, WINDOW_END).status == 301


def test_the_cdx_query_asks_for_the_window_only():
    config = ArchiveConfig(cdx_url="http://cdx.test/cdx?fl=x", after=datetime(2010, 1, 1))
    query = parse_qs(urlsplit(cdx_query_url(config, "http://a.com/x?y=1")).query)
    assert query == {"fl": ["x"], "url": ["http://a.com/x?y=1"], "output": ["json"], "from": ["20100101000000"],
                     "to": ["20171231235959"]}


def test_wayback_replay_headers_are_restored():
    replayed = [("Content-Type", "text/html"), ("X-Archive-Orig-Server", "Apache"), ("X-Archive-Orig-Date", "Mon"),
                ("X-Archive-Orig-Content-Length", "99"), ("Memento-Datetime", "x"), ("Link", "<x>"),
                ("Location", "http://archive.test/web/20170101000000id_/http://a.com/next"), ("Server", "archive")]
    assert restore_wayback_headers(replayed) == [("Content-Type", "text/html"), ("Location", "http://a.com/next"),
                                                 ("Server", "Apache"), ("Date", "Mon")]


def test_only_replay_urls_on_the_archive_host_are_followed_as_its_own_redirects():
    replay = "http://archive.test/web/20170101000000id_/http://a.com/x"
    memento = [("Memento-Datetime", "Sun, 01 Jan 2017 00:00:00 GMT")]
    nearby = "http://archive.test/web/20170102000000id_/http://a.com/x"
    assert is_archive_redirect(nearby, replay, "http://a.com/x", [])
    assert is_archive_redirect(nearby, replay, "http://a.com/x", memento)  # the same page, another time
    elsewhere = "http://archive.test/web/20170102000000id_/http://a.com/y"
    assert is_archive_redirect(elsewhere, replay, "http://a.com/x", [])
    assert not is_archive_redirect(elsewhere, replay, "http://a.com/x", memento)  # an archived redirect
    assert not is_archive_redirect("http://a.com/y", replay, "http://a.com/x", [])  # never the live web
    assert not is_archive_redirect("http://other.test/web/20170102000000id_/http://a.com/x", replay, "http://a.com/x", [])
