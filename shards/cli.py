"""Subcommands of the dataset stage: `build` and `verify`."""

from __future__ import annotations

import argparse
import sys


def dataset_config(cfg):
    """The sections of the aggregated config that decide a build's content."""
    from shards.manifest import DatasetConfig

    return DatasetConfig(extract=cfg.extract, dedup=cfg.dedup, build=cfg.build,
                         wikipedia_domains=cfg.harvest.wikipedia_domains, max_redirects=cfg.crawl.max_redirects)


def build_summary(manifest: dict, out: str) -> str:
    """Stage counts, splits and where the dataset, manifest and card are."""
    from core import fsio
    from core.stats import StageCounts, format_counts_table
    from shards.card import CARD
    from shards.manifest import MANIFEST

    counts = {name: StageCounts.from_json(name, stage) for name, stage in manifest["stages"].items()}
    splits = ", ".join(f"{name}={split['rows']:,} docs/{split['shards']} shard(s)"
                       for name, split in manifest["splits"].items())
    lines = ", ".join(f"{rule}={n:,}" for rule, n in manifest.get("lines_removed", {}).items())
    dropped = manifest.get("dropped")
    return (f"{format_counts_table(counts)}\n"
            + (f"lines removed by the line rules (extract/lines.py): {lines}\n" if lines else "") + "\n"
            + f"dataset: {out}/{{{','.join(manifest['splits'])}}}/*.parquet  ({splits})\n"
            + (f"dropped: {out}/dropped/*.parquet  ({dropped['rows']:,} documents, with stage and reason)\n"
               if dropped else "")
            + f"manifest: {fsio.join(out, MANIFEST)}   card: {fsio.join(out, CARD)}")


def _build(args: argparse.Namespace, cfg) -> int:
    from shards.build import run_build

    manifest = run_build(dataset_config(cfg), cfg.beam, args.warc, args.out, args.beam_args, force=args.force,
                         urls=args.urls)
    print(build_summary(manifest, args.out))
    return 0


def _verify(args: argparse.Namespace, cfg) -> int:
    from shards.manifest import read_manifest
    from shards.verify import verify_dataset

    problems = verify_dataset(args.dir)
    if problems:
        print(f"webtext verify: {args.dir}: {len(problems)} problem(s):", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    manifest = read_manifest(args.dir)
    splits = ", ".join(f"{name}={split['rows']}" for name, split in manifest["splits"].items())
    print(f"OK: {args.dir}: {len(manifest['shards'])} shards, {manifest['rows']} rows ({splits}); "
          "sizes, sha256, row counts, schema and stage counts match the manifest")
    return 0


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "build", parents=[common],
        help="WARC crawl output -> extracted, filtered, deduplicated train/val/test Parquet shards",
        description=(
            "Run the dataset Beam pipeline: read WARC files (this crawl's or any other crawler's; one big "
            "file is split by record offsets over the workers), keep one capture per URL (live over "
            "archive, then the latest; revisits resolved; Reddit provenance joined from --urls), extract "
            "main text, filter, "
            "strip Wikipedia, remove exact and near duplicates, split train/val/test by URL hash and "
            "write zstd Parquet shards to OUT/<split>/, plus OUT/manifest.json and a dataset card "
            "OUT/README.md. Beam options go after `--`."),
    )
    parser.add_argument("--warc", required=True, metavar="PATH_OR_GLOB", nargs="+", action="extend",
                        help="WARC files (.warc.gz per-record gzip or plain .warc, from any crawler), crawl "
                             "output dirs or their warc/ folder (searched recursively), or globs of these "
                             "(gs://, s3:// work too); repeatable, all are read. A file is recorded as "
                             "warc_file relative to the folder it was found under; with several values each "
                             "name is prefixed by the value's position (0/..., 1/...). Damaged records are "
                             "skipped and counted (warc_bad_record); reading resumes at the next record")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="dataset folder (local path or Beam filesystem URL)")
    parser.add_argument("--urls", metavar="URLDIR",
                        help="a `webtext harvest --out` folder: join its Reddit provenance (post_ids, subreddits, "
                             "score, created_utc) to each page by normalised URL, also through the WARC's own "
                             "redirect records (up to crawl.max_redirects hops); a page no URL of it leads to is "
                             "dropped as not_in_url_table or, with build.unknown_urls=keep, kept with null "
                             "provenance. Without --urls the WARC's own provenance is used (null for WARCs "
                             "from other crawlers)")
    parser.add_argument("--force", action="store_true",
                        help="rebuild even if OUT already holds a verified build of the same inputs, config and code")
    parser.set_defaults(func=_build)

    parser = subparsers.add_parser(
        "verify", parents=[common],
        help="check a built dataset against its manifest (files, sizes, sha256, rows, schema)",
        description=(
            "Check that DIR is exactly the dataset its manifest.json lists: every shard present with "
            "the recorded size, sha256, row count and schema, readable as Parquet, no unlisted shards "
            "in the split folders, and stage counts that reconcile. Exits 1 listing every problem, "
            "0 with a one-line OK summary."),
    )
    parser.add_argument("dir", metavar="DIR", help="dataset folder written by `webtext build`")
    parser.set_defaults(func=_verify)
