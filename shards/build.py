"""`webtext build`: WARC pages -> extracted, filtered, deduplicated train/val/test Parquet shards.

One Beam pipeline:
    WARC files -> read (response records, HTTP 200, provenance) -> ExtractPages (extract,
    filter) -> strip Wikipedia by final URL -> ExactDedup -> NearDedup -> split by URL hash
    -> shard by id hash -> one sorted, atomically written Parquet file per shard.
Shards are staged and then published by the dataset writer (shards/writer.py): into
`DIR/<split>/`, followed by the stats, the dataset card and, last, `DIR/manifest.json`. A
killed build therefore leaves no manifest, and the rerun replaces whatever it left.
"""

from __future__ import annotations

import contextlib
import logging

import apache_beam as beam
import pyarrow as pa

from core.beam import StageCounter, collect_stage_counts, pipeline_options
from core import fsio
from core.beam_config import BeamConfig
from core.lock import exclusive_folder
from core.section import config_hash
from crawl.urls import is_wikipedia
from dedup.exact import ExactDedup
from dedup.near import NearDedup
from extract.pipeline import ExtractPages
from shards.manifest import (
    DatasetConfig,
    code_version,
    count_problems,
    input_listing,
    make_manifest,
    ordered_counts,
    read_manifest,
)
from shards.split import AssignShards, AssignSplits
from shards.verify import verify_dataset
from shards.warc_source import ReadWarcPages, find_warc_files, warc_root
from shards.writer import (
    SCHEMA,
    fresh_staging,
    publish,
    schema_json,
    shard_bytes,
    shard_name,
    stage_empty_splits,
    stage_shard,
    staged_shards,
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
            self.counter.dropped("wikipedia")
            return
        self.counter.kept()
        yield doc


def _survivor_order(doc: dict) -> tuple:
    """Among records with the same id (a URL fetched twice), keep the earliest fetch."""
    return (doc["crawl_time"], doc["warc_file"], doc["warc_offset"])


class WriteShard(beam.DoFn):
    """((split, index, count), documents) -> nothing; stages the Parquet shard + sidecar.

    Stage `write`: documents in, rows written out; a second record of an id already in the
    shard (same URL crawled twice) is dropped as `duplicate_id`."""

    def __init__(self, staging: str, row_group_docs: int, compression_level: int):
        self.staging = staging
        self.row_group_docs = row_group_docs
        self.compression_level = compression_level
        self.counter = StageCounter("write")

    def process(self, element):
        (split, index, count), docs = element
        by_id: dict[str, dict] = {}
        for doc in docs:
            self.counter.seen()
            kept = by_id.get(doc["id"])
            if kept is None or _survivor_order(doc) < _survivor_order(kept):
                by_id[doc["id"]] = doc
                if kept is not None:
                    self.counter.dropped("duplicate_id")
            else:
                self.counter.dropped("duplicate_id")
        rows = [to_row(by_id[doc_id]) for doc_id in sorted(by_id)]
        data = shard_bytes(pa.Table.from_pylist(rows, schema=SCHEMA), self.row_group_docs, self.compression_level)
        name = shard_name(split, index, count)
        stage_shard(self.staging, name, split, len(rows), data)
        self.counter.kept(len(rows))
        log.info("wrote %s: %d rows, %d bytes", name, len(rows), len(data))


def build_pipeline(pipeline: beam.Pipeline, files: list[str], root: str, staging: str,
                   dataset_config: DatasetConfig) -> None:
    build_config = dataset_config.build
    pages = (
        pipeline
        | "WarcFiles" >> beam.Create(files)
        | "SpreadFiles" >> beam.Reshuffle()
        | "ReadWarc" >> beam.ParDo(ReadWarcPages(root))
    )
    docs = (
        pages
        | "Extract" >> ExtractPages(dataset_config.extract)
        | "StripWikipedia" >> beam.ParDo(StripWikipedia(dataset_config.wikipedia_domains))
        | "ExactDedup" >> ExactDedup(dataset_config.dedup)
        | "NearDedup" >> NearDedup(dataset_config.dedup)
    )
    (
        docs
        | "Split" >> AssignSplits(build_config)
        | "Shard" >> AssignShards(build_config.docs_per_shard)
        | "GroupShards" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(WriteShard(staging, build_config.row_group_docs,
                                                 build_config.compression_level))
    )


def _up_to_date(out: str, dataset_config: DatasetConfig, inputs: list[dict]) -> bool:
    try:
        old = read_manifest(out)
    except (FileNotFoundError, ValueError):
        return False
    same = (old["config_hash"] == config_hash(dataset_config) and old["inputs"] == inputs
            and old["code_version"] == code_version())
    return same and not verify_dataset(out)


def run_build(dataset_config: DatasetConfig, beam_config: BeamConfig, warc: str, out: str,
              beam_args: list[str] = (), force: bool = False) -> dict:
    """Build the dataset in `out`; returns the manifest.

    A second build into the same local `out` at the same time is refused (core.lock): its
    staging and publish would interleave with this one's. Object stores have no such lock.
    """
    with exclusive_folder(out, "build") if fsio.is_local(out) else contextlib.nullcontext():
        return _build(dataset_config, beam_config, warc, out, beam_args, force)


def _build(dataset_config: DatasetConfig, beam_config: BeamConfig, warc: str, out: str,
           beam_args: list[str], force: bool) -> dict:
    root = warc_root(warc)
    files = find_warc_files(root)
    inputs = input_listing(files, root)
    if not force and _up_to_date(out, dataset_config, inputs):
        log.info("%s is up to date with these inputs, config and code (use --force to rebuild)", out)
        return read_manifest(out)
    log.info("building from %d WARC file(s) under %s into %s", len(files), root, out)
    staging = fresh_staging(out)

    with beam.Pipeline(options=pipeline_options(beam_config, beam_args)) as pipeline:
        build_pipeline(pipeline, files, root, staging, dataset_config)
    counts = ordered_counts(collect_stage_counts(pipeline.result))

    build_config = dataset_config.build
    shards = stage_empty_splits(staging, staged_shards(staging), build_config.row_group_docs,
                                build_config.compression_level)
    problems = count_problems(counts, sum(shard["rows"] for shard in shards))
    if problems:
        raise AssertionError("build counts do not reconcile:\n  " + "\n  ".join(problems))
    if not any(shard["rows"] for shard in shards):
        log.warning("no document survived: see the drop reasons below (wrong --warc folder? filters too strict?)")
    log.info("pipeline done; publishing %d shard(s)", len(shards))
    manifest = make_manifest(dataset_config.model_dump(mode="json"), config_hash(dataset_config), shards,
                             schema_json(SCHEMA), counts, inputs)
    publish(out, manifest, STATS_FILE, counts, {"rows": manifest["splits"]}, build_config.top_domains)
    return manifest
