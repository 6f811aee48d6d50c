"""Scanning WARC files into ranges and reading them, without Beam: damage, provenance, ranges."""

from __future__ import annotations

import gzip
import io
import os

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from shards.warc_reader import BadRegion, is_gzip, plan_ranges, read_body_at, read_range, scan
from shards.warc_source import page_id
from tests.shards.warc_fixture import _page, article_html, write_warc

HTML = article_html("A title", ["Some words in a paragraph."], "site.example")


def _read(path: str, max_records: int = 64) -> tuple[list[dict], list[tuple], list[dict], list[list]]:
    """(pages, drops as (reason, url, offset), redirects, ranges as unit lists) of one file."""
    pages, drops, redirects, ranges = [], [], [], []
    with open(path, "rb") as fh:
        for item in list(plan_ranges(scan(fh, is_gzip(fh, path)), max_records=max_records)):
            if isinstance(item, BadRegion):
                drops.append(("warc_bad_record", item.url, item.offset))
                continue
            ranges.append(item)
            for kind, value in read_range(fh, [(u.offset, u.length) for u in item], path, "f.warc", page_id):
                if kind == "page":
                    pages.append(value)
                elif kind == "drop":
                    drops.append((value[0], value[1]["url"], value[1]["warc_offset"]))
                else:
                    redirects.append(value)
    return pages, drops, redirects, ranges


def _twenty_pages(path: str) -> list[str]:
    urls = [f"https://t.example/{i}" for i in range(20)]
    write_warc(path, [_page(i, url, HTML, 3) for i, url in enumerate(urls)])
    return urls


def _units(path: str) -> list:
    with open(path, "rb") as fh:
        return list(scan(fh, is_gzip(fh, path)))


def test_junk_between_gzip_members_loses_only_the_junk(tmp_path):
    path = str(tmp_path / "junk.warc.gz")
    urls = _twenty_pages(path)
    before = [page["warc_offset"] for page in _read(path)[0]]
    data = open(path, "rb").read()
    cut = _units(path)[5].offset  # after record 5 (warcinfo, then request/response pairs)
    with open(path, "wb") as fh:
        fh.write(data[:cut] + os.urandom(4096) + data[cut:])
    pages, drops, _, _ = _read(path)
    assert [page["url"] for page in pages] == urls
    assert drops == [("warc_bad_record", None, cut)]
    assert [page["warc_offset"] for page in pages] == before[:2] + [offset + 4096 for offset in before[2:]]


def test_junk_in_a_plain_warc(tmp_path):
    gz = str(tmp_path / "src.warc.gz")
    urls = _twenty_pages(gz)
    plain = gzip.decompress(open(gz, "rb").read())  # per-record gzip -> the plain WARC
    path = str(tmp_path / "plain.warc")
    with open(path, "wb") as fh:
        fh.write(plain)
    units = _units(path)
    assert len(units) == 41 and _read(path)[0][0]["url"] == urls[0]
    between = units[5].offset
    inside = units[8].offset + units[8].length - 40  # in the block of a response record (page 3)
    with open(path, "wb") as fh:
        fh.write(plain[:between] + b"\x00junk\r\n" * 600 + plain[between:inside] + b"more junk" + plain[inside:])
    pages, drops, _, _ = _read(path)
    assert [page["url"] for page in pages] == urls[:3] + urls[4:]
    assert [(reason, url) for reason, url, _ in drops] == [("warc_bad_record", None),
                                                           ("warc_bad_record", "https://t.example/3")]
    assert drops[0][2] == between


def test_a_record_cut_off_at_the_end_is_one_bad_record(tmp_path):
    path = str(tmp_path / "cut.warc.gz")
    urls = _twenty_pages(path)
    os.truncate(path, os.path.getsize(path) - 100)
    pages, drops, _, _ = _read(path)
    assert [page["url"] for page in pages] == urls[:19]
    assert drops == [("warc_bad_record", urls[19], _units(path)[-1].offset)]

    plain = str(tmp_path / "cut.warc")
    _twenty_pages(str(tmp_path / "src.warc.gz"))
    with open(plain, "wb") as fh:
        fh.write(gzip.decompress(open(tmp_path / "src.warc.gz", "rb").read())[:-100])
    pages, drops, _, _ = _read(plain)
    assert len(pages) == 19 and [(r, u) for r, u, _ in drops] == [("warc_bad_record", urls[19])]


def test_a_gzip_member_with_a_corrupted_byte(tmp_path):
    path = str(tmp_path / "corrupt.warc.gz")
    urls = _twenty_pages(path)
    member = _units(path)[8]  # the response of page 3
    assert member.warc_type == "response"
    data = bytearray(open(path, "rb").read())
    data[member.offset + member.length // 2] ^= 0xFF
    with open(path, "wb") as fh:
        fh.write(bytes(data))
    pages, drops, _, _ = _read(path)
    assert [page["url"] for page in pages] == urls[:3] + urls[4:]
    assert [(reason, offset) for reason, _, offset in drops] == [("warc_bad_record", member.offset)]


def test_garbage_empty_and_whole_file_gzip(tmp_path):
    garbage = tmp_path / "garbage.warc.gz"
    garbage.write_bytes(b"\x1f\x8b\x08\x00 definitely not gzip data")
    assert _read(str(garbage))[1] == [("warc_bad_record", None, 0)]
    empty = tmp_path / "empty.warc.gz"
    empty.write_bytes(b"")
    assert _read(str(empty)) == ([], [], [], [])
    source = str(tmp_path / "src.warc.gz")
    urls = _twenty_pages(source)
    whole = tmp_path / "whole.warc.gz"  # one gzip stream for the whole file: not a standard WARC.gz
    whole.write_bytes(gzip.compress(gzip.decompress(open(source, "rb").read())))
    pages, drops, _, ranges = _read(str(whole))
    assert pages == [] and len(ranges) == 1 and drops == [("warc_bad_record", None, 0)]
    assert len(urls) == 20


def test_ranges_start_at_responses_and_read_the_same_as_one_range(tmp_path):
    path = str(tmp_path / "big.warc.gz")
    _twenty_pages(path)
    whole, _, _, one = _read(path)
    split, _, _, ranges = _read(path, max_records=3)
    assert len(one) == 1 and len(ranges) > 5
    assert all(r[0].warc_type == "response" for r in ranges[1:])
    assert sum(len(r) for r in ranges) == 41
    assert split == whole


def _group(writer: WARCWriter, source_url: str, hops: list[tuple[str, int]], final_url: str, body: bytes,
           metadata: dict | None, date: str = "2026-11-20T10:00:00Z") -> None:
    """One fetch as our crawler writes it (docs/contracts.md): request + 3xx response per hop,
    request + final response, one metadata record concurrent to the final response."""
    for hop_url, status in hops + [(final_url, 200)]:
        host = hop_url.split("/")[2]
        writer.write_record(writer.create_warc_record(
            hop_url, "request", warc_headers_dict={"WARC-Date": date},
            http_headers=StatusAndHeaders("GET / HTTP/1.1", [("Host", host)], is_http_request=True)))
        if status == 200:
            headers = [("Content-Type", "text/html"), ("Content-Length", str(len(body)))]
            payload = body
        else:
            location = hops[hops.index((hop_url, status)) + 1][0] if (hop_url, status) != hops[-1] else final_url
            headers = [("Location", location.replace(f"https://{host}", "")), ("Content-Length", "0")]
            payload = b""
        response = writer.create_warc_record(
            hop_url, "response", payload=io.BytesIO(payload), length=len(payload),
            warc_headers_dict={"WARC-Date": date},
            http_headers=StatusAndHeaders(f"{status} X", headers, protocol="HTTP/1.1"))
        writer.write_record(response)
    if metadata is not None:
        fields = "".join(f"{name}: {value}\r\n" for name, value in metadata.items()).encode()
        writer.write_record(writer.create_warc_record(
            final_url, "metadata", payload=io.BytesIO(fields), length=len(fields),
            warc_content_type="application/warc-fields",
            warc_headers_dict={"WARC-Date": date,
                               "WARC-Concurrent-To": response.rec_headers.get_header("WARC-Record-ID")}))


def test_metadata_provenance_redirects_foreign_and_revisit_records(tmp_path):
    path = str(tmp_path / "new.warc.gz")
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True, warc_version="1.1")
        writer.write_record(writer.create_warcinfo_record("new.warc.gz", {"software": "tests"}))
        _group(writer, "http://reddit-link.example/a", [("http://reddit-link.example/a", 301),
                                                        ("https://mid.example/b", 302)],
               "https://mid.example/final", HTML.encode(), {
                   "WebText-Source-URL": "http://reddit-link.example/a", "WebText-Post-Ids": "p2,p1",
                   "WebText-Subreddits": "news", "WebText-Score": "7", "WebText-First-Created-UTC": "1500000000",
                   "WebText-Redirect-Chain": "", "WebText-Fetch-Outcome": "ok", "WebText-Source": "archive",
                   "WebText-Archive": "wayback", "WebText-Capture-Time": "2017-06-01T12:00:00Z",
                   "WebText-Capture-URL": "http://127.0.0.1/web/2017id_/x"})
        _group(writer, "https://foreign.example/x", [], "https://foreign.example/x", HTML.encode(), None)
        writer.write_record(writer.create_revisit_record(
            "https://foreign.example/x", "sha1:AAAA", "https://foreign.example/x", "2026-11-19T10:00:00Z",
            http_headers=StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1"),
            warc_headers_dict={"WARC-Date": "2026-11-21T10:00:00Z"}))
    for max_records in (64, 1):  # a range never separates a response from its metadata record
        pages, drops, redirects, _ = _read(path, max_records=max_records)
        archived, foreign, revisit = pages
        assert archived["url"] == "http://reddit-link.example/a"
        assert archived["final_url"] == "https://mid.example/final"
        assert archived["post_ids"] == ["p1", "p2"] and archived["score"] == 7 and archived["created_utc"] == 1500000000
        assert archived["source"] == "archive" and archived["capture_time"] == "2017-06-01T12:00:00.000000+00:00"
        assert archived["record_type"] == "response" and "body" not in archived
        with open(path, "rb") as fh:  # the page says where its body is
            assert read_body_at(fh, *archived["body_at"][1:]) == HTML.encode()
        assert archived["body_at"][0] == path and archived["body_at"][3] == archived["warc_offset"]
        assert archived["payload_digest"].startswith("sha1:")
        assert foreign["url"] == foreign["final_url"] == "https://foreign.example/x"
        assert (foreign["post_ids"], foreign["subreddits"], foreign["score"], foreign["created_utc"]) == (None,) * 4
        assert foreign["source"] == "live" and foreign["capture_time"] is None and len(foreign["id"]) == 16
        assert revisit["record_type"] == "revisit" and revisit["body_at"] is None
        assert revisit["refers_to_uri"] == "https://foreign.example/x"
        assert revisit["refers_to_date"] == "2026-11-19T10:00:00.000000+00:00"
        assert revisit["id"] == foreign["id"]
        assert [(reason, url) for reason, url, _ in drops] == [("redirect", "http://reddit-link.example/a"),
                                                               ("redirect", "https://mid.example/b")]
        assert [(r["from_url"], r["to_url"]) for r in redirects] == [
            ("http://reddit-link.example/a", "https://mid.example/b"),
            ("https://mid.example/b", "https://mid.example/final")]
        assert redirects[0]["warc_file"] == "f.warc" and redirects[0]["warc_offset"] == drops[0][2]
        assert redirects[0]["crawl_time"] == "2026-11-20T10:00:00.000000+00:00"
