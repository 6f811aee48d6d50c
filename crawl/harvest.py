"""`webtext harvest`, the Beam side: Reddit submission dumps -> one Parquet row per normalised
outbound URL. The rules themselves, what is kept and which drop reason applies, are in
crawl/harvest_rules.py, free of Beam.

The pipeline reads every dump file as one work item (a zstd stream cannot be split), judges
its lines in the same step, so only kept posts are shuffled, then merges posts per `url_key`
(posts travel in batches per hash bucket of their url_key, merged in plain Python after a
GroupByKey: one Beam element per post cost more than all the rules) and writes the rows
sorted by `url_key`.

Publishing: the pipeline writes into DIR/.harvest-staging/; only after it succeeded are the
files moved into DIR, between removing the old DIR/_harvest_stats.json (and the
`harvest_stats.json` of earlier versions) and writing the new one with `"complete": true`,
written last. A failed or killed run thus leaves the previous complete output as it was
(or, killed while moving files, no stats file: visibly incomplete,
which `webtext crawl` refuses, crawl/url_table.py). A dump that cannot be read to its end
does not abort the pipeline inside a worker (with a worker's traceback): ReadDump emits its
one-line DumpError as data, and after the run every such dump is named in one error and
nothing is published. Local output folders are locked for the run (core.lock).

Accounting (stage `harvest`): `in` counts every line of every dump (a final line without a
newline included, the empty string after the last newline not), `out` counts the posts that
ended up in a row, and each other line is dropped with exactly one reason (the order is in
crawl/harvest_rules.py).

Speed: counters are incremented once per chunk or merge bucket, the cycle collector is paused
while a batch is judged or merged, and each merge bucket's rows travel to the writer as one
Arrow IPC blob, which the writer sorts in Arrow (`python -m bench harvest`: 66k records per
CPU-second on a 1M-record dump).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import time
import zlib
from collections import Counter
from contextlib import contextmanager

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from tqdm import tqdm

from core import fsio
from core.beam import NAMESPACE_PREFIX, StageCounter, collect_stage_counts, pipeline_options, stage_diagnostics
from core.beam_config import BeamConfig
from core.lock import exclusive_folder
from core.stats import StageCounts, write_stats_json
from crawl import dumps
from crawl.config import HarvestConfig
from crawl.harvest_rules import HarvestRules, Post, UrlRow, merge_posts, url_row
from crawl.url_table import LEGACY_STATS_FILE, STATS_FILE

log = logging.getLogger(__name__)

STAGE = "harvest"
STAGING_DIR = ".harvest-staging"  # inside --out; a leftover of a killed run is cleared by the next
UNREADABLE = "unreadable"  # ReadDump's output of dumps that cannot be read to their end
UNREADABLE_FILE = "unreadable_dumps.json"  # in the staging folder: their one-line errors
URLS_COUNTER = "urls"  # rows written; in the stage namespace, ignored by collect_stage_counts
LOG_EVERY_RECORDS = 1_000_000

URL_SCHEMA = pa.schema([
    ("url", pa.string()),
    ("url_key", pa.string()),
    ("domain", pa.string()),
    ("score", pa.int64()),
    ("post_ids", pa.list_(pa.string())),
    ("subreddits", pa.list_(pa.string())),
    ("titles", pa.list_(pa.string())),
    ("first_created_utc", pa.int64()),
    ("num_posts", pa.int64()),
])


@contextmanager
def cyclic_gc_paused():
    """Parsed records are acyclic trees freed by reference counting; the cycle collector's
    passes, set off by their many dicts and lists, scan Beam's whole heap (~10% of the time)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def bucket_of(url_key: str, buckets: int) -> int:
    """Stable bucket of a url_key (crc32: the same on every worker and Python version)."""
    return zlib.crc32(url_key.encode("utf-8")) % buckets


class ReadDump(beam.DoFn):
    """One dump file -> (bucket, [(url_key, post as a plain tuple), ...]) per chunk and bucket;
    every line counted. Batching keeps Beam's per-element cost off the per-post path, and plain
    tuples Beam's coder encodes itself (a NamedTuple it pickles: 4x the cost per post).
    A dump that cannot be read to its end goes to the UNREADABLE output as its error message."""

    def __init__(self, harvest_config: HarvestConfig):
        self.harvest_config = harvest_config

    def setup(self):
        self.rules = HarvestRules(self.harvest_config)
        self.counter = StageCounter(STAGE)

    def process(self, path: str):
        try:
            yield from self._read(path)
        except dumps.DumpError as exc:
            yield beam.pvalue.TaggedOutput(UNREADABLE, str(exc))

    def _read(self, path: str):
        config = self.harvest_config
        size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
        name = path.rsplit("/", 1)[-1]
        started, records, next_log = time.monotonic(), 0, LOG_EVERY_RECORDS
        with tqdm(total=size, unit="B", unit_scale=True, desc=name, disable=None, leave=False) as bar:
            def progress(position: int) -> None:
                bar.update(position - bar.n)

            for lines in dumps.iter_line_batches(
                path, config.read_chunk_bytes, config.max_line_bytes, config.zstd_window_log_max, progress,
            ):
                drops: Counter = Counter()
                with cyclic_gc_paused():
                    kept = self.rules.judge_lines(lines, drops)
                self.counter.seen(len(lines))
                for reason, count in drops.items():
                    self.counter.dropped(reason, count)
                records += len(lines)
                if records >= next_log:
                    next_log += LOG_EVERY_RECORDS
                    log.info("%s: %d records read so far (%.0f s)", name, records, time.monotonic() - started)
                by_bucket: dict[int, list] = {}
                for url_key, post in kept:
                    by_bucket.setdefault(bucket_of(url_key, config.merge_buckets), []).append((url_key, tuple(post)))
                yield from by_bucket.items()
        elapsed = max(time.monotonic() - started, 1e-9)
        log.info("%s: read, %d records in %.1f s", name, records, elapsed)


class MergeBucket(beam.DoFn):
    """(bucket, batches of (url_key, post tuple)) -> (output file index, the bucket's rows as Arrow
    IPC bytes: one opaque blob per bucket, which Beam's coders copy instead of walking every
    row's tuples and lists at each shuffle step)."""

    def __init__(self, harvest_config: HarvestConfig):
        self.harvest_config = harvest_config

    def setup(self):
        self.counter = StageCounter(STAGE)

    def process(self, element):
        bucket, batches = element
        score_rule, min_score = self.harvest_config.score_rule, self.harvest_config.min_score
        tally: Counter = Counter()  # counted per bucket: a Beam counter per row costs more than the row
        with cyclic_gc_paused():
            merged = merge_posts((url_key, Post._make(fields)) for batch in batches for url_key, fields in batch)
            rows = [row for url_key, posts in merged.items()
                    if (row := url_row(url_key, posts, score_rule, min_score, tally))]
            table = rows_to_table(rows)
        kept = tally.pop("kept", 0)
        if kept:
            self.counter.kept(kept)
        for reason, count in tally.items():
            self.counter.dropped(reason, count)
        yield bucket % self.harvest_config.output_files, table_to_ipc(table)


def rows_to_table(rows: list[UrlRow]) -> pa.Table:
    columns = zip(*rows) if rows else [()] * len(URL_SCHEMA)
    return pa.Table.from_arrays(
        [pa.array(values, type=field.type) for values, field in zip(columns, URL_SCHEMA)], schema=URL_SCHEMA
    )


def table_to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, URL_SCHEMA) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def table_from_ipc(blob: bytes) -> pa.Table:
    return pa.ipc.open_stream(blob).read_all()


def url_file_name(index: int, total: int) -> str:
    return f"urls-{index:05d}-of-{total:05d}.parquet"


class WriteUrlFile(beam.DoFn):
    """(file index, {"marker": [None], "rows": [Arrow IPC blobs of buckets]}) -> one Parquet
    file of rows sorted by url_key (the marker makes files with no rows exist too)."""

    def __init__(self, out_dir: str, total: int):
        self.out_dir, self.total = out_dir, total

    def setup(self):
        self.rows_written = Metrics.counter(NAMESPACE_PREFIX + STAGE, URLS_COUNTER)

    def process(self, element):
        index, grouped = element
        tables = [table_from_ipc(blob) for blob in grouped["rows"]]
        table = pa.concat_tables(tables) if tables else URL_SCHEMA.empty_table()
        table = table.sort_by("url_key")  # byte order of UTF-8 = code point order, as sorted() on str
        path = fsio.join(self.out_dir, url_file_name(index, self.total))
        with fsio.atomic_open(path, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
        self.rows_written.inc(table.num_rows)
        yield path


def write_unreadable(messages: list[str], out_dir: str) -> None:
    """The errors of the dumps that could not be read, for `run_harvest` to raise."""
    if messages:
        fsio.atomic_write_text(fsio.join(out_dir, UNREADABLE_FILE), json.dumps(sorted(messages)))


def build_pipeline(pipeline: beam.Pipeline, paths: list[str], out_dir: str, harvest_config: HarvestConfig):
    """The harvest graph: dump paths -> judged posts -> rows per url_key -> Parquet files in
    `out_dir` (plus UNREADABLE_FILE there if some dump could not be read)."""
    file_count = harvest_config.output_files
    read = (
        pipeline
        | "DumpPaths" >> beam.Create(paths)
        | "OneFilePerWorker" >> beam.Reshuffle()
        | "ReadAndFilter" >> beam.ParDo(ReadDump(harvest_config)).with_outputs(UNREADABLE, main="posts")
    )
    (
        read[UNREADABLE]
        | "AllUnreadable" >> beam.combiners.ToList()
        | "NoteUnreadable" >> beam.Map(write_unreadable, out_dir)
    )
    rows = (
        read.posts
        | "PostsPerBucket" >> beam.GroupByKey()
        | "MergePerUrl" >> beam.ParDo(MergeBucket(harvest_config))
    )
    every_file = pipeline | "EveryFileIndex" >> beam.Create([(i, None) for i in range(file_count)])
    return (
        {"marker": every_file, "rows": rows}
        | "RowsPerFile" >> beam.CoGroupByKey()
        | "WriteParquet" >> beam.ParDo(WriteUrlFile(out_dir, file_count))
    )


def run_harvest(
    dump_patterns: list[str], out_dir: str, harvest_config: HarvestConfig, beam_config: BeamConfig,
    beam_args: list[str] = (),
) -> dict:
    """Run the harvest pipeline into a staging folder and publish its output in `out_dir`;
    returns the stats written to DIR/_harvest_stats.json. DumpError (one line, naming every dump
    that could not be read) if a dump cannot be read to its end: then nothing is published."""
    paths = dumps.resolve_dumps(dump_patterns)
    log.info("harvesting %d dump file(s) into %s", len(paths), out_dir)
    for path in _empty_dumps(paths):
        log.warning("%s is empty (0 bytes): it adds no records; download it again if it should hold some", path)
    fsio.makedirs(out_dir)
    staging = fsio.join(out_dir, STAGING_DIR)
    with _output_lock(out_dir):
        _delete_folder(staging)  # what a killed run left behind
        fsio.makedirs(staging)
        try:
            started = time.monotonic()
            with beam.Pipeline(options=pipeline_options(beam_config, beam_args)) as pipeline:
                build_pipeline(pipeline, paths, staging, harvest_config)
            result = pipeline.result
            elapsed = time.monotonic() - started
            _raise_if_unreadable(staging, out_dir)
            harvest = collect_stage_counts(result).get(STAGE) or StageCounts(STAGE)  # empty dumps: no counters
            harvest.check()
            urls = stage_diagnostics(result, STAGE).get(URLS_COUNTER, 0)
            extra = {
                "urls": urls,
                "duplicate_posts_merged": harvest.records_out - urls,
                "dump_files": paths,
                "seconds": round(elapsed, 3),
                "records_per_second": round(harvest.records_in / max(elapsed, 1e-9), 1),
                "complete": True,
            }
            file_count = harvest_config.output_files
            _publish(staging, out_dir, [url_file_name(i, file_count) for i in range(file_count)], harvest, extra)
        finally:
            _delete_folder(staging)
    return {"counts": {STAGE: harvest}, **extra}


def _empty_dumps(paths: list[str]) -> list[str]:
    """The dump files of 0 bytes: no error (a month can be empty), but worth a warning."""
    return [file.path for match in FileSystems.match(paths) for file in match.metadata_list if file.size_in_bytes == 0]


def _output_lock(out_dir: str):
    """One harvest at a time per local output folder (object stores have no lock)."""
    return contextlib.nullcontext() if "://" in out_dir else exclusive_folder(out_dir, "harvest")


def _raise_if_unreadable(staging: str, out_dir: str) -> None:
    path = fsio.join(staging, UNREADABLE_FILE)
    if not FileSystems.exists(path):
        return
    with FileSystems.open(path) as fh:
        messages = json.loads(fh.read().decode("utf-8"))
    unchanged = f"{out_dir} is left as it was"
    if len(messages) == 1:
        raise dumps.DumpError(f"{messages[0]} ({unchanged})")
    raise dumps.DumpError(f"{len(messages)} dump files cannot be read ({unchanged}): " + "; ".join(messages))


def _publish(staging: str, out_dir: str, names: list[str], counts: StageCounts, extra: dict) -> None:
    """Move the staged URL files into `out_dir`, in the one order that never shows a mix of
    old and new files as complete: old stats out, files in, stale files out, new stats in."""
    stats_path = fsio.join(out_dir, STATS_FILE)
    for old_stats in (stats_path, fsio.join(out_dir, LEGACY_STATS_FILE)):
        if FileSystems.exists(old_stats):
            FileSystems.delete([old_stats])  # from here on no stats file: visibly incomplete
    FileSystems.rename([fsio.join(staging, name) for name in names], [fsio.join(out_dir, name) for name in names])
    matches = FileSystems.match([fsio.join(out_dir, "urls-*.parquet")])[0].metadata_list
    stale = [m.path for m in matches if m.path.rsplit("/", 1)[-1] not in set(names)]
    if stale:
        FileSystems.delete(stale)
    write_stats_json(stats_path, {STAGE: counts}, extra)


def _delete_folder(path: str) -> None:
    """The staging folder and its files (on object stores: the objects under its prefix)."""
    if fsio.is_local(path):
        if FileSystems.exists(path):
            FileSystems.delete([path])  # a local folder goes with everything in it
        return
    matches = FileSystems.match([fsio.join(path, "*")])[0].metadata_list
    if matches:
        FileSystems.delete([m.path for m in matches])
