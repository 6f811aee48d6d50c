"""The build's WARC source in Beam: inputs, ranges spread over workers, counted skips."""

from __future__ import annotations

import io
import os

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from core.beam import DROPPED, KEPT, collect_stage_counts, pipeline_options
from core.beam_config import BeamConfig
from shards.warc_reader import scan
from shards.warc_source import (REDIRECTS, IndexWarcFile, ReadBodies, ReadWarc, ReadWarcRange, crawl_folder, find_warc_files,
                                list_warc_inputs, warc_root)
from tests.shards.warc_fixture import _page, article_html, write_warc

HTML = article_html("A title", ["Some words in a paragraph."], "site.example")


def _write_new_format(path: str) -> None:
    """A redirect hop and the final page with its metadata record, as our crawler writes them."""
    with open(path, "wb") as fh:
        writer = WARCWriter(fh, gzip=True, warc_version="1.1")
        writer.write_record(writer.create_warcinfo_record(os.path.basename(path), {"software": "tests"}))
        for url, status, extra in [("http://old.example/a", 301, [("Location", "/b")]),
                                   ("http://old.example/b", 200, [("Content-Type", "text/html")])]:
            body = HTML.encode() if status == 200 else b""
            response = writer.create_warc_record(
                url, "response", payload=io.BytesIO(body), length=len(body),
                warc_headers_dict={"WARC-Date": "2026-11-20T10:00:00Z"},
                http_headers=StatusAndHeaders(f"{status} X", extra, protocol="HTTP/1.1"))
            writer.write_record(response)
        fields = (b"WebText-Source-URL: http://old.example/a\r\nWebText-Post-Ids: x1\r\nWebText-Subreddits: news\r\n"
                  b"WebText-Score: 9\r\nWebText-First-Created-UTC: 1500000000\r\nWebText-Source: live\r\n")
        writer.write_record(writer.create_warc_record(
            "http://old.example/b", "metadata", payload=io.BytesIO(fields), length=len(fields),
            warc_content_type="application/warc-fields",
            warc_headers_dict={"WARC-Concurrent-To": response.rec_headers.get_header("WARC-Record-ID")}))


@pytest.fixture(scope="module")
def read_folder(tmp_path_factory):
    """One Beam read (2 workers, small ranges) of a folder of good, damaged and missing files:
    (root, StageCounts of `read`); the pipeline asserts pages, drops and redirects itself."""
    root = tmp_path_factory.mktemp("warcs")
    good = _page(1, "https://good.example/a", HTML, 5)
    bad_score = _page(2, "https://bad.example/score", HTML, 5)
    bad_url = _page(3, "https://bad host.example/", HTML, 5)
    bad_date = _page(4, "https://bad.example/date", HTML, 5)
    bad_date.fetch_time = "yesterday"
    bad_score.score = "many"
    write_warc(str(root / "mixed.warc.gz"), [good, bad_score, bad_url, bad_date])
    (root / "garbage.warc.gz").write_bytes(b"\x1f\x8b\x08\x00 definitely not gzip data")
    (root / "empty.warc.gz").write_bytes(b"")
    cut = root / "cut.warc.gz"
    write_warc(str(cut), [_page(i, f"https://t.example/{i}", HTML, 3) for i in range(3)])
    os.truncate(cut, os.path.getsize(cut) - 100)
    junk = root / "junk.warc.gz"
    write_warc(str(junk), [_page(i, f"https://j.example/{i}", HTML, 3) for i in range(20)])
    with open(junk, "rb") as fh:
        after_five = list(scan(fh, True))[5].offset
    data = junk.read_bytes()
    junk.write_bytes(data[:after_five] + os.urandom(4096) + data[after_five:])
    _write_new_format(str(root / "new.warc.gz"))
    files = list_warc_inputs([str(root)]) + [(str(root / "vanished.warc.gz"), "vanished.warc.gz")]

    urls = (["https://good.example/a", "https://t.example/0", "https://t.example/1", "http://old.example/a"]
            + [f"https://j.example/{i}" for i in range(20)])
    dropped = [
        ("bad_provenance", "https://bad.example/score", True, "mixed.warc.gz", True),
        ("bad_url", "https://bad host.example/", False, "mixed.warc.gz", True),
        ("bad_provenance", "https://bad.example/date", True, "mixed.warc.gz", True),
        ("warc_bad_record", None, False, "garbage.warc.gz", True),  # the whole file is one bad region
        ("warc_bad_record", "https://t.example/2", True, "cut.warc.gz", True),  # the record it broke in
        ("warc_bad_record", None, False, "junk.warc.gz", True),
        ("redirect", "http://old.example/a", True, "new.warc.gz", True),
        ("warc_read_error", None, False, "vanished.warc.gz", False),  # the file, not a record
    ]
    options = pipeline_options(BeamConfig(), ["--direct_running_mode=multi_threading", "--direct_num_workers=2"])
    with beam.Pipeline(options=options) as p:
        read = p | ReadWarc(files)
        assert_that(read[KEPT] | beam.Map(lambda page: page["url"]), equal_to(urls))
        assert_that(read[DROPPED] | beam.Map(lambda record: (
            record["reason"], record["url"], record["id"] is not None, record["warc_file"],
            record["warc_offset"] is not None)), equal_to(dropped), label="Dropped")
        assert_that(read[REDIRECTS] | beam.Map(lambda r: (r["from_url"], r["to_url"], r["warc_file"])),
                    equal_to([("http://old.example/a", "http://old.example/b", "new.warc.gz")]), label="Redirects")
    return root, collect_stage_counts(p.result)["read"]


def test_every_record_is_counted_once(read_folder):
    _root, counts = read_folder
    assert counts.dropped == {"bad_provenance": 2, "bad_url": 1, "warc_bad_record": 3, "redirect": 1,
                              "warc_read_error": 1}
    # pages 24, drops 8: the 20-page file with junk keeps all 20 and counts the junk once
    assert (counts.records_in, counts.records_out) == (32, 24)
    assert counts.reconciles()


def test_root_is_the_warc_folder(tmp_path):
    write_warc(str(tmp_path / "warc" / "a.warc.gz"), [_page(1, "https://a.example/", HTML, 3)])
    assert warc_root(str(tmp_path)) == str(tmp_path / "warc")
    assert warc_root(str(tmp_path / "warc")) == str(tmp_path / "warc")
    assert find_warc_files(str(tmp_path)) == [str(tmp_path / "warc" / "a.warc.gz")]
    assert crawl_folder([str(tmp_path)]) == str(tmp_path / "warc")
    assert crawl_folder([str(tmp_path), str(tmp_path)]) is None


def test_no_warc_files(tmp_path):
    (tmp_path / "notes.txt").write_text("not a warc")
    with pytest.raises(FileNotFoundError, match="no \\*.warc.gz files"):
        find_warc_files(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no \\*.warc.gz files match"):
        list_warc_inputs([str(tmp_path / "*.warc")])


def test_several_inputs_files_and_globs(tmp_path):
    for crawl in ("a", "b"):
        write_warc(str(tmp_path / crawl / "warc" / "crawl-00000.warc.gz"), [_page(1, "https://a.example/", HTML, 3)])
    single = tmp_path / "cc" / "CC-MAIN-1.warc.gz"
    write_warc(str(single), [_page(1, "https://a.example/", HTML, 3)])
    a, b = str(tmp_path / "a" / "warc" / "crawl-00000.warc.gz"), str(tmp_path / "b" / "warc" / "crawl-00000.warc.gz")
    assert list_warc_inputs([str(tmp_path / "a")]) == [(a, "crawl-00000.warc.gz")]  # one value: names as before
    assert list_warc_inputs([str(tmp_path / "a"), str(tmp_path / "b" / "warc")]) == [
        (a, "0/crawl-00000.warc.gz"), (b, "1/crawl-00000.warc.gz")]  # same names, told apart by position
    assert list_warc_inputs([str(tmp_path / "*" / "warc")]) == [  # a glob: named below its fixed folder
        (a, "a/warc/crawl-00000.warc.gz"), (b, "b/warc/crawl-00000.warc.gz")]
    assert list_warc_inputs([str(single), str(tmp_path / "a"), str(single)]) == [  # a file named twice: read once
        (str(single), "0/CC-MAIN-1.warc.gz"), (a, "1/crawl-00000.warc.gz")]
    assert list_warc_inputs([str(tmp_path / "cc" / "*.warc.gz")]) == [(str(single), "CC-MAIN-1.warc.gz")]


def test_provenance_and_offsets(tmp_path):
    page = _page(7, "http://www.Example.test/story?id=1", HTML, 42, final_url="https://example.test/story-1",
                 post_ids=["b2", "a1"], subreddits=["science", "news", "science"])
    write_warc(str(tmp_path / "x.warc.gz"), [page])
    (ranged,) = list(IndexWarcFile().process((str(tmp_path / "x.warc.gz"), "x.warc.gz")))
    (got,) = list(ReadWarcRange().process(ranged))
    assert got["url"] == "http://www.Example.test/story?id=1"
    assert got["final_url"] == "https://example.test/story-1"
    assert got["domain"] == "example.test"
    assert got["score"] == 42 and got["created_utc"] == 1_500_000_000 + 7 * 3600
    assert got["post_ids"] == ["a1", "b2"] and got["subreddits"] == ["news", "science"]
    assert got["crawl_time"] == "2026-11-20T10:07:00.123456+00:00"
    assert got["warc_file"] == "x.warc.gz" and got["warc_offset"] > 0
    assert "body" not in got and got["content_type"].startswith("text/html")
    assert len(got["id"]) == 16
    assert (got["source"], got["capture_time"], got["record_type"]) == ("live", None, "response")


def test_read_bodies_reads_each_kept_page_again_or_says_why(tmp_path):
    """Pages travel without bodies; `ReadBodies` fetches each by its `body_at`, seeking in files it
    keeps open, and a body no longer where it was read is the drop reason `warc_reread_error`."""
    htmls = [article_html(f"Title {i}", [f"Paragraph {i} words."], "site.example") for i in range(12)]
    files = []
    for name in ("a.warc.gz", "b.warc.gz"):
        path = str(tmp_path / name)
        write_warc(path, [_page(i, f"https://{name[0]}.example/{i}", html, 3) for i, html in enumerate(htmls)])
        files.append(path)
    pages = []
    for path in files:
        for ranged in IndexWarcFile().process((path, os.path.basename(path))):
            pages.extend(ReadWarcRange().process(ranged))
    reader = ReadBodies()
    reader.OPEN_FILES = 1  # every switch of file closes the other: reopening works too
    reader.setup()
    interleaved = [page for pair in zip(pages[:12], pages[12:]) for page in pair][::-1]
    read = [next(iter(reader.process(page))) for page in interleaved]
    assert [page["body"] for page in read] == [html.encode() for html in htmls for _ in (0, 1)][::-1]
    assert all(page["url"] == source["url"] for page, source in zip(read, interleaved))
    reader.teardown()

    data = open(files[0], "rb").read()
    with open(files[0], "wb") as fh:  # the file changed since the read stage: shifted by 7 bytes
        fh.write(b"garbage" + data)
    reader = ReadBodies()
    reader.setup()
    (gone,) = reader.process(pages[3])
    assert gone["body"] is None and gone["body_error"] == "warc_reread_error"
    os.remove(files[1])
    (vanished,) = reader.process(pages[15])
    assert vanished["body"] is None and vanished["body_error"] == "warc_reread_error"
    reader.teardown()
