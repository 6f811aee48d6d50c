"""Exact + near dedup of existing Parquet documents (e.g. across builds): `webtext dedup`'s work.

`webtext build` already deduplicates each build; this deduplicates documents that were never in
one build together, such as the shards of two crawls, with the same transforms. Survivors go
to OUT/dedup-*.parquet, the stage counts to OUT/_dedup_stats.json, written last (its leading `_`
keeps it out of Arrow's dataset discovery: `pandas.read_parquet(OUT)` reads the survivors).
The counts are tallied by the pipeline itself (kept documents, drops by stage and reason), so
they hold on runners that report no metrics; where a runner does report them, they must agree.
"""

from __future__ import annotations

import json
import logging
import os

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from core import fsio
from core.beam import pipeline_options, reported_stage_counts
from core.beam_config import BeamConfig
from core.stats import StageCounts, counts_from_drops, write_stats_json
from dedup.config import DedupConfig
from dedup.pipeline import Deduplicate

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = {"id": pa.string(), "text": pa.string(), "score": pa.int64(), "created_utc": pa.int64(),
                    "url": pa.string()}
STATS_FILE = "_dedup_stats.json"
LEGACY_STATS_FILE = "dedup_stats.json"  # the name earlier versions wrote: removed with the outputs it describes
OUTPUT_PREFIX = "dedup"
TALLY_FILE = ".dedup-tally.json"  # the pipeline's own counts, read and removed after the run
KEPT_TALLY = ("", "kept")  # the tally key of a surviving document
STAGES = ["dedup_exact", "dedup_near"]


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
    for column, kind in (("dup_cluster", pa.string()), ("dup_count", pa.int64())):
        if schema.get_field_index(column) < 0:
            schema = schema.append(pa.field(column, kind))
    return schema


def _counts(tally_path: str) -> dict[str, StageCounts]:
    """The stage counts from the tally the pipeline wrote (kept documents, drops by stage and
    reason): the pipeline's own output, true on any runner, whatever metrics it reports."""
    with FileSystems.open(tally_path) as fh:
        tallies = json.loads(fh.read().decode("utf-8"))
    FileSystems.delete([tally_path])
    kept = sum(n for (stage, reason), n in tallies if [stage, reason] == list(KEPT_TALLY))
    drops: dict[str, dict[str, int]] = {}
    for (stage, reason), n in tallies:
        if [stage, reason] != list(KEPT_TALLY):
            drops.setdefault(stage, {})[reason] = n
    return counts_from_drops(STAGES, drops, kept)


def run_dedup(inputs: list[str], out: str, dedup_config: DedupConfig, beam_config: BeamConfig,
              beam_args: list[str] = ()) -> dict[str, StageCounts]:
    """Deduplicate the Parquet files `inputs` into `out`; returns the per-stage counts."""
    options = pipeline_options(beam_config, beam_args)  # before listing: it configures FileSystems
    files = [f for f in fsio.expand(inputs) if f.endswith(".parquet")]
    out_prefix = fsio.join(out, "")
    inside = [f for f in files if f.startswith(out_prefix) or f.startswith(os.path.abspath(out_prefix))]
    if inside:
        raise ValueError(f"--out {out} contains input {inside[0]}; write the survivors somewhere else")
    schema = input_schema(files)
    fsio.makedirs(out)
    stats_path = fsio.join(out, STATS_FILE)
    for old_stats in (stats_path, fsio.join(out, LEGACY_STATS_FILE)):
        if FileSystems.exists(old_stats):
            FileSystems.delete([old_stats])  # it marks a finished run, so it goes first
    stale = FileSystems.match([fsio.join(out, f"{OUTPUT_PREFIX}-*.parquet")])[0].metadata_list
    if stale:
        FileSystems.delete([m.path for m in stale])
    log.info("deduplicating %d Parquet file(s) into %s", len(files), out)
    tally_path = fsio.join(out, TALLY_FILE)
    with beam.Pipeline(options=options) as pipeline:
        kept, dropped = (
            pipeline
            | "Files" >> beam.Create(files)
            | "Read" >> beam.io.ReadAllFromParquet()
            | "Deduplicate" >> Deduplicate(dedup_config, with_dropped=True)
        )
        kept | "Write" >> beam.io.WriteToParquet(fsio.join(out, OUTPUT_PREFIX), schema, file_name_suffix=".parquet",
                                                 codec="zstd")
        (
            (kept | "KeptTally" >> beam.Map(lambda _doc: KEPT_TALLY),
             dropped | "DropTally" >> beam.Map(lambda row: (row["stage"], row["reason"])))
            | "AllTallies" >> beam.Flatten()
            | "CountTallies" >> beam.combiners.Count.PerElement()
            | "OneList" >> beam.combiners.ToList()
            | "WriteTally" >> beam.Map(lambda tallies: fsio.atomic_write_text(tally_path, json.dumps(tallies)))
        )
    counts = _counts(tally_path)
    reported = reported_stage_counts(pipeline.result)
    if reported is not None:
        disagree = [stage for stage, sc in reported.items() if sc.to_json() != counts[stage].to_json()]
        if disagree:
            raise AssertionError(f"dedup counts disagree: the runner's metrics count {reported} but its output "
                                 f"holds {counts}")
    for stage in counts.values():
        stage.check()
    write_stats_json(stats_path, counts, {"inputs": files})
    return counts
