"""`webtext build`: WARC pages -> extracted, filtered, deduplicated train/val/test Parquet shards.

One Beam pipeline:
    WARC files -> read (response and revisit records, HTTP 200, provenance; 3xx records as
    redirects; pages carry where their body is, not the body) -> captures (shards/captures.py:
    revisits resolved, Reddit provenance joined from `--urls` through the redirects, one capture
    kept per document id) -> read the kept pages' bodies -> ExtractPages (extract, filter) ->
    strip Wikipedia by final URL -> Deduplicate (exact, near) -> split by URL hash -> shard by
    id hash -> one sorted, atomically written Parquet file per shard.
Without `--urls` the provenance columns are what the WARC carries: null for a WARC that does
not come from our crawler.
Every stage also hands each record it drops to its `DROPPED` output; those become the audit
table `DIR/dropped/` (id, url, final_url, stage, reason, duplicate_of, ...; the text only with
`build.audit_text`), sharded and written by the workers like the splits. Its rows per stage
and reason must equal the stage counts, or the build fails before publishing.
Shards are staged and then published by the dataset writer (shards/writer.py): into
`DIR/<split>/` and `DIR/dropped/`, followed by the stats, the dataset card and, last,
`DIR/manifest.json`. A killed build therefore leaves no manifest, and the rerun replaces
whatever it left.
"""

from __future__ import annotations

import contextlib
import logging

import apache_beam as beam
import pyarrow as pa

from core.beam import DROPPED, KEPT, StageCounter, pipeline_options, reported_stage_counts
from core import fsio
from core.beam_config import BeamConfig
from core.lock import exclusive_folder
from core.section import config_hash
from core.stats import StageCounts, counts_from_drops
from crawl.url_table import url_table_files
from crawl.urls import is_wikipedia
from dedup.pipeline import Deduplicate
from extract.pipeline import ExtractPages, removed_lines
from shards.captures import Captures
from shards.card import crawl_report_beside
from shards.manifest import (
    STAGE_CHAIN,
    DatasetConfig,
    audit_problems,
    code_version,
    count_problems,
    dropped_section,
    input_listing,
    named_input_listing,
    make_manifest,
    ordered_counts,
    read_manifest,
)
from shards.split import AssignShards, AssignSplits
from shards.verify import verify_dataset
from shards.warc_source import REDIRECTS, ReadBodies, ReadWarc, crawl_folder, list_warc_inputs
from shards.writer import (
    DROPPED_DIR,
    DROPPED_SCHEMA,
    SCHEMA,
    fresh_staging,
    publish,
    schema_json,
    shard_bytes,
    shard_name,
    stage_dropped_shard,
    stage_empty_splits,
    stage_shard,
    staged_shards,
    to_dropped_row,
    to_row,
)

log = logging.getLogger(__name__)

STATS_FILE = "build_stats.json"


class StripWikipedia(beam.DoFn):
    """GPT-2 removed Wikipedia (it is in many eval sets); judged by the URL after redirects."""

    def __init__(self, domains: list[str]):
        self.domains = domains
        self.counter = StageCounter("wikipedia")

    def process(self, doc):
        self.counter.seen()
        if is_wikipedia(doc["final_url"], self.domains):
            yield self.counter.drop("wikipedia", doc)
            return
        self.counter.kept()
        yield doc


class WriteShard(beam.DoFn):
    """((split, index, count), documents) -> nothing; stages the Parquet shard + sidecar.

    Stage `write`: documents in, rows written out (ids are unique: the captures stage keeps one
    capture per id)."""

    def __init__(self, staging: str, row_group_docs: int, compression_level: int):
        self.staging = staging
        self.row_group_docs = row_group_docs
        self.compression_level = compression_level
        self.counter = StageCounter("write")

    def process(self, element):
        (split, index, count), docs = element
        rows = sorted((to_row(doc) for doc in docs), key=lambda row: row["id"])
        self.counter.seen(len(rows))
        data = shard_bytes(pa.Table.from_pylist(rows, schema=SCHEMA), self.row_group_docs, self.compression_level)
        name = shard_name(split, index, count)
        stage_shard(self.staging, name, split, len(rows), data)
        self.counter.kept(len(rows))
        log.info("wrote %s: %d rows, %d bytes", name, len(rows), len(data))


class WriteDroppedShard(beam.DoFn):
    """((dropped, index, count), audit rows) -> nothing; stages one shard of `DIR/dropped/`."""

    def __init__(self, staging: str, row_group_docs: int, compression_level: int):
        self.staging = staging
        self.row_group_docs = row_group_docs
        self.compression_level = compression_level

    def process(self, element):
        (_folder, index, count), rows = element
        info = stage_dropped_shard(self.staging, list(rows), index, count, self.row_group_docs,
                                   self.compression_level)
        log.info("wrote %s: %d rows, %d bytes", info["path"], info["rows"], info["bytes"])


def _dropped_shard_key(row: dict) -> str:
    """Every row of one URL lands in one audit shard; a record without URL by where it was."""
    return row["url"] or f"{row['warc_file']}@{row['warc_offset']}"


def build_pipeline(pipeline: beam.Pipeline, files: list[tuple[str, str]], staging: str,
                   dataset_config: DatasetConfig, url_files: list[str] | None = None) -> None:
    """The build; `files`: (path, warc_file name) of each WARC (`list_warc_inputs`);
    `url_files`: the URL table's `urls-*.parquet` files (`--urls`), or None."""
    build_config = dataset_config.build
    read = pipeline | "ReadWarc" >> ReadWarc(files)  # index each file, spread its ranges, read them
    pages, captures_dropped = {"pages": read[KEPT], "redirects": read[REDIRECTS]} | "Captures" >> Captures(
        url_files, build_config.unknown_urls, dataset_config.max_redirects)
    pages = pages | "ReadBodies" >> beam.ParDo(ReadBodies())  # fused with extraction: bodies cross no shuffle
    docs, extract_dropped = pages | "Extract" >> ExtractPages(dataset_config.extract, with_dropped=True)
    wikipedia = docs | "StripWikipedia" >> beam.ParDo(
        StripWikipedia(dataset_config.wikipedia_domains)).with_outputs(DROPPED, main=KEPT)
    docs, dedup_dropped = wikipedia[KEPT] | "Deduplicate" >> Deduplicate(dataset_config.dedup, with_dropped=True)
    (
        docs
        | "Split" >> AssignSplits(build_config)
        | "Shard" >> AssignShards(build_config.docs_per_shard)
        | "GroupShards" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(WriteShard(staging, build_config.row_group_docs,
                                                 build_config.compression_level))
    )
    with_text = build_config.audit_text
    (
        (read[DROPPED], captures_dropped, extract_dropped, wikipedia[DROPPED], dedup_dropped)
        | "AllDropped" >> beam.Flatten()
        | "AuditRows" >> beam.Map(lambda record: (DROPPED_DIR, to_dropped_row(record, with_text)))
        | "ShardDropped" >> AssignShards(build_config.docs_per_shard, _dropped_shard_key)
        | "GroupDropped" >> beam.GroupByKey()
        | "WriteDropped" >> beam.ParDo(WriteDroppedShard(staging, build_config.row_group_docs,
                                                         build_config.compression_level))
    )


def _stage_counts(result, dropped: dict, rows_written: int) -> tuple[dict[str, StageCounts], list[str]]:
    """The build's stage counts and what disagrees. They come from the pipeline's own output: the
    audit table's drops by stage and reason (each audit shard's sidecar) and the rows the shards
    hold, so they are true on any runner. The runner's metrics, where it reports them, must say
    the same, or something counted a record it did not hand on."""
    counts = counts_from_drops(STAGE_CHAIN, dropped["counts"], rows_written)
    reported = reported_stage_counts(result)
    if reported is None:
        log.warning("the runner reported no Beam metrics: the stage counts come from the audit table and the "
                    "shards alone, and the line rules' counts (lines_removed) are unknown")
        return counts, []
    reported = ordered_counts(reported)
    problems = count_problems(reported, rows_written) + audit_problems(reported, dropped)
    problems += [f"stage {stage}: the runner's metrics count {reported.get(stage, StageCounts(stage)).to_json()} "
                 f"but its output holds {counts.get(stage, StageCounts(stage)).to_json()}"
                 for stage in sorted(set(counts) | set(reported))
                 if reported.get(stage, StageCounts(stage)).to_json() != counts.get(stage, StageCounts(stage)).to_json()]
    return counts, problems


def _up_to_date(out: str, dataset_config: DatasetConfig, inputs: list[dict], url_table: list[dict] | None) -> bool:
    try:
        old = read_manifest(out)
    except (FileNotFoundError, ValueError):
        return False
    same = (old["config_hash"] == config_hash(dataset_config) and old["inputs"] == inputs
            and old.get("url_table") == url_table and old["code_version"] == code_version())
    return same and not verify_dataset(out)


def run_build(dataset_config: DatasetConfig, beam_config: BeamConfig, warc: str | list[str], out: str,
              beam_args: list[str] = (), force: bool = False, urls: str | None = None) -> dict:
    """Build the dataset in `out`; returns the manifest. `warc`: the `--warc` values (WARC
    files, crawl folders, globs; shards.warc_source.list_warc_inputs). `urls`: a `webtext
    harvest` output whose provenance is joined to the pages (None: the WARC's own provenance).

    A second build into the same local `out` at the same time is refused (core.lock): its
    staging and publish would interleave with this one's. Object stores have no such lock.
    """
    with exclusive_folder(out, "build") if fsio.is_local(out) else contextlib.nullcontext():
        return _build(dataset_config, beam_config, [warc] if isinstance(warc, str) else list(warc), out,
                      beam_args, force, urls)


def _build(dataset_config: DatasetConfig, beam_config: BeamConfig, warc: list[str], out: str,
           beam_args: list[str], force: bool, urls: str | None) -> dict:
    options = pipeline_options(beam_config, beam_args)  # first: it hands S3/GCS options to FileSystems
    files = list_warc_inputs(warc)
    root = crawl_folder(warc)  # where a crawl report may be: None unless one crawl folder is given
    inputs = named_input_listing(files)
    url_files = url_table_files(urls) if urls is not None else None  # checked before the pipeline starts
    url_table = input_listing(url_files, urls) if url_files is not None else None
    if not force and _up_to_date(out, dataset_config, inputs, url_table):
        log.info("%s is up to date with these inputs, config and code (use --force to rebuild)", out)
        return read_manifest(out)
    log.info("building from %d WARC file(s) (%s) into %s", len(files), ", ".join(warc), out)
    staging = fresh_staging(out)

    with beam.Pipeline(options=options) as pipeline:
        build_pipeline(pipeline, files, staging, dataset_config, url_files)

    build_config = dataset_config.build
    staged = staged_shards(staging)
    shards = stage_empty_splits(staging, [info for info in staged if info["split"] != DROPPED_DIR],
                                build_config.row_group_docs, build_config.compression_level)
    dropped_files = [info for info in staged if info["split"] == DROPPED_DIR] or [
        stage_dropped_shard(staging, [], 0, 1, build_config.row_group_docs, build_config.compression_level)]
    dropped = dropped_section(dropped_files, schema_json(DROPPED_SCHEMA), STAGE_CHAIN)
    counts, problems = _stage_counts(pipeline.result, dropped, sum(shard["rows"] for shard in shards))
    if problems:
        raise AssertionError("build counts do not reconcile:\n  " + "\n  ".join(problems))
    if not any(shard["rows"] for shard in shards):
        log.warning("no document survived: see the drop reasons below (wrong --warc folder? filters too strict?)")
    log.info("pipeline done; publishing %d shard(s)", len(shards))
    manifest = make_manifest(dataset_config.model_dump(mode="json"), config_hash(dataset_config), shards,
                             schema_json(SCHEMA), counts, inputs, dropped)
    # Lines, not documents: known only from the runner's metrics (null where it reports none).
    manifest["lines_removed"] = removed_lines(pipeline.result, dataset_config.extract) if reported_stage_counts(pipeline.result) is not None else None
    manifest["crawl_report"] = crawl_report_beside(root) if root else None  # the crawl's link rot, for the card; null if none beside the WARCs
    if url_table is not None:
        manifest["url_table"] = url_table  # the `--urls` files, as `inputs` lists the WARC files
    publish(out, manifest, STATS_FILE, counts, {"rows": manifest["splits"], "lines_removed": manifest["lines_removed"]},
            build_config.top_domains)
    return manifest
