"""Subcommand `dedup`: exact + near dedup of existing Parquet documents (e.g. across builds)."""

from __future__ import annotations

import argparse


def _run(args: argparse.Namespace, cfg) -> int:
    from core import fsio
    from core.stats import format_counts_table
    from dedup.parquet import OUTPUT_PREFIX, STATS_FILE, run_dedup

    counts = run_dedup(args.input, args.out, cfg.dedup, cfg.beam, args.beam_args)
    print(format_counts_table(counts))
    print(f"\nsurvivors: {fsio.join(args.out, OUTPUT_PREFIX)}-*.parquet   counts: {fsio.join(args.out, STATS_FILE)}")
    return 0


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "dedup", parents=[common],
        help="exact + MinHash near dedup of existing Parquet documents (e.g. the shards of several builds)",
        description=(
            "Read Parquet documents (columns id, text, score, created_utc, url, any others kept), drop exact "
            "duplicates of the normalised text and near duplicates (Jaccard of dedup.shingle_size-word shingles >= "
            "dedup.threshold), "
            "keep the best of each cluster (highest score, then earliest created_utc, smallest url, id) with "
            "dup_cluster (its id) and dup_count (documents removed as its duplicates, added to the count an input "
            "row already had) set, and write OUT/dedup-*.parquet plus OUT/_dedup_stats.json (written last; "
            "the `_` keeps it out of pandas.read_parquet(OUT)). "
            "Settings: the dedup section of the config. Beam options go after `--`."),
    )
    parser.add_argument("--input", required=True, nargs="+", metavar="PATH",
                   help="Parquet files, folders (searched recursively) or globs; all must share one schema")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (local path or Beam filesystem URL)")
    parser.set_defaults(func=_run)
