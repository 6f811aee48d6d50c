"""Subcommands of the dataset stage: `build` and `verify`."""

from __future__ import annotations

import argparse
import sys


def dataset_config(cfg):
    """The sections of the aggregated config that decide a build's content."""
    from shards.manifest import DatasetConfig

    return DatasetConfig(extract=cfg.extract, dedup=cfg.dedup, build=cfg.build,
                         wikipedia_domains=cfg.harvest.wikipedia_domains)


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

    if len(args.warc) > 1:
        raise ValueError(f"--warc given {len(args.warc)} times ({', '.join(args.warc)}): build reads one crawl "
                         "folder; run one build per folder")
    manifest = run_build(dataset_config(cfg), cfg.beam, args.warc[0], args.out, args.beam_args, force=args.force)
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
            "Run the dataset Beam pipeline: read the crawl's WARC files, extract main text, filter, "
            "strip Wikipedia, remove exact and near duplicates, split train/val/test by URL hash and "
            "write zstd Parquet shards to OUT/<split>/, plus OUT/manifest.json and a dataset card "
            "OUT/README.md. Beam options go after `--`."),
    )
    parser.add_argument("--warc", required=True, metavar="DIR", action="append",
                        help="crawl output dir or its warc/ folder; *.warc.gz files are found recursively "
                             "(one folder: a second --warc is refused rather than ignored)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="dataset folder (local path or Beam filesystem URL)")
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
