"""The WARC writer (crawl/warc.py): Common-Crawl-shaped record groups (redirect hops, request,
response, metadata), digests, one gzip member per record, rotation, the cut-off after a crash;
and a real crawl's output checked by `warcio check` and read by warcio and fastwarc."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys

import pytest
from fastwarc.warc import ArchiveIterator as FastArchiveIterator
from warcio.archiveiterator import ArchiveIterator

from crawl.warc import FetchedPage, RedirectHop, WarcWriter, record_end, truncate_after
from tests.crawl.test_crawler_support import PAGE, crawl_cli, read_log, warc_fields, write_url_table, write_web

REDIRECT_BODY_LIMIT = 64  # the replay's default 301 body is longer, the gzipped 302 body shorter
FIELD_NAMES = ["WebText-Source-URL", "WebText-Post-Ids", "WebText-Subreddits", "WebText-Score",
               "WebText-First-Created-UTC", "WebText-Redirect-Chain", "WebText-Fetch-Outcome", "WebText-Source"]


def _page(i: int, size: int = 2000, hops: list[RedirectHop] = ()) -> FetchedPage:
    return FetchedPage(
        source_url=hops[0].url if hops else f"http://a.example/{i}", final_url=f"http://a.example/{i}", status=200,
        response_headers=[("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
        body=os.urandom(size), request_method="GET", request_headers=[("User-Agent", "t")],
        fetch_time="2026-01-01T00:00:00.000000Z", ip_address="192.0.2.7", redirects=[hop.url for hop in hops],
        post_ids=["x", "y"], subreddits=["s"], score=3, first_created_utc=1, hops=list(hops),
    )


def _hop(url: str, status: int, location: str, body: bytes = b"", headers=(), truncated: bool = False) -> RedirectHop:
    return RedirectHop(url=url, status=status, response_headers=[("Location", location), *headers], body=body,
                       request_method="GET", request_headers=[("User-Agent", "t")],
                       fetch_time="2025-12-31T23:59:59.000000Z", ip_address="192.0.2.9", body_truncated=truncated)


def _read_all(path) -> list[dict]:
    """Every record of a file, digests checked by warcio: offset, type, WARC headers, HTTP
    headers, the block's bytes after the HTTP headers as stored (not content-decoded)."""
    out = []
    with open(path, "rb") as fh:
        records = ArchiveIterator(fh, check_digests=True)
        for record in records:
            body = record.raw_stream.read()  # before the offset: asking for it reads the record to its end
            out.append({"offset": records.get_record_offset(), "type": record.rec_type,
                        "headers": dict(record.rec_headers.headers), "http": record.http_headers, "body": body})
    return out


def test_a_page_with_two_redirect_hops_is_written_in_the_contract_order(tmp_path):
    moved_body = gzip.compress(b"<html>moved</html>")
    page = _page(7, hops=[
        _hop("http://a.example/start", 301, "/middle", b"<html>301</html>", truncated=True),
        _hop("http://a.example/middle", 302, "http://a.example/7", moved_body, [("Content-Encoding", "gzip")]),
    ])
    writer = WarcWriter(str(tmp_path), "crawl-t", max_bytes=10**9, software_info={})
    name, offset = writer.write(page)
    writer.close()
    records = _read_all(tmp_path / name)
    assert [(r["type"], r["headers"].get("WARC-Target-URI")) for r in records] == [
        ("warcinfo", None),
        ("request", "http://a.example/start"), ("response", "http://a.example/start"),
        ("request", "http://a.example/middle"), ("response", "http://a.example/middle"),
        ("request", "http://a.example/7"), ("response", "http://a.example/7"),
        ("metadata", "http://a.example/7"),
    ]
    warcinfo_id = records[0]["headers"]["WARC-Record-ID"]
    assert "WARC-Warcinfo-ID" not in records[0]["headers"]
    assert all(r["headers"]["WARC-Warcinfo-ID"] == warcinfo_id for r in records[1:])
    for request, response in zip(records[1:7:2], records[2:7:2]):
        assert request["headers"]["WARC-Concurrent-To"] == response["headers"]["WARC-Record-ID"]
        assert request["http"].protocol == "GET" and request["http"].get_header("Host") == "a.example"
    # The hops as received: status, Location, body (still gzip-encoded) and their own address.
    first, second = records[2], records[4]
    assert first["http"].get_statuscode() == "301" and first["http"].get_header("Location") == "/middle"
    assert first["body"] == b"<html>301</html>" and first["headers"]["WARC-Truncated"] == "length"
    assert "WARC-Truncated" not in second["headers"]
    assert second["http"].get_statuscode() == "302" and second["http"].get_header("Content-Encoding") == "gzip"
    assert second["body"] == moved_body and second["http"].get_header("Content-Length") == str(len(moved_body))
    assert [r["headers"]["WARC-IP-Address"] for r in records[1:7]] == ["192.0.2.9"] * 4 + ["192.0.2.7"] * 2
    assert [r["headers"]["WARC-Date"] for r in records[1:5]] == ["2025-12-31T23:59:59.000000Z"] * 4
    # The final answer, decoded, and its metadata record.
    final, metadata = records[6], records[7]
    assert final["offset"] == offset and final["body"] == page.body
    assert final["http"].get_header("Content-Encoding") is None
    assert not [h for h in final["headers"] if h.startswith("WebText-")]
    assert metadata["headers"]["WARC-Concurrent-To"] == final["headers"]["WARC-Record-ID"]
    assert metadata["headers"]["Content-Type"] == "application/warc-fields"
    assert metadata["headers"]["WARC-Date"] == page.fetch_time
    fields = warc_fields(metadata["body"])
    assert list(fields) == FIELD_NAMES
    assert fields == {
        "WebText-Source-URL": "http://a.example/start", "WebText-Post-Ids": "x,y", "WebText-Subreddits": "s",
        "WebText-Score": "3", "WebText-First-Created-UTC": "1",
        "WebText-Redirect-Chain": "http://a.example/start http://a.example/middle",
        "WebText-Fetch-Outcome": "ok", "WebText-Source": "live",
    }


def test_an_archive_capture_names_its_archive_in_the_metadata_record(tmp_path):
    page = _page(1)
    page.redirects = []
    page.source, page.archive = "archive", "wayback"
    page.capture_time, page.capture_url = "2017-12-01T10:00:00Z", "http://127.0.0.1:8080/web/20171201100000id_/http://a.example/1"
    writer = WarcWriter(str(tmp_path), "crawl-t", max_bytes=10**9, software_info={})
    name, _ = writer.write(page)
    writer.close()
    fields = warc_fields(_read_all(tmp_path / name)[-1]["body"])
    assert list(fields) == [*FIELD_NAMES, "WebText-Archive", "WebText-Capture-Time", "WebText-Capture-URL"]
    assert fields["WebText-Source"] == "archive" and fields["WebText-Redirect-Chain"] == ""
    assert (fields["WebText-Archive"], fields["WebText-Capture-Time"], fields["WebText-Capture-URL"]) == (
        "wayback", page.capture_time, page.capture_url)


def test_warc_writer_rotates_between_groups_and_each_file_names_its_own_warcinfo(tmp_path):
    writer = WarcWriter(str(tmp_path), "crawl-t", max_bytes=5000, software_info={})
    hops = [_hop("http://a.example/old", 308, "http://a.example/x")]
    positions = [writer.write(_page(i, hops=hops if i % 2 else ())) for i in range(6)]
    writer.close()
    assert len(writer.files) >= 3 and [f for f, _ in positions] == sorted(f for f, _ in positions)
    for name, offset in positions:
        with open(tmp_path / name, "rb") as fh:
            fh.seek(offset)
            record = next(ArchiveIterator(fh))
            assert record.rec_type == "response"
            assert record.http_headers.get_header("Content-Encoding") is None
    warcinfo_ids = set()
    for name in writer.files:
        records = _read_all(tmp_path / name)
        assert records[0]["type"] == "warcinfo" and records[-1]["type"] == "metadata"
        warcinfo_ids.add(records[0]["headers"]["WARC-Record-ID"])
        assert {r["headers"]["WARC-Warcinfo-ID"] for r in records[1:]} == {records[0]["headers"]["WARC-Record-ID"]}
    assert len(warcinfo_ids) == len(writer.files)


def _write_pages(tmp_path, n: int) -> tuple[str, list[int]]:
    """n pages (every other one after a redirect hop) in one file: its path and the response offsets."""
    writer = WarcWriter(str(tmp_path), "crawl-t", max_bytes=10**9, software_info={})
    hops = [_hop("http://a.example/old", 301, "http://a.example/new", b"moved")]
    positions = [writer.write(_page(i, hops=hops if i % 2 else ())) for i in range(n)]
    writer.close()
    return str(tmp_path / positions[0][0]), [offset for _, offset in positions]


def test_truncate_after_keeps_the_last_logged_group_and_cuts_a_torn_gzip_member(tmp_path):
    path, offsets = _write_pages(tmp_path, 4)
    with open(path, "ab") as fh:  # a record torn by kill -9
        fh.write(gzip.compress(b"WARC/1.1\r\nWARC-Type: response\r\n" + b"x" * 5000)[:700])
    with pytest.raises(Exception):
        _read_all(path)
    assert truncate_after(path, offsets[1]) == "truncated"
    assert [r["type"] for r in _read_all(path)] == [
        "warcinfo", "request", "response", "metadata", "request", "response", "request", "response", "metadata"]
    assert truncate_after(path, offsets[1]) == "kept"
    assert truncate_after(path, None) == "deleted" and not os.path.exists(path)


def test_a_kill_between_any_two_records_or_inside_one_truncates_to_a_valid_file(tmp_path):
    """The last logged response is page 1's; page 2 (a hop, request, response, metadata) was
    being written: wherever the file ends inside page 2's group, it is cut back to the end of
    page 1's metadata record."""
    path, offsets = _write_pages(tmp_path, 3)
    data = open(path, "rb").read()
    starts = [r["offset"] for r in _read_all(path)]
    logged_end = record_end(path, offsets[1])
    assert logged_end == starts[starts.index(offsets[1]) + 2]  # response + metadata
    page_two = [offset for offset in starts if offset >= logged_end]
    cuts = sorted({*page_two, len(data), *(offset + 40 for offset in page_two)})
    for cut in cuts:
        with open(path, "wb") as fh:
            fh.write(data[:cut])
        expected = "kept" if cut == logged_end else "truncated"
        assert truncate_after(path, offsets[1]) == expected, cut
        assert open(path, "rb").read() == data[:logged_end]
        assert [r["type"] for r in _read_all(path)][-3:] == ["request", "response", "metadata"]


def test_a_torn_metadata_record_after_the_logged_response_is_cut_off(tmp_path):
    """Never left by the crawler (a response is logged only after its whole group is on disk),
    but a torn member after it must not survive a cut-off."""
    path, offsets = _write_pages(tmp_path, 1)
    data = open(path, "rb").read()
    response_end = next(r["offset"] for r in _read_all(path) if r["type"] == "metadata")
    with open(path, "wb") as fh:
        fh.write(data[:len(data) - 10])
    assert truncate_after(path, offsets[0]) == "truncated"
    assert [r["type"] for r in _read_all(path)] == ["warcinfo", "request", "response"]
    assert os.path.getsize(path) == response_end


def test_record_end_reads_files_of_earlier_versions_without_metadata_records(tmp_path):
    path, offsets = _write_pages(tmp_path, 3)
    data = open(path, "rb").read()
    records = _read_all(path)
    bounds = [r["offset"] for r in records] + [len(data)]
    old = b"".join(data[start:end] for start, end, r in zip(bounds, bounds[1:], records) if r["type"] != "metadata")
    old_path = tmp_path / "old.warc.gz"
    old_path.write_bytes(old)
    old_records = _read_all(old_path)
    response_offsets = [r["offset"] for r in old_records if r["type"] == "response" and r["http"].get_statuscode() == "200"]
    following = [old_records[i + 1]["offset"] if i + 1 < len(old_records) else len(old)
                 for i, r in enumerate(old_records) if r["offset"] in response_offsets]
    assert [record_end(str(old_path), offset) for offset in response_offsets] == following
    with pytest.raises(ValueError, match="no complete response record"):
        record_end(path, offsets[0] + 1)


def test_warc_records_carry_valid_digests_and_a_line_break_cannot_forge_a_header(tmp_path):
    page = _page(0)
    page.body = b"<html><p>" + os.urandom(60_000).hex().encode() + b"</p></html>"  # beyond a 32 KiB window
    page.subreddits = ["news", "evil\r\nWARC-Type: resource"]
    page.response_headers = [("Content-Type", "text/html"), ("X-Note", "two\nlines")]
    writer = WarcWriter(str(tmp_path), "crawl-t", max_bytes=10**9, software_info={"operator": "tests"})
    name, offset = writer.write(page)
    writer.close()
    records = _read_all(tmp_path / name)
    assert [r["type"] for r in records] == ["warcinfo", "request", "response", "metadata"]
    response = records[2]
    assert response["offset"] == offset and response["body"] == page.body
    assert "WARC-Payload-Digest" in response["headers"] and "WARC-Block-Digest" in response["headers"]
    assert response["http"].get_header("X-Note") == "two lines"
    assert response["http"].get_header("Content-Length") == str(len(page.body))
    assert warc_fields(records[3]["body"])["WebText-Subreddits"] == "news,evil  WARC-Type: resource"
    assert b"operator: tests" in records[0]["body"]


@pytest.mark.parametrize("level", [0, 1, 9])
def test_every_gzip_level_writes_one_gzip_member_per_record(tmp_path, level):
    writer = WarcWriter(str(tmp_path), "crawl-t", max_bytes=10**9, software_info={}, gzip_level=level)
    for i in range(3):
        writer.write(_page(i, size=5000))
    writer.close()
    path = tmp_path / writer.files[0]
    records = _read_all(path)
    data = path.read_bytes()
    assert len(records) == 10 and all(data[r["offset"]:r["offset"] + 2] == b"\x1f\x8b" for r in records)
    with gzip.open(path) as fh:
        assert fh.read().count(b"WARC/1.1\r\n") == 10


# -- a real crawl's output, read by other tools ------------------------------------------------

@pytest.fixture(scope="module")
def crawled(tmp_path_factory):
    """A crawl of three URLs: one reaches its page through a 301 (its body longer than the
    limit) and a gzip-encoded 302 (on another host), one is fetched directly, one is a 404."""
    root = tmp_path_factory.mktemp("crawl")
    moved = gzip.compress(b"<html><body>moved to the blog</body></html>")
    web = write_web(root / "web", {"news.example": {"robots": None}, "blog.example": {"robots": None}}, {
        "news.example/start": {"status": 301, "headers": {"Location": "/middle"}},
        "news.example/middle": {"status": 302, "body": "moved.gz",
                                "headers": {"Location": "http://blog.example/post", "Content-Encoding": "gzip"}},
        "blog.example/post": {"body": "post.html"},
        "news.example/plain": {"body": "plain.html"},
        "news.example/gone": {"status": 404},
    }, {"moved.gz": moved, "post.html": PAGE % (b"post", b"post"), "plain.html": PAGE % (b"plain", b"plain")})
    urls = ["http://news.example/start", "http://news.example/plain", "http://news.example/gone"]
    write_url_table(root / "urls", urls)
    result = crawl_cli("--urls", str(root / "urls"), "--out", str(root / "out"), "--replay", str(web),
                       settings=[f"crawl.warc_max_redirect_body_bytes={REDIRECT_BODY_LIMIT}"])
    assert result.returncode == 0, result.stdout + result.stderr
    files = sorted((root / "out" / "warc").glob("*.warc.gz"))
    return {"out": root / "out", "files": files, "moved": moved,
            "records": [record for path in files for record in _read_all(path)]}


def _groups(records: list[dict]) -> dict[str, list[dict]]:
    """A crawl's record groups (the records up to and including a metadata record), by the
    metadata record's WebText-Source-URL; warcinfo records are not part of any group."""
    groups, current = {}, []
    for record in records:
        if record["type"] == "warcinfo":
            assert current == [], "a group spans two files"
            continue
        current.append(record)
        if record["type"] == "metadata":
            groups[warc_fields(record["body"])["WebText-Source-URL"]] = current
            current = []
    assert current == [], "records after the last metadata record"
    return groups


def test_the_crawl_writes_each_redirect_hop_and_a_metadata_record_per_page(crawled):
    records, rows = crawled["records"], {r["url"]: r for r in read_log(crawled["out"])}
    groups = _groups(records)
    assert {url: [(r["type"], r["headers"]["WARC-Target-URI"]) for r in group] for url, group in groups.items()} == {
        "http://news.example/start": [
            ("request", "http://news.example/start"), ("response", "http://news.example/start"),
            ("request", "http://news.example/middle"), ("response", "http://news.example/middle"),
            ("request", "http://blog.example/post"), ("response", "http://blog.example/post"),
            ("metadata", "http://blog.example/post")],
        "http://news.example/plain": [
            ("request", "http://news.example/plain"), ("response", "http://news.example/plain"),
            ("metadata", "http://news.example/plain")],
    }
    redirected = groups["http://news.example/start"]
    assert [r["http"].get_statuscode() for r in redirected if r["type"] == "response"] == ["301", "302", "200"]
    assert redirected[1]["http"].get_header("Location") == "/middle"
    assert redirected[1]["headers"]["WARC-Truncated"] == "length" and len(redirected[1]["body"]) == REDIRECT_BODY_LIMIT
    assert redirected[1]["body"].startswith(b"<html>") and "WARC-Truncated" not in redirected[3]["headers"]
    assert redirected[3]["http"].get_header("Location") == "http://blog.example/post"
    assert redirected[3]["body"] == crawled["moved"] and redirected[3]["http"].get_header("Content-Encoding") == "gzip"
    assert redirected[5]["body"].startswith(b"<!doctype html>")
    for url, group in groups.items():
        row = rows[url]
        response, metadata = group[-2], group[-1]
        assert response["offset"] == row["warc_offset"] and response["headers"]["WARC-Target-URI"] == row["final_url"]
        assert metadata["headers"]["WARC-Concurrent-To"] == response["headers"]["WARC-Record-ID"]
        fields = warc_fields(metadata["body"])
        assert fields["WebText-Redirect-Chain"] == " ".join(row["redirects"])
        assert (fields["WebText-Fetch-Outcome"], fields["WebText-Source"]) == ("ok", "live")
        assert fields["WebText-Subreddits"] == "news,science"
        assert all(r["headers"]["WARC-IP-Address"] == "127.0.0.1" for r in group if r["type"] != "metadata")
    assert rows["http://news.example/start"]["redirects"] == ["http://news.example/start", "http://news.example/middle"]
    assert rows["http://news.example/gone"]["outcome"] == "http_4xx"
    warcinfo_ids = {r["headers"]["WARC-Record-ID"] for r in records if r["type"] == "warcinfo"}
    assert len(warcinfo_ids) == len(crawled["files"])
    assert all(r["headers"]["WARC-Warcinfo-ID"] in warcinfo_ids for r in records if r["type"] != "warcinfo")


def test_warcio_check_passes_on_the_crawl_output(crawled):
    result = subprocess.run([sys.executable, "-m", "warcio.cli", "check", "-v", *map(str, crawled["files"])],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # Verbose: one line per record; every record has a digest, and each one passed.
    assert result.stdout.count("digest pass") == len(crawled["records"]) == 11, result.stdout
    assert "digest fail" not in result.stdout


def test_fastwarc_reads_every_record_with_valid_digests(crawled):
    read = []
    for path in crawled["files"]:
        for record in FastArchiveIterator(str(path), parse_http=False, verify_digests=True):
            read.append((record.headers["WARC-Type"], record.record_id, record.stream_pos))
    assert read == [(r["type"], r["headers"]["WARC-Record-ID"], r["offset"]) for r in crawled["records"]]
    payloads = 0
    for path in crawled["files"]:
        for record in FastArchiveIterator(str(path)):
            if record.headers["WARC-Type"] == "response":
                assert record.verify_payload_digest(), record.headers["WARC-Target-URI"]
                payloads += 1
    assert payloads == 4
