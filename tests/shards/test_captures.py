"""Stage `captures`: revisits, provenance from a URL table through redirects, one capture per id.

The rules are tested as functions; the Beam transform on hand-made page dicts (one pipeline per
configuration); the whole build on WARCs written with warcio from scratch (no WebText-* headers).
"""

from __future__ import annotations

import hashlib
import io
import os

import apache_beam as beam
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.beam import collect_stage_counts, pipeline_options
from core.beam_config import BeamConfig
from core.stats import StageCounts, write_stats_json
from crawl.url_table import STATS_FILE
from crawl.urls import url_key
from shards.captures import (
    Captures,
    best_origin,
    capture_instant,
    choose_capture,
    redirect_edge,
    resolve_revisit,
)
from shards.split import doc_id
from shards.verify import verify_dataset
from tests.shards.conftest import run_cli
from tests.shards.warc_fixture import ARTICLES, article_html


def at(body: str) -> tuple:
    """A `body_at` standing for the body `body` (the stage moves locations, never reads them)."""
    return (f"/warcs/{body}.warc.gz", 0, 100, 0)


def page(url: str, body: str | None = "page", **fields) -> dict:
    """A page dict as the read stage emits it (shards/warc_source.py), without Reddit provenance;
    `body` names its body (None: a revisit's)."""
    return {"id": doc_id(url_key(url)), "url": url, "final_url": url, "domain": url.split("/")[2],
            "body_at": at(body) if body is not None else None,
            "content_type": "text/html", "post_ids": None, "subreddits": None, "score": None, "created_utc": None,
            "crawl_time": "2026-11-20T10:00:00.000000+00:00", "warc_file": "a.warc.gz", "warc_offset": 0,
            "source": "live", "capture_time": None, "payload_digest": "sha1:" + hashlib.sha1((body or "").encode()).hexdigest(),
            "record_type": "response", "refers_to_uri": None, "refers_to_date": None, **fields}


def revisit(url: str, digest: str, refers_to_uri: str | None = None, **fields) -> dict:
    return page(url, None, payload_digest=digest, record_type="revisit", refers_to_uri=refers_to_uri, **fields)


def redirect(from_url: str, to_url: str) -> dict:
    return {"from_url": from_url, "to_url": to_url, "warc_file": "a.warc.gz", "warc_offset": 0,
            "crawl_time": "2026-11-20T10:00:00.000000+00:00"}


def write_url_table(directory, rows: list[dict]) -> str:
    """A finished `webtext harvest` output holding `rows` (url, score, post_ids, subreddits, created)."""
    directory.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "url": [row["url"] for row in rows],
        "url_key": [url_key(row["url"]) for row in rows],
        "post_ids": pa.array([row.get("post_ids", ["p1"]) for row in rows], pa.list_(pa.string())),
        "subreddits": pa.array([row.get("subreddits", ["news"]) for row in rows], pa.list_(pa.string())),
        "score": pa.array([row.get("score", 3) for row in rows], pa.int64()),
        "first_created_utc": pa.array([row.get("created_utc", 1_500_000_000) for row in rows], pa.int64()),
    })
    pq.write_table(table, directory / "urls-00000-of-00001.parquet")
    write_stats_json(directory / STATS_FILE, {"harvest": StageCounts("harvest", len(rows), len(rows))},
                     {"urls": len(rows), "complete": True})
    return str(directory)


# ---- rules ------------------------------------------------------------------------------------

def test_capture_instant_reads_archive_time_first_in_both_forms():
    assert capture_instant(page("https://a.example/x", capture_time="20171130120000")) == \
        capture_instant(page("https://a.example/x", crawl_time="2017-11-30T12:00:00Z"))
    assert capture_instant(page("https://a.example/x", crawl_time="yesterday")) is None


def test_choose_capture_order():
    url = "https://a.example/story"
    old_live = page(url, "old", crawl_time="2026-01-01T00:00:00+00:00")
    new_live = page(url, "new", crawl_time="2026-06-01T00:00:00+00:00", warc_file="b.warc.gz", payload_digest="sha1:B")
    newer_archive = page(url, "arch", source="archive", capture_time="2026-09-01T00:00:00+00:00")
    same_time_small_digest = {**new_live, "payload_digest": "sha1:A", "warc_file": "c.warc.gz"}
    bodiless = revisit(url, "sha1:x", crawl_time="2027-01-01T00:00:00+00:00")
    # live over archive, whatever the times; then the latest; then the smallest digest; a revisit last
    assert choose_capture([newer_archive, old_live])[0]["body_at"] == at("old")
    assert choose_capture([old_live, new_live])[0]["body_at"] == at("new")
    assert choose_capture([new_live, same_time_small_digest])[0]["warc_file"] == "c.warc.gz"
    kept, others = choose_capture([bodiless, newer_archive, old_live, new_live])
    assert (kept["body_at"], kept["dup_count"]) == (at("new"), 3)
    assert others[-1] is bodiless
    # the order of the input does not matter
    assert choose_capture([new_live, old_live]) == choose_capture([old_live, new_live])
    tie_a, tie_b = {**new_live, "warc_offset": 500}, {**new_live, "warc_offset": 20}
    assert choose_capture([tie_a, tie_b])[0]["warc_offset"] == 20


def test_resolve_revisit():
    original = page("https://a.example/one", "body one", payload_digest="sha1:D1")
    same_url = revisit("https://a.example/one", "sha1:D1")
    other_url = revisit("https://b.example/two", "sha1:D1", refers_to_uri="https://a.example/one")
    assert resolve_revisit(same_url, [original]) is same_url  # stays bodiless: loses to its original
    lent = resolve_revisit(other_url, [original])
    assert (lent["body_at"], lent["id"], lent["url"]) == (at("body one"), other_url["id"], "https://b.example/two")
    # the original must be the refers-to URL's capture, not any page with that digest
    assert resolve_revisit(revisit("https://b.example/two", "sha1:D1"), [original]) is None
    assert resolve_revisit(same_url, []) is None


def test_redirect_edges_and_origin_choice():
    assert redirect_edge(redirect("https://a.example/old", "/new?x=1")) == ("a.example/new?x=1", "a.example/old")
    assert redirect_edge(redirect("https://a.example/x", "http://www.a.example/x")) is None  # same url_key
    assert redirect_edge(redirect("mailto:x", "https://a.example/")) is None
    near, far = {"url_key": "b", "score": 1}, {"url_key": "a", "score": 99}
    assert best_origin([(2, far), (1, near)]) == (1, near)
    assert best_origin([(1, {"url_key": "b", "score": 5}), (1, {"url_key": "a", "score": 5})])[1]["url_key"] == "a"
    assert best_origin([(1, {"url_key": "b", "score": 9}), (1, {"url_key": "a", "score": 5})])[1]["url_key"] == "b"


def test_unknown_urls_setting_is_checked():
    with pytest.raises(ValueError, match="unknown_urls must be one of"):
        Captures(None, "maybe", 3)


def test_counts_of_manifests_from_before_the_captures_stage_still_chain():
    """`webtext verify` and decontamination of a dataset built before the stage existed."""
    from shards.manifest import STAGE_CHAIN, count_problems, ordered_counts

    old = {stage: StageCounts(stage, 4, 4) for stage in STAGE_CHAIN if stage != "captures"}
    assert count_problems(old, 4) == [] and "captures" not in ordered_counts(old)
    assert count_problems({**old, "captures": StageCounts("captures", 3, 3)}, 4) == [
        "records lost between stages: read.out=4 != captures.in=3",
        "records lost between stages: captures.out=3 != extract.in=4"]


# ---- the Beam transform ------------------------------------------------------------------------

KEPT_OUT: list[dict] = []
DROPPED_OUT: list[dict] = []


def _collect_kept(doc: dict) -> None:  # module functions pickle by name: the in-memory runner appends here
    KEPT_OUT.append(doc)


def _collect_dropped(doc: dict) -> None:
    DROPPED_OUT.append(doc)


def run_captures(pages: list[dict], redirects: list[dict], url_files=None, unknown_urls="drop", max_redirects=3):
    """(kept pages by url, drops, stage counts) of the Captures transform (in-memory runner)."""
    KEPT_OUT.clear()
    DROPPED_OUT.clear()
    with beam.Pipeline(options=pipeline_options(BeamConfig())) as pipeline:
        kept, dropped = {"pages": pipeline | "Pages" >> beam.Create(pages),
                         "redirects": pipeline | "Redirects" >> beam.Create(redirects)} | Captures(
            url_files, unknown_urls, max_redirects)
        _ = kept | "KeepKept" >> beam.Map(_collect_kept)
        _ = dropped | "KeepDropped" >> beam.Map(_collect_dropped)
    counts = collect_stage_counts(pipeline.result)["captures"]
    assert counts.reconciles() and counts.records_in == len(pages)
    assert counts.records_out == len(KEPT_OUT) and counts.total_dropped == len(DROPPED_OUT)
    kept_by_url = {doc["url"]: doc for doc in KEPT_OUT}
    assert len(kept_by_url) == len({doc["id"] for doc in KEPT_OUT}) == len(KEPT_OUT)
    return kept_by_url, list(DROPPED_OUT), counts


@pytest.fixture(scope="module")
def without_table():
    pages = [
        page("https://twice.example/a", "first", crawl_time="2026-01-01T00:00:00Z", warc_file="old/a.warc.gz"),
        page("https://twice.example/a", "second", crawl_time="2026-02-01T00:00:00Z", warc_file="new/a.warc.gz"),
        page("https://both.example/b", "live", crawl_time="2026-01-01T00:00:00Z"),
        page("https://both.example/b", "archived", source="archive", capture_time="2017-12-01T00:00:00Z",
             crawl_time="2026-03-01T00:00:00Z"),
        page("https://revisited.example/c", "original c", payload_digest="sha1:C"),
        revisit("https://revisited.example/c", "sha1:C", crawl_time="2026-05-01T00:00:00Z"),
        page("https://origin.example/d", "original d", payload_digest="sha1:D"),
        revisit("https://copy.example/e", "sha1:D", refers_to_uri="https://origin.example/d"),
        revisit("https://lonely.example/f", "sha1:F"),
        revisit("https://wrong.example/g", "sha1:G", refers_to_uri="https://origin.example/d"),
    ]
    return run_captures(pages, [])


def test_one_capture_per_id_and_the_rest_are_duplicate_captures(without_table):
    kept, dropped, counts = without_table
    assert kept["https://twice.example/a"]["body_at"] == at("second")  # the latest live capture
    assert kept["https://both.example/b"]["body_at"] == at("live")  # live over archive
    assert kept["https://revisited.example/c"]["body_at"] == at("original c")  # the revisit loses to its original
    assert kept["https://twice.example/a"]["dup_count"] == 1
    duplicates = sorted((row["url"], row["duplicate_of"], row["stage"]) for row in dropped
                        if row["reason"] == "duplicate_capture")
    assert duplicates == [(url, doc_id(url_key(url)), "captures") for url in
                          ("https://both.example/b", "https://revisited.example/c", "https://twice.example/a")]
    assert counts.dropped == {"duplicate_capture": 3, "revisit_without_original": 2}


def test_revisits_resolve_to_their_original(without_table):
    kept, dropped, _ = without_table
    copy = kept["https://copy.example/e"]
    assert (copy["body_at"], copy["final_url"], copy["id"]) == (
        at("original d"), "https://copy.example/e", doc_id(url_key("https://copy.example/e")))
    assert kept["https://origin.example/d"]["body_at"] == at("original d")
    assert sorted(row["url"] for row in dropped if row["reason"] == "revisit_without_original") == [
        "https://lonely.example/f", "https://wrong.example/g"]


@pytest.fixture(scope="module")
def with_table(tmp_path_factory):
    urls = write_url_table(tmp_path_factory.mktemp("urls"), [
        {"url": "https://listed.example/a", "score": 7, "post_ids": ["p2", "p1"], "subreddits": ["z", "news"]},
        {"url": "https://short.example/b", "score": 4},
        {"url": "https://low.example/m", "score": 5},
        {"url": "https://high.example/m", "score": 9},
        {"url": "https://far.example/r", "score": 3},
    ])
    from crawl.url_table import url_table_files

    pages = [
        page("https://listed.example/a", score=1, post_ids=["old"], subreddits=["old"], created_utc=5),
        page("http://www.listed.example/a", "second capture", crawl_time="2019-01-01T00:00:00Z"),
        page("https://landing.example/z"),  # short.example/b -> hop.example/y -> landing.example/z
        page("https://target.example/p"),  # low.example/m and high.example/m both redirect here
        page("https://unknown.example/q"),
        page("https://deep.example/r4"),  # four hops from far.example/r: one more than max_redirects
        page("https://loop.example/2"),
    ]
    redirects = [
        redirect("https://short.example/b", "https://hop.example/y"),
        redirect("https://hop.example/y", "https://landing.example/z"),
        redirect("https://low.example/m", "https://target.example/p"),
        redirect("https://high.example/m", "https://target.example/p"),
        redirect("https://far.example/r", "https://deep.example/r1"),
        redirect("https://deep.example/r1", "https://deep.example/r2"),
        redirect("https://deep.example/r2", "https://deep.example/r3"),
        redirect("https://deep.example/r3", "https://deep.example/r4"),
        redirect("https://loop.example/1", "https://loop.example/2"),
        redirect("https://loop.example/2", "https://loop.example/1"),
    ]
    files = url_table_files(urls)
    return run_captures(pages, redirects, files), run_captures(pages, redirects, files, unknown_urls="keep")


def test_url_table_provenance_replaces_the_warc_s(with_table):
    (kept, dropped, counts), _ = with_table
    listed = kept["https://listed.example/a"]
    assert (listed["score"], listed["post_ids"], listed["subreddits"], listed["created_utc"]) == (
        7, ["p1", "p2"], ["news", "z"], 1_500_000_000)
    assert listed["dup_count"] == 1  # the http://www. capture is the same document
    assert listed["body_at"] == at("page")  # live, then latest: the 2026 capture


def test_a_page_reached_by_redirects_gets_the_harvested_url(with_table):
    (kept, _, _), _ = with_table
    short = kept["https://short.example/b"]
    assert (short["id"], short["final_url"], short["score"]) == (
        doc_id(url_key("https://short.example/b")), "https://landing.example/z", 4)
    # two harvested URLs redirect to one page: the higher score takes it
    assert kept["https://high.example/m"]["final_url"] == "https://target.example/p"
    assert "https://low.example/m" not in kept


def test_pages_no_table_url_leads_to(with_table):
    (kept, dropped, counts), (kept_all, dropped_all, counts_all) = with_table
    unknown = {"https://unknown.example/q", "https://deep.example/r4", "https://loop.example/2"}
    assert sorted(row["url"] for row in dropped if row["reason"] == "not_in_url_table") == sorted(unknown)
    assert counts.dropped == {"not_in_url_table": 3, "duplicate_capture": 1}
    assert not unknown & set(kept)
    # build.unknown_urls=keep: kept, with typed null provenance
    assert counts_all.dropped == {"duplicate_capture": 1}
    for url in unknown:
        assert [kept_all[url][name] for name in ("post_ids", "subreddits", "score", "created_utc")] == [None] * 4


# ---- the whole build on WARCs written with warcio from scratch ---------------------------------

ARCHIVE_TIME = "2017-12-01T08:00:00Z"


class ForeignWarc:
    """A WARC as other crawlers write it: response, revisit and 3xx records, no WebText-* provenance."""

    def __init__(self, path):
        from warcio.warcwriter import WARCWriter

        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(path, "wb")
        self.writer = WARCWriter(self.fh, gzip=True, warc_version="1.1")

    def response(self, url: str, html: str, date: str, status: str = "200 OK", location: str | None = None,
                 metadata: dict | None = None) -> str:
        """Write a response (and, given `metadata`, our crawler's metadata record); returns its payload digest."""
        from warcio.statusandheaders import StatusAndHeaders

        body = html.encode("utf-8")
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
        if location:
            headers.append(("Location", location))
        record = self.writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), length=len(body),
            http_headers=StatusAndHeaders(status, headers, protocol="HTTP/1.1"), warc_headers_dict={"WARC-Date": date})
        self.writer.write_record(record)
        if metadata:
            fields = "".join(f"{name}: {value}\r\n" for name, value in metadata.items()).encode()
            self.writer.write_record(self.writer.create_warc_record(
                url, "metadata", payload=io.BytesIO(fields), length=len(fields),
                warc_content_type="application/warc-fields",
                warc_headers_dict={"WARC-Date": date,
                                   "WARC-Concurrent-To": record.rec_headers.get_header("WARC-Record-ID")}))
        return record.rec_headers.get_header("WARC-Payload-Digest")

    def revisit(self, url: str, digest: str, refers_to_uri: str, refers_to_date: str, date: str) -> None:
        from warcio.statusandheaders import StatusAndHeaders

        self.writer.write_record(self.writer.create_revisit_record(
            url, digest, refers_to_uri, refers_to_date,
            http_headers=StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.1"),
            warc_headers_dict={"WARC-Date": date}))

    def close(self) -> None:
        self.fh.close()


def article(slug: str, site: str) -> str:
    title, paragraphs = ARTICLES[slug]
    return article_html(title, paragraphs, site)


def rows_of(out: str) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(os.path.join(out, split)) for split in ("train", "val", "test")],
                     ignore_index=True).set_index("url")


def run(warc, out, urls: str | None = None, overrides: list[str] = ()) -> dict:
    from shards.build import run_build
    from shards.cli import dataset_config
    from webtext.config import load_config

    config = load_config(overrides=["dedup.near=false", "crawl.max_redirects=3", *overrides])
    return run_build(dataset_config(config), config.beam, warc, out, urls=urls)


@pytest.fixture(scope="module")
def foreign(tmp_path_factory):
    """One warcio WARC: three articles, one reached through two 3xx hops, and three revisits."""
    root = tmp_path_factory.mktemp("foreign")
    warc = ForeignWarc(root / "crawl.warc.gz")
    warc.response("https://frogs.example/new-species", article("frog-species", "frogs.example"), "2024-03-01T10:00:00Z")
    warc.response("https://old.example/bikes", "", "2024-03-01T10:01:00Z", "301 Moved Permanently",
                  location="https://hop.example/bikes")
    warc.response("https://hop.example/bikes", "", "2024-03-01T10:01:01Z", "302 Found", location="/2024/bikes")
    warc.response("https://hop.example/2024/bikes", article("council-bikes", "hop.example"), "2024-03-01T10:01:02Z")
    comet_date = "2024-03-01T10:02:00Z"
    comet = warc.response("https://sky.example/comet", article("comet", "sky.example"), comet_date)
    warc.revisit("https://sky.example/comet", comet, "https://sky.example/comet", comet_date, "2024-04-01T10:00:00Z")
    warc.revisit("https://mirror.example/comet", comet, "https://sky.example/comet", comet_date,
                 "2024-04-01T10:00:01Z")
    warc.revisit("https://gone.example/page", "sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "https://gone.example/page",
                 "2023-01-01T00:00:00Z", "2024-04-01T10:00:02Z")
    warc.close()
    urls = write_url_table(root / "urls", [
        {"url": "https://frogs.example/new-species", "score": 12, "post_ids": ["abc"], "subreddits": ["science"],
         "created_utc": 1_400_000_000},
        {"url": "https://old.example/bikes", "score": 30, "post_ids": ["def", "ghi"], "subreddits": ["bikes"],
         "created_utc": 1_450_000_000},
    ])
    plain_out, joined_out = str(root / "plain"), str(root / "joined")
    return (root, plain_out, run(str(root / "crawl.warc.gz"), plain_out),
            joined_out, run(str(root / "crawl.warc.gz"), joined_out, urls=urls))


def test_a_warcio_warc_builds_into_documents_with_null_provenance(foreign):
    _, out, manifest, _, _ = foreign
    rows = rows_of(out)
    # the comet's revisit under mirror.example got its body; of the two copies exact dedup keeps the
    # smaller URL (no scores to rank by)
    assert set(rows.index) == {"https://frogs.example/new-species", "https://hop.example/2024/bikes",
                               "https://mirror.example/comet"}
    frog = rows.loc["https://frogs.example/new-species"]
    assert frog["final_url"] == "https://frogs.example/new-species" and "cloud forest" in frog["text"]
    assert rows[["score", "created_utc"]].isna().all().all()
    assert rows["post_ids"].isna().all() and rows["subreddits"].isna().all()
    table = pq.read_table(os.path.join(out, "train"))
    assert table.schema.field("score").type == pa.int64() and table.schema.field("post_ids").type == pa.list_(
        pa.field("element", pa.string()))
    with open(os.path.join(out, "README.md")) as fh:
        assert "3 of 3 documents have no Reddit provenance" in fh.read()
    assert verify_dataset(out) == []


def test_revisits_in_a_build(foreign):
    _, out, manifest, _, _ = foreign
    captures = manifest["stages"]["captures"]
    assert captures["dropped"] == {"duplicate_capture": 1, "revisit_without_original": 1}
    assert manifest["stages"]["read"]["out"] == captures["in"] and captures["out"] == manifest["stages"]["extract"]["in"]
    dropped = pd.read_parquet(os.path.join(out, "dropped"))
    by_reason = {(row.url, row.stage, row.reason): row.duplicate_of for row in dropped.itertuples()}
    comet_id = doc_id(url_key("https://sky.example/comet"))
    mirror_id = rows_of(out).loc["https://mirror.example/comet", "id"]
    assert by_reason[("https://sky.example/comet", "captures", "duplicate_capture")] == comet_id  # the revisit
    assert by_reason[("https://sky.example/comet", "dedup_exact", "exact_duplicate")] == mirror_id
    assert ("https://gone.example/page", "captures", "revisit_without_original") in by_reason
    assert rows_of(out).loc["https://mirror.example/comet", "dup_count"] == 2  # the original and its revisit


def test_urls_join_provenance_also_through_3xx_records(foreign):
    _, _, _, out, manifest = foreign
    rows = rows_of(out)
    assert set(rows.index) == {"https://frogs.example/new-species", "https://old.example/bikes"}
    frog = rows.loc["https://frogs.example/new-species"]
    assert (frog["score"], list(frog["post_ids"]), list(frog["subreddits"]), frog["created_utc"]) == (
        12, ["abc"], ["science"], 1_400_000_000)
    bikes = rows.loc["https://old.example/bikes"]
    assert (bikes["id"], bikes["final_url"], bikes["score"], list(bikes["post_ids"])) == (
        doc_id(url_key("https://old.example/bikes")), "https://hop.example/2024/bikes", 30, ["def", "ghi"])
    # the comet, its revisit and the mirror's revisit are in no harvest: the URL join drops them first
    assert manifest["stages"]["captures"]["dropped"] == {"not_in_url_table": 3, "revisit_without_original": 1}
    assert [entry["path"] for entry in manifest["url_table"]] == ["urls-00000-of-00001.parquet"]
    with open(os.path.join(out, "README.md")) as fh:
        assert "no Reddit provenance" not in fh.read()
    assert verify_dataset(out) == []


def test_unknown_urls_keep_and_a_changed_url_table_rebuilds(foreign, tmp_path):
    root, _, _, _, _ = foreign
    out = str(tmp_path / "kept")
    manifest = run(str(root / "crawl.warc.gz"), out, urls=str(root / "urls"), overrides=["build.unknown_urls=keep"])
    rows = rows_of(out)
    assert "not_in_url_table" not in manifest["stages"]["captures"]["dropped"]
    assert pd.isna(rows.loc["https://mirror.example/comet", "score"]) and rows.loc["https://old.example/bikes", "score"] == 30
    # the same build without the table is not "up to date": the table is one of its inputs
    again = run(str(root / "crawl.warc.gz"), out, overrides=["build.unknown_urls=keep"])
    assert "url_table" not in again
    assert pd.isna(rows_of(out).loc["https://hop.example/2024/bikes", "score"])


def test_urls_of_an_unfinished_harvest_is_refused(foreign, tmp_path):
    root, _, _, _, _ = foreign
    (tmp_path / "urls").mkdir()
    pq.write_table(pa.table({"url": ["https://a.example/"]}), tmp_path / "urls" / "urls-00000.parquet")
    result = run_cli("build", "--warc", str(root / "crawl.warc.gz"), "--out", str(tmp_path / "out"),
                     "--urls", str(tmp_path / "urls"))
    assert result.returncode == 1
    assert "_harvest_stats.json is missing" in result.stderr and "rerun `webtext harvest" in result.stderr
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_merged_crawl_folders_and_archive_captures_build_one_document_per_url(tmp_path):
    """Two crawl folders with the same URL (given as two --warc paths); a live and an archive capture."""
    slug_url = "https://twice.example/robotics"
    for folder, date in (("crawl-a", "2025-01-01T00:00:00Z"), ("crawl-b", "2025-06-01T00:00:00Z")):
        warc = ForeignWarc(tmp_path / folder / "warc" / "part.warc.gz")
        warc.response(slug_url, article("robotics", "twice.example").replace("fourteen", date[:7]), date)
        warc.close()
    both = "https://both.example/ferry"
    ours = {"WebText-Source-URL": both, "WebText-Post-Ids": "p1", "WebText-Subreddits": "news",
            "WebText-Score": "5", "WebText-First-Created-UTC": "1500000000", "WebText-Fetch-Outcome": "ok"}
    warc = ForeignWarc(tmp_path / "crawl-b" / "warc" / "ours.warc.gz")
    warc.response(both, article("ferry", "both.example") + "<!-- archive -->", "2026-02-01T00:00:00Z",
                  metadata={**ours, "WebText-Source": "archive", "WebText-Archive": "wayback",
                            "WebText-Capture-Time": ARCHIVE_TIME})
    warc.response(both, article("ferry", "both.example"), "2026-01-01T00:00:00Z",
                  metadata={**ours, "WebText-Source": "live"})
    warc.close()
    out = str(tmp_path / "dataset")
    manifest = run([str(tmp_path / "crawl-a"), str(tmp_path / "crawl-b")], out)
    rows = rows_of(out)
    assert rows.index.is_unique and set(rows.index) == {slug_url, both}
    assert "2025-06" in rows.loc[slug_url, "text"]  # the latest capture
    assert rows.loc[both, "crawl_time"] == pd.Timestamp("2026-01-01T00:00:00Z")  # live over a later archive fetch
    assert rows.loc[both, "score"] == 5
    assert manifest["stages"]["captures"]["dropped"] == {"duplicate_capture": 2}
    assert (rows["dup_count"] == 1).all()
    dropped = pd.read_parquet(os.path.join(out, "dropped"))
    assert sorted(dropped["url"]) == sorted([slug_url, both])
    assert set(dropped["duplicate_of"]) == set(rows["id"])
    assert verify_dataset(out) == []
