"""The full build on the handwritten crawl: what survives, accounting, readers, card."""

from __future__ import annotations

import json
import logging
import os

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from core.lock import exclusive_folder
from crawl.urls import url_key
from shards.manifest import STAGE_CHAIN
from shards.split import doc_id
from shards.verify import verify_dataset
from shards.writer import DROPPED_SCHEMA, SCHEMA
from tests.shards.conftest import SMALL_SHARDS, build, run_cli
from tests.shards.warc_fixture import ARTICLES, _page, article_html, write_warc
from webtext.cli import main


def _all_rows(out: str) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(os.path.join(out, split)).assign(split=split)
                      for split in ("train", "val", "test")], ignore_index=True)


def _drops_by_stage(dropped: pd.DataFrame) -> dict:
    counts: dict = {}
    for (stage, reason), n in dropped.groupby(["stage", "reason"]).size().items():
        counts.setdefault(stage, {})[reason] = n
    return counts


def test_stage_counts_reconcile_and_chain(built):
    out, manifest = built
    stages = manifest["stages"]
    assert list(stages)[:len(STAGE_CHAIN)] == STAGE_CHAIN
    for name, sc in stages.items():
        assert sc["reconciles"], name
    for prev, nxt in zip(STAGE_CHAIN, STAGE_CHAIN[1:]):
        assert stages[prev]["out"] == stages[nxt]["in"], (prev, nxt)
    assert stages["write"]["out"] == manifest["rows"] == len(_all_rows(out))
    with open(os.path.join(out, "build_stats.json")) as fh:
        assert json.load(fh)["stages"] == stages


def test_counts_need_no_runner_metrics(built, caplog):
    """Beam's base PipelineResult is what a runner without metrics support hands back: its
    metrics() raises. The counts then come from the audit table and the shards alone, and they
    are the ones the metrics gave."""
    from apache_beam.runners.runner import PipelineResult, PipelineState

    from shards.build import _stage_counts

    _out, manifest = built
    with caplog.at_level(logging.WARNING, logger="shards.build"):
        counts, problems = _stage_counts(PipelineResult(PipelineState.DONE), manifest["dropped"], manifest["rows"])
    assert problems == []
    assert {stage: sc.to_json() for stage, sc in counts.items()} == manifest["stages"]
    assert "reported no Beam metrics" in caplog.text


def test_metrics_that_disagree_with_the_output_fail_the_build(built):
    """Where the runner does report metrics, they must say what the output says."""
    import apache_beam as beam

    from core.beam import StageCounter, pipeline_options
    from core.beam_config import BeamConfig
    from shards.build import _stage_counts

    class CountOneRead(beam.DoFn):
        def process(self, element):
            counter = StageCounter("read")
            counter.seen()
            counter.kept()
            yield element

    _out, manifest = built
    with beam.Pipeline(options=pipeline_options(BeamConfig())) as pipeline:
        pipeline | beam.Create([1]) | beam.ParDo(CountOneRead())
    _counts, problems = _stage_counts(pipeline.result, manifest["dropped"], manifest["rows"])
    assert any(problem.startswith("stage read: the runner's metrics count") for problem in problems), problems


def test_read_stage_counts_every_response_record(built, crawl):
    read = built[1]["stages"]["read"]
    # 12 articles + 3 exact copies + syndicated + wikipedia + german + bot check + 404 = 20 responses in
    # the two good files, 1 foreign response (a page without Reddit provenance), 2 complete responses
    # and 1 record cut off at the end (one unreadable region) in the truncated file.
    assert read["in"] == 20 + 1 + 3
    assert read["dropped"] == {"http_not_200": 1, "warc_bad_record": 1}
    assert read["out"] == 22


def test_what_survives(built, crawl):
    rows = _all_rows(built[0])
    urls = set(rows["url"])
    assert set(crawl.distinct_articles) <= urls  # incl. the pages before the cut in the truncated file
    assert crawl.wikipedia_source not in urls
    assert not rows["final_url"].str.contains("wikipedia.org").any()
    assert crawl.bot_check_url not in urls
    assert "https://latebreak.example/cut-off" not in urls
    # dedup keeps the copy with the highest Reddit score; the survivor names its cluster
    assert urls & set(crawl.exact_dup_urls) == {"https://mirror.test/lighthouse-lens"}
    assert len(urls & set(crawl.syndicated)) == 1
    assert rows["id"].is_unique
    assert (rows["dup_cluster"] == rows["id"]).all()
    comet = "https://dailyharbor.example/2026/comet"  # the foreign WARC's page is a copy of it, without a score
    assert rows.set_index("url")["dup_count"].to_dict() == {
        url: {"https://mirror.test/lighthouse-lens": 2, crawl.syndicated[0]: 1, comet: 1}.get(url, 0) for url in urls}
    dedup = built[1]["stages"]
    assert dedup["dedup_exact"]["dropped"] == {"exact_duplicate": 3}
    assert dedup["dedup_near"]["dropped"] == {"near_duplicate": 1}
    assert {"bot_check", "lang_de"} <= set(dedup["filter"]["dropped"])
    assert built[1]["stages"]["wikipedia"]["dropped"] == {"wikipedia": 1}


def test_every_dropped_document_is_in_the_audit_table(built, crawl):
    """DIR/dropped/ holds one row per drop of every stage: its rows by stage and reason are the counts."""
    out, manifest = built
    dropped = pd.read_parquet(os.path.join(out, "dropped"))
    assert _drops_by_stage(dropped) == {stage: counts["dropped"] for stage, counts in manifest["stages"].items()
                                        if counts["dropped"]}
    assert manifest["dropped"]["rows"] == len(dropped) == sum(c["dropped_total"] for c in manifest["stages"].values())
    assert manifest["dropped"]["counts"] == {stage: counts["dropped"] for stage, counts in manifest["stages"].items()}
    assert dropped["text"].isna().all()  # build.audit_text is off by default
    by_url = dropped.set_index("url", drop=False)
    kept = _all_rows(out).set_index("url")
    for url in set(crawl.exact_dup_urls) - {"https://mirror.test/lighthouse-lens"}:
        assert tuple(by_url.loc[url, ["stage", "reason", "duplicate_of"]]) == (
            "dedup_exact", "exact_duplicate", kept.loc["https://mirror.test/lighthouse-lens", "id"])
    assert tuple(by_url.loc[crawl.syndicated[1], ["stage", "reason", "duplicate_of"]]) == (
        "dedup_near", "near_duplicate", kept.loc[crawl.syndicated[0], "id"])
    assert by_url.loc[crawl.wikipedia_source, "final_url"] == "https://en.wikipedia.org/wiki/Harbor_Street"
    assert tuple(by_url.loc[crawl.german_url, ["stage", "reason"]]) == ("filter", "lang_de")
    assert tuple(by_url.loc[crawl.bot_check_url, ["stage", "reason"]]) == ("filter", "bot_check")
    assert tuple(by_url.loc["https://gone.example/page", ["stage", "reason"]]) == ("read", "http_not_200")
    # the record the truncated file broke off in; a page without WebText provenance is a page like any other
    cut = by_url.loc["https://latebreak.example/cut-off"]
    assert (cut["stage"], cut["reason"], cut["warc_file"]) == ("read", "warc_bad_record", crawl.truncated_file)
    assert cut["id"] == doc_id(url_key("https://latebreak.example/cut-off"))
    foreign = by_url.loc["https://foreign.example/a"]
    assert (foreign["stage"], foreign["reason"], foreign["warc_file"]) == (
        "dedup_exact", "exact_duplicate", "nested/foreign-00000.warc.gz")
    assert dropped.loc[~dropped["stage"].str.startswith("dedup"), "duplicate_of"].isna().all()
    # every document removed as a duplicate names a kept one, whose dup_count counts it
    named = dropped["duplicate_of"].dropna().value_counts()
    assert set(named.index) <= set(kept["id"])
    assert (kept.set_index("id")["dup_count"] == named.reindex(kept["id"]).fillna(0).astype(int).values).all()
    for shard in manifest["dropped"]["files"]:
        parquet = pq.ParquetFile(os.path.join(out, shard["path"]))
        assert parquet.schema_arrow.equals(DROPPED_SCHEMA)
        urls = [url or "" for url in parquet.read(columns=["url"]).column("url").to_pylist()]
        assert urls == sorted(urls)


def test_why_is_a_url_not_in_the_dataset(built, crawl):
    """The README's one query, in pandas and in DuckDB."""
    out, _ = built
    kept_id = _all_rows(out).set_index("url").loc["https://mirror.test/lighthouse-lens", "id"]
    for url, expected in [("https://coastnews.example/lighthouse", [("dedup_exact", "exact_duplicate", kept_id)]),
                          (crawl.german_url, [("filter", "lang_de", None)]),
                          ("https://mirror.test/lighthouse-lens", [])]:  # kept: no answer
        dropped = pd.read_parquet(os.path.join(out, "dropped"), filters=[("url", "==", url)])
        answer = dropped[["stage", "reason", "duplicate_of"]].astype(object).where(dropped.notna(), None)
        assert [tuple(row) for row in answer.values.tolist()] == expected
        duck = duckdb.connect().execute(
            f"SELECT stage, reason, duplicate_of FROM '{out}/dropped/*.parquet' WHERE url = ?", [url]).fetchall()
        assert duck == expected


def test_audit_text_is_kept_on_request(crawl, tmp_path):
    out = str(tmp_path / "dataset")
    manifest = build(["build.audit_text=true"], crawl.root, out)
    dropped = pd.read_parquet(os.path.join(out, "dropped")).set_index("url")
    assert "hat der Stadtrat am Dienstag beschlossen" in dropped.loc[crawl.german_url, "text"]
    assert "Republished with permission" in dropped.loc[crawl.syndicated[1], "text"]
    assert pd.isna(dropped.loc["https://gone.example/page", "text"])  # read and extract drops have no text
    assert manifest["dropped"]["rows"] == len(dropped)
    assert verify_dataset(out) == []


def test_provenance_columns(built, crawl):
    rows = _all_rows(built[0]).set_index("url")
    frog = rows.loc["https://fieldnotes.test/2026/frog-species"]
    assert frog["id"] == doc_id(url_key("https://fieldnotes.test/2026/frog-species"))
    assert frog["domain"] == "fieldnotes.test"
    assert frog["score"] == 4 and list(frog["post_ids"]) == ["p001"] and list(frog["subreddits"]) == ["news"]
    assert frog["created_utc"] == 1_500_003_600
    assert frog["crawl_time"] == pd.Timestamp("2026-11-20T10:01:00.123456Z")
    assert frog["warc_file"] == "crawl-00000.warc.gz"
    assert frog["lang"] == "en" and frog["n_words"] > 100 and frog["n_chars"] == len(frog["text"])
    assert "cloud forest" in frog["text"] and "All rights reserved" not in frog["text"]
    late = rows.loc["https://latebreak.example/orchestra"]
    assert late["warc_file"] == "crawl-00002.warc.gz"


def test_warc_offset_points_at_the_response_record(built, crawl):
    from warcio.archiveiterator import ArchiveIterator

    row = _all_rows(built[0]).iloc[0]
    with open(os.path.join(crawl.root, "warc", row["warc_file"]), "rb") as fh:
        fh.seek(row["warc_offset"])
        record = next(iter(ArchiveIterator(fh)))
    assert record.rec_type == "response"
    assert record.rec_headers.get_header("WebText-Source-URL") == row["url"]


def test_readers_agree(built):
    out, manifest = built
    for split, info in manifest["splits"].items():
        path = os.path.join(out, split)
        frame = pd.read_parquet(path)
        table = ds.dataset(path, format="parquet").to_table()
        n_duck = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{path}/*.parquet')").fetchone()[0]
        assert len(frame) == table.num_rows == n_duck == info["rows"]
    assert sum(info["rows"] for info in manifest["splits"].values()) == manifest["rows"]


def test_shards_sorted_typed_and_streamable(built):
    out, manifest = built
    assert all(manifest["splits"][s]["rows"] > 0 for s in ("train", "val", "test"))  # the min-docs rule
    assert manifest["splits"]["train"]["shards"] > 1
    for shard in manifest["shards"]:
        parquet = pq.ParquetFile(os.path.join(out, shard["path"]))
        assert parquet.schema_arrow.equals(SCHEMA)
        assert parquet.metadata.row_group(0).column(0).compression == "ZSTD"
        assert all(parquet.metadata.row_group(i).num_rows <= 2 for i in range(parquet.num_row_groups))
        ids = parquet.read(columns=["id"]).column("id").to_pylist()
        assert ids == sorted(ids)


def test_manifest_contents(built, crawl):
    _, manifest = built
    assert [i["path"] for i in manifest["inputs"]] == [
        "crawl-00000.warc.gz", "crawl-00001.warc.gz", "crawl-00002.warc.gz", "nested/foreign-00000.warc.gz"]
    assert manifest["config"]["build"]["docs_per_shard"] == 4
    assert len(manifest["config_hash"]) == 64
    assert manifest["code_version"]["webtext"]
    assert [c["name"] for c in manifest["schema"]] == SCHEMA.names
    assert all(c["description"] for c in manifest["schema"])
    # line counts of the line rules, beside (not inside) the record accounting
    assert set(manifest["lines_removed"]) == {"byline_or_share_line", "table_markup_line"}
    stats = json.loads(open(os.path.join(built[0], "build_stats.json")).read())
    assert stats["lines_removed"] == manifest["lines_removed"]


def test_dataset_card(built):
    out, manifest = built
    with open(os.path.join(out, "README.md")) as fh:
        card = fh.read()
    for png in ("card_lengths.png", "card_domains.png", "card_funnel.png"):
        assert f"]({png})" in card
        with open(os.path.join(out, png), "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert f"{manifest['rows']:,} documents" in card
    assert "| read | warc_bad_record | 1 |" in card
    assert "| wikipedia | wikipedia | 1 |" in card


def test_rebuild_of_finished_dataset_is_skipped(built, crawl, caplog):
    out, manifest = built
    with caplog.at_level(logging.INFO, logger="shards.build"):
        again = build(SMALL_SHARDS, crawl.root, out)
    assert again == manifest  # read back, nothing rebuilt
    assert "up to date" in caplog.text


@pytest.mark.slow
def test_multi_processing_gives_the_same_result(built, crawl, tmp_path):
    out, manifest = built
    again = build(SMALL_SHARDS + ["beam.direct_running_mode=multi_processing", "beam.direct_num_workers=2"],
                  crawl.root, str(tmp_path))
    assert again["shards"] == manifest["shards"]  # same paths, rows, bytes and sha256
    assert again["stages"] == manifest["stages"]


def test_same_url_crawled_twice_keeps_the_latest_capture(tmp_path):
    """Two records of one URL are two captures of one document: the captures stage keeps the
    latest and records the other as its `duplicate_capture`, before extraction."""
    url = "https://twice.example/frog"
    title, paragraphs = ARTICLES["frog-species"]
    first = _page(1, url, article_html(title, paragraphs, "twice.example"), score=3)
    second = _page(2, url, article_html(title, paragraphs[:2] + ARTICLES["comet"][1][:1], "twice.example"), score=3)
    write_warc(str(tmp_path / "crawl" / "warc" / "a.warc.gz"), [second, first])
    out = str(tmp_path / "dataset")
    manifest = build(["dedup.near=false"], str(tmp_path / "crawl"), out)
    assert manifest["stages"]["captures"]["dropped"] == {"duplicate_capture": 1}
    assert manifest["stages"]["extract"]["in"] == 1 and manifest["stages"]["write"]["dropped"] == {}
    row = _all_rows(out).iloc[0]
    assert (row["crawl_time"], row["dup_count"]) == (pd.Timestamp(second.fetch_time), 1)
    dropped = pd.read_parquet(os.path.join(out, "dropped"))
    assert dropped[["url", "stage", "reason", "duplicate_of"]].values.tolist() == [
        [url, "captures", "duplicate_capture", row["id"]]]
    assert verify_dataset(out) == []


def test_build_that_drops_nothing_has_an_empty_audit_table(crawl, tmp_path):
    (tmp_path / "crawl").mkdir()
    os.link(os.path.join(crawl.root, "warc", "crawl-00000.warc.gz"), tmp_path / "crawl" / "a.warc.gz")
    out = str(tmp_path / "dataset")
    manifest = build([], str(tmp_path / "crawl"), out)
    assert manifest["rows"] == 10 and not any(stage["dropped"] for stage in manifest["stages"].values())
    assert [f["path"] for f in manifest["dropped"]["files"]] == ["dropped/shard-00000-of-00001.parquet"]
    assert len(pd.read_parquet(os.path.join(out, "dropped"))) == 0
    assert verify_dataset(out) == []


def test_build_that_keeps_nothing_is_still_a_valid_dataset(tmp_path, caplog):
    """Only a 404 response: every split is one empty, readable shard."""
    gone = _page(1, "https://gone.example/page", "<html><body>Not found</body></html>", score=3, status=404)
    write_warc(str(tmp_path / "crawl" / "f.warc.gz"), [gone])
    out = str(tmp_path / "dataset")
    manifest = build([], str(tmp_path / "crawl"), out)
    assert manifest["rows"] == 0 and manifest["stages"]["read"]["dropped"] == {"http_not_200": 1}
    assert [s["path"] for s in manifest["shards"]] == [
        "test/shard-00000-of-00001.parquet", "train/shard-00000-of-00001.parquet", "val/shard-00000-of-00001.parquet"]
    assert len(pd.read_parquet(os.path.join(out, "train"))) == 0
    assert pd.read_parquet(os.path.join(out, "dropped"))["reason"].tolist() == ["http_not_200"]
    assert verify_dataset(out) == []
    assert "no document survived" in caplog.text


def test_cli_build_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli("build", "--warc", str(empty), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "no *.warc.gz files" in result.stderr
    result = run_cli("build", "--warc", str(empty), "--out", str(tmp_path / "out"),
                     "--set", "build.val_fraction=0.6", "--set", "build.test_fraction=0.5")
    assert result.returncode == 2
    assert "val_fraction + test_fraction must be < 1" in result.stderr


def test_a_second_build_into_the_same_folder_is_refused(crawl, tmp_path, capsys):
    """Two builds into one `--out` would interleave staging and publish: the second is refused."""
    out = tmp_path / "dataset"
    with exclusive_folder(str(out), "build"):  # a build running in another process holds this
        assert main(["build", "--warc", crawl.root, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "another `webtext build` is writing" in err and str(out) in err
    assert not (out / "manifest.json").exists()


def test_every_warc_value_is_used(crawl, tmp_path, capsys):
    """Repeated --warc flags are all read (not only the last): a second folder without WARC
    files is named in the error instead of being ignored."""
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "dataset"
    assert main(["build", "--warc", crawl.root, "--warc", str(empty), "--out", str(out)]) == 1
    assert f"no *.warc.gz files under {str(empty)!r}" in capsys.readouterr().err
    assert not (out / "manifest.json").exists()
