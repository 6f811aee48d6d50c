"""The crawler's pure pieces: address policy, HTML sniffing, Retry-After, sharding, WARC cut-off."""

from __future__ import annotations

import gzip
import os
from email.utils import formatdate

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawl.config import CrawlConfig
from crawl.middlewares import address_refusal, retry_after
from crawl.spider import html_refusal, looks_like_html
from crawl.url_table import Shard
from crawl.warc import FetchedPage, WarcWriter, truncate_after

HTML_TYPES = CrawlConfig().html_content_types
SNIFF_TYPES = CrawlConfig().sniff_content_types


@pytest.mark.parametrize("ip", [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
    "240.0.0.1", "255.255.255.255", "192.0.2.1", "fe80::1", "fc00::1", "ff02::1", "::", "::ffff:10.0.0.1",
])
def test_non_public_addresses_are_refused_even_with_loopback_allowed(ip):
    assert address_refusal(ip, allow_loopback=True)
    assert address_refusal(ip, allow_loopback=False)


@pytest.mark.parametrize("ip", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_only_when_allowed(ip):
    assert address_refusal(ip, allow_loopback=False)
    assert address_refusal(ip, allow_loopback=True) is None


@pytest.mark.parametrize("ip", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(ip):
    assert address_refusal(ip, allow_loopback=False) is None


@pytest.mark.parametrize("content_type,body,ok", [
    ("text/html; charset=utf-8", b"<!doctype html><p>x</p>", True),
    ("application/xhtml+xml", b"<?xml version='1.0'?><html xmlns='x'></html>", True),
    ("TEXT/HTML", b"no markup but labelled html", True),
    ("text/html", b"%PDF-1.7 ...", False),
    ("text/html", b"\x89PNG\r\n\x1a\n....", False),
    ("text/html", b"\x1f\x8b\x08\x00gzip-in-disguise", False),
    ("application/octet-stream", b"\xef\xbb\xbf  <!DOCTYPE HTML><html>", True),
    ("application/octet-stream", b"<?xml version='1.0'?>\n<html><body>x</body></html>", True),
    ("application/octet-stream", b"PK\x03\x04 zip archive", False),
    ("", b"<html><head><title>t</title></head></html>", True),
    ("", b"<htmlfoo>not a tag we know", False),
    ("text/plain", b"plain words only", False),
    ("application/pdf", b"<html>even if it looks like html</html>", False),
    ("image/png", b"\x89PNG", False),
])
def test_html_allowlist_and_sniffing(content_type, body, ok):
    assert (html_refusal(content_type, body, HTML_TYPES, SNIFF_TYPES) is None) == ok


def test_sniffer_needs_a_tag_boundary():
    assert looks_like_html(b"<p>para</p>") and looks_like_html(b"<a href=x>")
    assert not looks_like_html(b"<pre>") and not looks_like_html(b"<abbr>")


def test_retry_after_parses_seconds_and_http_dates_and_ignores_garbage():
    assert retry_after(b"7") == 7.0
    assert 25 <= retry_after(formatdate(__import__("time").time() + 30, usegmt=True).encode()) <= 31
    assert retry_after(b"soon") is None and retry_after(None) is None and retry_after(b"") is None


@pytest.mark.parametrize("text", ["", "1", "2/2", "-1/2", "a/b", "1/0", "0/0", "1/2/3", "0.5/2"])
def test_bad_shard_specs_are_refused(text):
    with pytest.raises(ValueError, match="--shard"):
        Shard.parse(text)


def test_shards_partition_url_keys_deterministically():
    keys = [f"site{i % 7}.example/p/{i}" for i in range(2000)]
    shards = [Shard.parse(f"{i}/3") for i in range(3)]
    owners = [[s.index for s in shards if s.owns(k)] for k in keys]
    assert all(len(o) == 1 for o in owners)
    sizes = [sum(o == [i] for o in owners) for i in range(3)]
    assert min(sizes) > 550, sizes
    assert Shard.parse("1/3").owns(keys[0]) == Shard(1, 3).owns(keys[0])
    assert Shard.parse("0/1").tag == "00000-of-00001"


def test_config_rejects_a_static_host_that_is_not_an_ip():
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        CrawlConfig(static_hosts={"intranet.test": "not-an-ip"})
    assert CrawlConfig(static_hosts={"Intranet.Test.": "10.0.0.9"}).static_hosts == {"intranet.test": "10.0.0.9"}


def _page(i: int, size: int = 2000) -> FetchedPage:
    return FetchedPage(
        source_url=f"http://a.example/{i}", final_url=f"http://a.example/{i}", status=200,
        response_headers=[("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
        body=os.urandom(size), request_method="GET", request_headers=[("User-Agent", "t")],
        fetch_time="2026-01-01T00:00:00.000000Z", ip_address=None, redirects=[], post_ids=["x"],
        subreddits=["s"], score=3, first_created_utc=1,
    )


def _record_types(path) -> list[str]:
    with open(path, "rb") as fh:
        return [r.rec_type for r in ArchiveIterator(fh)]


def test_warc_writer_rotates_by_size_and_reports_response_offsets(tmp_path):
    writer = WarcWriter(str(tmp_path), "crawl-t", max_bytes=5000, software_info={})
    positions = [writer.write(_page(i)) for i in range(6)]
    writer.close()
    assert len(writer.files) >= 3 and [f for f, _ in positions] == sorted(f for f, _ in positions)
    for name, offset in positions:
        with open(tmp_path / name, "rb") as fh:
            fh.seek(offset)
            record = next(ArchiveIterator(fh))
            assert record.rec_type == "response"
            assert record.http_headers.get_header("Content-Encoding") is None
    for name in writer.files:
        assert _record_types(tmp_path / name)[0] == "warcinfo"


def test_truncate_after_cuts_unlogged_records_and_a_torn_gzip_member(tmp_path):
    writer = WarcWriter(str(tmp_path), "crawl-t", max_bytes=10**9, software_info={})
    positions = [writer.write(_page(i)) for i in range(4)]
    writer.close()
    path = tmp_path / positions[0][0]
    with open(path, "ab") as fh:  # a record torn by kill -9
        fh.write(gzip.compress(b"WARC/1.1\r\nWARC-Type: response\r\n" + b"x" * 5000)[:700])
    with pytest.raises(Exception):
        _record_types(path)
    assert truncate_after(str(path), positions[1][1]) == "truncated"
    assert _record_types(path) == ["warcinfo", "request", "response", "request", "response"]
    assert truncate_after(str(path), positions[1][1]) == "kept"
    assert truncate_after(str(path), None) == "deleted" and not path.exists()


def _read_all(path) -> list:
    """(offset, record type, WARC headers, HTTP headers, payload) of every record, digests checked."""
    out = []
    with open(path, "rb") as fh:
        records = ArchiveIterator(fh, check_digests=True)
        for record in records:
            payload = record.content_stream().read()
            out.append((records.get_record_offset(), record.rec_type, dict(record.rec_headers.headers),
                        record.http_headers, payload))
    return out


def test_warc_records_carry_valid_digests_and_a_line_break_cannot_forge_a_header(tmp_path):
    page = _page(0)
    page.body = b"<html><p>" + os.urandom(60_000).hex().encode() + b"</p></html>"  # beyond a 32 KiB window
    page.subreddits = ["news", "evil\r\nWARC-Type: resource"]
    page.response_headers = [("Content-Type", "text/html"), ("X-Note", "two\nlines")]
    writer = WarcWriter(str(tmp_path), "crawl-t", max_bytes=10**9, software_info={"operator": "tests"})
    name, offset = writer.write(page)
    writer.close()
    records = _read_all(tmp_path / name)
    assert [r[1] for r in records] == ["warcinfo", "request", "response"]
    _, _, warc_headers, http_headers, payload = records[2]
    assert records[2][0] == offset and payload == page.body
    assert warc_headers["WARC-Type"] == "response" and warc_headers["WebText-Subreddits"] == "news,evil  WARC-Type: resource"
    assert "WARC-Payload-Digest" in warc_headers and "WARC-Block-Digest" in warc_headers
    assert http_headers.get_header("X-Note") == "two lines" and http_headers.get_header("Content-Length") == str(len(page.body))
    assert records[1][2]["WARC-Concurrent-To"] == warc_headers["WARC-Record-ID"]
    assert b"operator: tests" in records[0][4]


@pytest.mark.parametrize("level", [0, 1, 9])
def test_every_gzip_level_writes_one_gzip_member_per_record(tmp_path, level):
    writer = WarcWriter(str(tmp_path), "crawl-t", max_bytes=10**9, software_info={}, gzip_level=level)
    for i in range(3):
        writer.write(_page(i, size=5000))
    writer.close()
    path = tmp_path / writer.files[0]
    records = _read_all(path)
    data = path.read_bytes()
    assert len(records) == 7 and all(data[offset:offset + 2] == b"\x1f\x8b" for offset, *_ in records)
    with gzip.open(path) as fh:
        assert fh.read().count(b"WARC/1.1\r\n") == 7
