"""Reading pages out of WARC files: provenance, counted skips, broken files."""

from __future__ import annotations

import os

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from shards.warc_source import ReadWarcPages, find_warc_files, warc_root
from tests.shards.warc_fixture import _page, article_html, write_warc
from core.beam import DROPPED, collect_stage_counts, pipeline_options
from core.beam_config import BeamConfig

HTML = article_html("A title", ["Some words in a paragraph."], "site.example")


def _read(root: str, expected_urls: list[str], expected_dropped: list[tuple]):
    """Run the read stage on every WARC under `root`; returns its StageCounts. Dropped records
    are compared as (reason, url, has an id, warc_file, has an offset)."""
    with beam.Pipeline(options=pipeline_options(BeamConfig())) as p:
        outputs = (p | beam.Create(find_warc_files(root))
                   | beam.ParDo(ReadWarcPages(root)).with_outputs(DROPPED, main="pages"))
        assert_that(outputs.pages | beam.Map(lambda page: page["url"]), equal_to(expected_urls))
        dropped = outputs[DROPPED] | beam.Map(lambda record: (
            record["reason"], record["url"], record["id"] is not None, record["warc_file"],
            record["warc_offset"] is not None))
        assert_that(dropped, equal_to(expected_dropped), label="Dropped")
    return collect_stage_counts(p.result)["read"]


def test_root_is_the_warc_folder(tmp_path):
    write_warc(str(tmp_path / "warc" / "a.warc.gz"), [_page(1, "https://a.example/", HTML, 3)])
    assert warc_root(str(tmp_path)) == str(tmp_path / "warc")
    assert warc_root(str(tmp_path / "warc")) == str(tmp_path / "warc")
    assert find_warc_files(str(tmp_path)) == [str(tmp_path / "warc" / "a.warc.gz")]


def test_no_warc_files(tmp_path):
    (tmp_path / "notes.txt").write_text("not a warc")
    with pytest.raises(FileNotFoundError, match="no \\*.warc.gz files"):
        find_warc_files(str(tmp_path))


def test_provenance_and_offsets(tmp_path):
    page = _page(7, "http://www.Example.test/story?id=1", HTML, 42, final_url="https://example.test/story-1",
                 post_ids=["b2", "a1"], subreddits=["science", "news", "science"])
    write_warc(str(tmp_path / "x.warc.gz"), [page])
    fn = ReadWarcPages(str(tmp_path))
    (got,) = list(fn.process(str(tmp_path / "x.warc.gz")))
    assert got["url"] == "http://www.Example.test/story?id=1"
    assert got["final_url"] == "https://example.test/story-1"
    assert got["domain"] == "example.test"
    assert got["score"] == 42 and got["created_utc"] == 1_500_000_000 + 7 * 3600
    assert got["post_ids"] == ["a1", "b2"] and got["subreddits"] == ["news", "science"]
    assert got["crawl_time"] == "2026-11-20T10:07:00.123456+00:00"
    assert got["warc_file"] == "x.warc.gz" and got["warc_offset"] > 0
    assert got["body"] == HTML.encode() and got["content_type"].startswith("text/html")
    assert len(got["id"]) == 16


def test_broken_records_and_files_are_counted_skips(tmp_path):
    good = _page(1, "https://good.example/a", HTML, 5)
    bad_score = _page(2, "https://bad.example/score", HTML, 5)
    bad_url = _page(3, "https://bad host.example/", HTML, 5)
    bad_date = _page(4, "https://bad.example/date", HTML, 5)
    bad_date.fetch_time = "yesterday"
    bad_score.score = "many"
    write_warc(str(tmp_path / "mixed.warc.gz"), [good, bad_score, bad_url, bad_date])
    (tmp_path / "garbage.warc.gz").write_bytes(b"\x1f\x8b\x08\x00 definitely not gzip data")
    (tmp_path / "empty.warc.gz").write_bytes(b"")
    counts = _read(str(tmp_path), ["https://good.example/a"], [
        ("bad_provenance", "https://bad.example/score", True, "mixed.warc.gz", True),
        ("bad_url", "https://bad host.example/", False, "mixed.warc.gz", True),
        ("bad_provenance", "https://bad.example/date", True, "mixed.warc.gz", True),
        ("warc_read_error", None, False, "garbage.warc.gz", False),  # the file, not a record
    ])
    assert counts.dropped == {"bad_provenance": 2, "bad_url": 1, "warc_read_error": 1}
    assert (counts.records_in, counts.records_out) == (5, 1)
    assert counts.reconciles()


def test_truncated_file_keeps_the_pages_before_the_cut(tmp_path, caplog):
    pages = [_page(i, f"https://t.example/{i}", HTML, 3) for i in range(3)]
    path = tmp_path / "cut.warc.gz"
    write_warc(str(path), pages)
    os.truncate(path, os.path.getsize(path) - 100)
    counts = _read(str(tmp_path), ["https://t.example/0", "https://t.example/1"],
                   [("warc_read_error", "https://t.example/2", True, "cut.warc.gz", True)])  # the record it broke in
    assert counts.dropped == {"warc_read_error": 1}
    assert (counts.records_in, counts.records_out) == (3, 2)
    assert str(path) in caplog.text
