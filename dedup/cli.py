"""Subcommand `dedup`: exact + near dedup of existing Parquet documents (e.g. across builds).

`webtext build` already deduplicates each build; this command deduplicates documents that
were never in one build together, such as the shards of two crawls, with the same transforms.
"""

from __future__ import annotations

import argparse
import logging
import os

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from core import fsio

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = {"id": pa.string(), "text": pa.string(), "score": pa.int64(), "created_utc": pa.int64(),
                    "url": pa.string()}
STATS_FILE = "dedup_stats.json"
OUTPUT_PREFIX = "dedup"


def input_schema(files: list[str]) -> pa.Schema:
    """The one schema all inputs share; errors name the file and the column."""
    if not files:
        raise ValueError("no *.parquet files among the inputs")
    schema = None
    for path in files:
        try:
            with FileSystems.open(path) as fh:
                file_schema = pq.read_schema(fh)
        except (OSError, pa.ArrowInvalid) as exc:
            raise ValueError(f"{path}: not a readable Parquet file ({exc})") from None
        for column, kind in REQUIRED_COLUMNS.items():
            if file_schema.get_field_index(column) < 0:
                raise ValueError(f"{path}: missing column {column!r} (needs {', '.join(REQUIRED_COLUMNS)})")
            if not file_schema.field(column).type.equals(kind):
                raise ValueError(f"{path}: column {column!r} is {file_schema.field(column).type}, expected {kind}")
        file_schema = file_schema.remove_metadata()
        if schema is None:
            schema = file_schema
        elif not schema.equals(file_schema):
            raise ValueError(f"{path}: schema differs from {files[0]}'s; inputs must share one schema")
    if schema.get_field_index("dup_cluster") < 0:
        schema = schema.append(pa.field("dup_cluster", pa.string()))
    return schema


def run_dedup(cfg, inputs: list[str], out: str, beam_args: list[str] = ()):
    """Deduplicate the Parquet files `inputs` into `out`; returns the per-stage counts."""
    import apache_beam as beam

    from dedup.exact import ExactDedup
    from dedup.near import NearDedup
    from core.beam import pipeline_options
    from core.beam import collect_stage_counts
    from core.stats import write_stats_json

    files = [f for f in fsio.expand(inputs) if f.endswith(".parquet")]
    out_prefix = fsio.join(out, "")
    inside = [f for f in files if f.startswith(out_prefix) or f.startswith(os.path.abspath(out_prefix))]
    if inside:
        raise ValueError(f"--out {out} contains input {inside[0]}; write the survivors somewhere else")
    schema = input_schema(files)
    fsio.makedirs(out)
    stats_path = fsio.join(out, STATS_FILE)
    if FileSystems.exists(stats_path):
        FileSystems.delete([stats_path])  # it marks a finished run, so it goes first
    stale = FileSystems.match([fsio.join(out, f"{OUTPUT_PREFIX}-*.parquet")])[0].metadata_list
    if stale:
        FileSystems.delete([m.path for m in stale])
    log.info("deduplicating %d Parquet file(s) into %s", len(files), out)
    with beam.Pipeline(options=pipeline_options(cfg.beam, beam_args)) as p:
        _ = (
            p
            | "Files" >> beam.Create(files)
            | "Read" >> beam.io.ReadAllFromParquet()
            | "ExactDedup" >> ExactDedup(cfg.dedup)
            | "NearDedup" >> NearDedup(cfg.dedup)
            | "Write" >> beam.io.WriteToParquet(fsio.join(out, OUTPUT_PREFIX), schema, file_name_suffix=".parquet",
                                                codec="zstd")
        )
    counts = collect_stage_counts(p.result)
    for stage in counts.values():
        stage.check()
    write_stats_json(stats_path, counts, {"inputs": files})
    return counts


def _run(args: argparse.Namespace, cfg) -> int:
    from core.stats import format_counts_table

    counts = run_dedup(cfg, args.input, args.out, args.beam_args)
    print(format_counts_table(counts))
    print(f"\nsurvivors: {fsio.join(args.out, OUTPUT_PREFIX)}-*.parquet   counts: {fsio.join(args.out, STATS_FILE)}")
    return 0


def register(subparsers, common) -> None:
    p = subparsers.add_parser(
        "dedup", parents=[common],
        help="exact + MinHash near dedup of existing Parquet documents (e.g. the shards of several builds)",
        description=(
            "Read Parquet documents (columns id, text, score, created_utc, url, any others kept), drop exact "
            "duplicates of the normalised text and near duplicates (Jaccard of dedup.shingle_size-word shingles >= "
            "dedup.threshold), "
            "keep the best of each cluster (highest score, then earliest created_utc, smallest url, id) with "
            "dup_cluster set, and write OUT/dedup-*.parquet plus OUT/dedup_stats.json (written last). "
            "Settings: the dedup section of the config. Beam options go after `--`."),
    )
    p.add_argument("--input", required=True, nargs="+", metavar="PATH",
                   help="Parquet files, folders (searched recursively) or globs; all must share one schema")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (local path or Beam filesystem URL)")
    p.set_defaults(func=_run)
