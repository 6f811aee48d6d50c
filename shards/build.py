"""`webtext build`: WARC pages -> extracted, filtered, deduplicated train/val/test Parquet shards.

One Beam pipeline:
    WARC files -> read (response records, HTTP 200, provenance) -> ExtractPages (extract,
    filter) -> strip Wikipedia by final URL -> ExactDedup -> NearDedup -> split by URL hash
    -> shard by id hash -> one sorted, atomically written Parquet file per shard.
Shards go to `DIR/.staging` first; only after the run do they move into `DIR/<split>/`,
followed by the dataset card and, last, `DIR/manifest.json`. A killed build therefore
leaves no manifest, and the rerun replaces whatever it left.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from crawl.urls import is_wikipedia
from dedup import ExactDedup, NearDedup
from extract import ExtractPages
from shards import card, manifest as mf
from shards.split import SPLITS, AssignShards, AssignSplits
from shards.verify import verify_dataset
from shards.warc_source import ReadWarcPages, find_warc_files, warc_root
from shards.writer import SCHEMA, WriteShard, empty_shard_bytes, schema_json, shard_name
from core import fsio
from core.beam import pipeline_options
from core.section import config_hash
from webtext.config import Config
from core.beam import StageCounter, collect_stage_counts
from core.stats import StageCounts, format_counts_table, write_stats_json

log = logging.getLogger(__name__)

STAGING = ".staging"
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


def build_pipeline(p: beam.Pipeline, files: list[str], root: str, staging: str, cfg: Config) -> None:
    pages = (
        p
        | "WarcFiles" >> beam.Create(files)
        | "SpreadFiles" >> beam.Reshuffle()
        | "ReadWarc" >> beam.ParDo(ReadWarcPages(root))
    )
    docs = (
        pages
        | "Extract" >> ExtractPages(cfg.extract)
        | "StripWikipedia" >> beam.ParDo(StripWikipedia(cfg.harvest.wikipedia_domains))
        | "ExactDedup" >> ExactDedup(cfg.dedup)
        | "NearDedup" >> NearDedup(cfg.dedup)
    )
    (
        docs
        | "Split" >> AssignSplits(cfg.build)
        | "Shard" >> AssignShards(cfg.build.docs_per_shard)
        | "GroupShards" >> beam.GroupByKey()
        | "WriteShards" >> beam.ParDo(WriteShard(staging, cfg.build.row_group_docs, cfg.build.compression_level))
    )


def staged_shards(staging: str, cfg: Config) -> list[dict]:
    """Shard infos from the staging sidecars, plus an empty shard for each empty split."""
    sidecars = FileSystems.match([fsio.join(staging, "*", "*.parquet.json")])[0].metadata_list
    shards = []
    for meta in sidecars:
        with FileSystems.open(meta.path) as fh:
            shards.append(json.loads(fh.read().decode("utf-8")))
    for split in SPLITS:
        if not any(s["split"] == split for s in shards):
            data = empty_shard_bytes(cfg.build.row_group_docs, cfg.build.compression_level)
            name = shard_name(split, 0, 1)
            fsio.atomic_write_bytes(fsio.join(staging, name), data)
            shards.append({"path": name, "split": split, "rows": 0, "bytes": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()})
    return sorted(shards, key=lambda s: s["path"])


def publish(out: str, staging: str, shards: list[dict]) -> None:
    """Move staged shards into place and drop shards of earlier builds (manifest removed first)."""
    mf.remove_manifest(out)
    wanted = {fsio.join(out, s["path"]) for s in shards}
    for split in SPLITS:
        fsio.makedirs(fsio.join(out, split))
        for old in FileSystems.match([fsio.join(out, split, "*.parquet")])[0].metadata_list:
            if old.path not in wanted:
                FileSystems.delete([old.path])
    for s in shards:
        FileSystems.rename([fsio.join(staging, s["path"])], [fsio.join(out, s["path"])])


def _up_to_date(out: str, cfg: Config, inputs: list[dict]) -> bool:
    try:
        old = mf.read_manifest(out)
    except (FileNotFoundError, ValueError):
        return False
    same = (old["config_hash"] == config_hash(mf.dataset_config(cfg)) and old["inputs"] == inputs
            and old["code_version"] == mf.code_version())
    return same and not verify_dataset(out)


def run_build(cfg: Config, warc: str, out: str, beam_args: list[str] = (), force: bool = False) -> dict:
    """Build the dataset in `out`; returns the manifest."""
    root = warc_root(warc)
    files = find_warc_files(root)
    inputs = mf.input_listing(files, root)
    if not force and _up_to_date(out, cfg, inputs):
        log.info("%s is up to date with these inputs, config and code (use --force to rebuild)", out)
        return mf.read_manifest(out)
    log.info("building from %d WARC file(s) under %s into %s", len(files), root, out)
    staging = fsio.join(out, STAGING)
    if FileSystems.exists(staging):
        log.info("removing the staging folder of an earlier, unfinished build")
        FileSystems.delete([staging])
    fsio.makedirs(staging)

    with beam.Pipeline(options=pipeline_options(cfg.beam, beam_args)) as p:
        build_pipeline(p, files, root, staging, cfg)
    counts = mf.ordered_counts(collect_stage_counts(p.result))

    shards = staged_shards(staging, cfg)
    problems = mf.count_problems(counts, sum(s["rows"] for s in shards))
    if problems:
        raise AssertionError("build counts do not reconcile:\n  " + "\n  ".join(problems))
    if not any(s["rows"] for s in shards):
        log.warning("no document survived: see the drop reasons below (wrong --warc folder? filters too strict?)")
    log.info("pipeline done; publishing %d shard(s)", len(shards))
    publish(out, staging, shards)
    manifest = mf.make_manifest(cfg, shards, schema_json(SCHEMA), counts, inputs)
    write_stats_json(fsio.join(out, STATS_FILE), counts, {"rows": manifest["splits"]})
    card.write_card(out, manifest, cfg.build.top_domains)
    mf.write_manifest(out, manifest)
    FileSystems.delete([staging])
    return manifest


def summary(manifest: dict, out: str) -> str:
    counts = {name: StageCounts.from_json(name, s) for name, s in manifest["stages"].items()}
    splits = ", ".join(f"{name}={s['rows']:,} docs/{s['shards']} shard(s)" for name, s in manifest["splits"].items())
    return (f"{format_counts_table(counts)}\n\n"
            f"dataset: {out}/{{{','.join(manifest['splits'])}}}/*.parquet  ({splits})\n"
            f"manifest: {fsio.join(out, mf.MANIFEST)}   card: {fsio.join(out, card.CARD)}")


def _run(args: argparse.Namespace, cfg: Config) -> int:
    manifest = run_build(cfg, args.warc, args.out, args.beam_args, force=args.force)
    print(summary(manifest, args.out))
    return 0


def add_cli(subparsers, common) -> None:
    p = subparsers.add_parser(
        "build", parents=[common],
        help="WARC crawl output -> extracted, filtered, deduplicated train/val/test Parquet shards",
        description=(
            "Run the dataset Beam pipeline: read the crawl's WARC files, extract main text, filter, "
            "strip Wikipedia, remove exact and near duplicates, split train/val/test by URL hash and "
            "write zstd Parquet shards to OUT/<split>/, plus OUT/manifest.json and a dataset card "
            "OUT/README.md. Beam options go after `--`."),
    )
    p.add_argument("--warc", required=True, metavar="DIR",
                   help="crawl output dir or its warc/ folder; *.warc.gz files are found recursively")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder (local path or Beam filesystem URL)")
    p.add_argument("--force", action="store_true",
                   help="rebuild even if OUT already holds a verified build of the same inputs, config and code")
    p.set_defaults(func=_run)
