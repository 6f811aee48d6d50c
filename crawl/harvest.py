"""`webtext harvest`, the Beam side: Reddit submission dumps -> one Parquet row per normalised
outbound URL. The rules themselves, what is kept and which drop reason applies, are in
crawl/harvest_rules.py, free of Beam.

Memory bounded by a constant, not by the corpus. Beam carries only small references between
steps; the posts and rows themselves go through sorted Arrow runs on disk, in
DIR/.harvest-staging/ (DIR may be an object-store prefix). A runner that holds its shuffles in
memory (the local FnApiRunner holds every PCollection between two steps) thus holds paths,
not posts:

1. ReadDump reads one dump file (a zstd stream cannot be split) in chunks and judges its lines;
   kept posts gather as Arrow columns until `harvest.spill_posts` of them, then are written,
   sorted by (merge bucket, url_key), as one run file with one record batch per bucket
   (`runs/posts-<dump>-<n>.arrow`). It emits (bucket, (run file, batch)) per non-empty bucket.
2. MergeBucket, per hash bucket of url_key (`harvest.merge_buckets`, crc32), reads its batches
   of every run, merges posts per url_key and writes the bucket's rows sorted by url_key, with
   a 64-bit blake2b hash of the url_key beside them, as `rows/bucket-NNNNN.arrow` in batches of
   ROW_RUN_BATCH_ROWS rows. Its memory: the bucket's posts as Arrow columns (kept posts /
   merge_buckets), of which MERGE_SLICE_POSTS at a time become Python objects.
3. The number of URL files comes from the data: `harvest.output_files`, or where that is null
   ceil(urls / `harvest.rows_per_file`) (at least 1), from the global count of rows (a
   combine, used as a side input). Row r goes to file floor(hash(url_key) * files / 2**64):
   a range of the hash, independent of merge_buckets and of how the work was split. Each
   WriteUrlFile reads its hash range from every bucket's rows batch by batch and merges the
   sorted streams into Parquet row groups of ROW_GROUP_ROWS rows: its memory is one batch per
   bucket, not the file's rows (a file holds ~rows_per_file rows, give or take the hash's
   spread). On an object store its range of each run is first copied, one run at a time, to a
   local temporary file: Beam's S3 reader holds a 16 MiB buffer per open file, which times 64
   open runs was 1 GiB per writer. Files are named urls-NNNNN-of-MMMMM.parquet, each sorted by
   url_key; the row groups have fixed sizes, so the same input gives byte-identical files on
   any runner and worker count.

Disk: the runs take about as much room in the staging folder as the posts and rows they hold
(uncompressed Arrow), until the run ends. Memory (`bench/scale_harvest.py`, one FnApiRunner
worker, 71% of the records kept as in the real 2005 sample): 444 MB peak RSS at 1M records,
499 MB at 10M (1.12x). A Pushshift .zst made with --long=31 needs its zstd window on top, per dump
being read: up to 2 GiB (min(decompressed size, 2 GiB) of it resident), 1.88 GB at 1M and
2.53 GB at 10M records; give a reader worker 3 GB.

Counts are pipeline data, not runner metrics: ReadDump emits per dump, MergeBucket per bucket, a
Counter of `in`, `out`, `drop.<reason>` and `urls` on the COUNTS output; they are summed by a
combine and written by the pipeline into the staging folder (COUNTS_FILE), which `run_harvest`
reads; it also checks that the staged files hold `urls` rows (their Parquet footers). Beam
counters are still incremented per chunk and bucket for runner UIs, and never read.

Publishing: the pipeline writes into DIR/.harvest-staging/; only after it succeeded are the
files moved into DIR, between removing the old DIR/_harvest_stats.json (and the
`harvest_stats.json` of earlier versions) and writing the new one with `"complete": true`,
written last; URL files of another file count left by an earlier run are removed before that,
and the staging folder (runs included) goes whether the run succeeded or not. A failed or
killed run thus leaves the previous complete output as it was (or, killed while moving files,
no stats file: visibly incomplete, which `webtext crawl` refuses, crawl/url_table.py). A dump
that cannot be read to its end does not abort the pipeline inside a worker (with a worker's
traceback): ReadDump emits its one-line DumpError as data, and after the run every such dump
is named in one error and nothing is published. Local output folders are locked for the run
(core.lock). Pipeline options reach Beam's FileSystems before any dump is listed, so s3://
and gs:// dumps and outputs take their endpoint and credentials from the options after `--`.

Accounting (stage `harvest`): `in` counts every line of every dump (a final line without a
newline included, the empty string after the last newline not), `out` counts the posts that
ended up in a row, and each other line is dropped with exactly one reason (the order is in
crawl/harvest_rules.py).

Speed: the cycle collector is paused while a batch is judged or merged, posts travel as Arrow
columns, and sorting is Arrow's: 38-43k records per CPU-second end to end with 71% of them
kept (the earlier in-memory shuffle: 32k on the same 1M-record dump, and 1.35 GB peak RSS).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from tqdm import tqdm

from core import fsio
from core.beam import DROP_PREFIX, IN, OUT, StageCounter, pipeline_options
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
COUNTS = "counts"  # the tagged output of ReadDump and MergeBucket: Counters of the accounting
COUNTS_FILE = "harvest_counts.json"  # in the staging folder: the summed Counters
URLS = "urls"  # rows written, a key of the counts beside in/out/drop.*
LOG_EVERY_RECORDS = 1_000_000
MERGE_SLICE_POSTS = 65536  # posts of a bucket merged at a time as Python objects (the rest stay Arrow)
ROW_RUN_BATCH_ROWS = 2048  # rows per batch of a bucket's row run: a file writer holds one per bucket
ROW_GROUP_ROWS = 65536  # rows per Parquet row group: fixed, so output bytes do not depend on batching
HASH_SPACE = 2**64

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
# A run of kept posts: url_key, then Post's fields in their order.
POST_SCHEMA = pa.schema([
    ("url_key", pa.string()),
    ("post_id", pa.string()),
    ("score", pa.int64()),
    ("created_utc", pa.int64()),
    ("subreddit", pa.string()),
    ("title", pa.string()),
    ("url", pa.string()),
])
URL_HASH = "url_hash"  # the row runs' extra column: which output file a row belongs to
ROW_RUN_SCHEMA = URL_SCHEMA.append(pa.field(URL_HASH, pa.uint64()))


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
    """Stable merge bucket of a url_key (crc32: the same on every worker and Python version)."""
    return zlib.crc32(url_key.encode("utf-8")) % buckets


def url_hash(url_key: str) -> int:
    """The 64-bit hash that places a url_key's row in an output file (blake2b: stable everywhere)."""
    return int.from_bytes(hashlib.blake2b(url_key.encode("utf-8"), digest_size=8).digest(), "big")


def file_count_for(urls: int, harvest_config: HarvestConfig) -> int:
    """`harvest.output_files`, or where that is null as many files as `rows_per_file` asks for."""
    if harvest_config.output_files is not None:
        return harvest_config.output_files
    return max(1, -(-urls // harvest_config.rows_per_file))


def hash_range(index: int, total: int) -> tuple[int, int]:
    """[low, high) of the url hashes whose rows go to file `index` of `total`."""
    return index * HASH_SPACE // total, (index + 1) * HASH_SPACE // total


def _write_ipc(path: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> None:
    with fsio.atomic_open(path, "wb") as fh, pa.ipc.new_file(fh, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)


@contextmanager
def _open_ipc(path: str) -> Iterator[pa.ipc.RecordBatchFileReader]:
    """An Arrow IPC file on any Beam filesystem (local, gs://, s3://: their readers can seek)."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        yield pa.ipc.open_file(pa.PythonFile(fh, mode="r"))


class ReadDump(beam.DoFn):
    """One dump file -> (bucket, (run file, batch index)) per spilled run and non-empty bucket;
    every line counted (one Counter per dump on COUNTS). A dump that cannot be read to its end
    goes to the UNREADABLE output as its error message."""

    def __init__(self, harvest_config: HarvestConfig, runs_dir: str):
        self.harvest_config, self.runs_dir = harvest_config, runs_dir

    def setup(self):
        self.rules = HarvestRules(self.harvest_config)
        self.counter = StageCounter(STAGE)  # for runner UIs only; the counts are the COUNTS output

    def process(self, path: str):
        counts: Counter = Counter()
        try:
            yield from self._read(path, counts)
        except dumps.DumpError as exc:
            yield beam.pvalue.TaggedOutput(UNREADABLE, str(exc))
        yield beam.pvalue.TaggedOutput(COUNTS, dict(counts))

    def _read(self, path: str, counts: Counter):
        config = self.harvest_config
        size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
        name = path.rsplit("/", 1)[-1]
        run_prefix = fsio.join(self.runs_dir, "posts-" + hashlib.blake2b(path.encode("utf-8"), digest_size=8).hexdigest())
        pending: list[pa.Table] = []
        pending_posts, runs = 0, 0
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
                    if kept:
                        pending.append(posts_table(kept, config.merge_buckets))
                counts[IN] += len(lines)
                self.counter.seen(len(lines))
                for reason, count in drops.items():
                    counts[DROP_PREFIX + reason] += count
                    self.counter.dropped(reason, count)
                pending_posts += len(kept)
                if pending_posts >= config.spill_posts:
                    yield from self._spill(pending, f"{run_prefix}-{runs:05d}.arrow")
                    pending, pending_posts, runs = [], 0, runs + 1
                records += len(lines)
                if records >= next_log:
                    next_log += LOG_EVERY_RECORDS
                    log.info("%s: %d records read so far (%.0f s)", name, records, time.monotonic() - started)
            if pending:
                yield from self._spill(pending, f"{run_prefix}-{runs:05d}.arrow")
        log.info("%s: read, %d records in %.1f s", name, records, max(time.monotonic() - started, 1e-9))

    def _spill(self, pending: list[pa.Table], path: str):
        """Write the gathered posts as one run, sorted by (bucket, url_key), a batch per bucket."""
        table = pa.concat_tables(pending).sort_by([("bucket", "ascending"), ("url_key", "ascending")])
        table = table.combine_chunks()
        buckets = pc.value_counts(table.column("bucket")).to_pylist()  # in sorted order: the table is
        posts = table.drop_columns(["bucket"])
        batches, refs, offset = [], [], 0
        for index, entry in enumerate(buckets):
            batches.append(posts.slice(offset, entry["counts"]).to_batches()[0])
            refs.append((entry["values"], (path, index)))
            offset += entry["counts"]
        _write_ipc(path, POST_SCHEMA, batches)
        yield from refs


def posts_table(kept: list[tuple[str, Post]], buckets: int) -> pa.Table:
    """Kept (url_key, post) pairs as Arrow columns, with each one's merge bucket."""
    columns = list(zip(*((url_key, *post) for url_key, post in kept)))
    arrays = [pa.array(values, type=field.type) for values, field in zip(columns, POST_SCHEMA)]
    bucket = pa.array([bucket_of(url_key, buckets) for url_key in columns[0]], type=pa.int32())
    return pa.Table.from_arrays([bucket, *arrays], names=["bucket", *POST_SCHEMA.names])


class MergeBucket(beam.DoFn):
    """(bucket, its batches in the post runs) -> the bucket's row run file: rows sorted by
    url_key, with their url hash; the bucket's accounting on COUNTS."""

    def __init__(self, harvest_config: HarvestConfig, rows_dir: str):
        self.harvest_config, self.rows_dir = harvest_config, rows_dir

    def setup(self):
        self.counter = StageCounter(STAGE)  # for runner UIs only

    def process(self, element):
        bucket, refs = element
        batches = []
        for path, index in sorted(refs):  # sorted: the merge is order-free, the reads stay repeatable
            with _open_ipc(path) as reader:
                batches.append(reader.get_batch(index))
        posts = pa.Table.from_batches(batches, schema=POST_SCHEMA).sort_by("url_key")
        del batches
        tally: Counter = Counter()
        path = fsio.join(self.rows_dir, f"bucket-{bucket:05d}.arrow")
        _write_ipc(path, ROW_RUN_SCHEMA, self._merged_batches(posts, tally))
        kept, urls = tally.pop("kept", 0), tally.pop(URLS, 0)
        self.counter.kept(kept)
        for reason, count in tally.items():
            self.counter.dropped(reason, count)
        yield beam.pvalue.TaggedOutput(
            COUNTS, {OUT: kept, URLS: urls, **{DROP_PREFIX + k: v for k, v in tally.items()}})
        yield path

    def _merged_batches(self, posts: pa.Table, tally: Counter) -> Iterator[pa.RecordBatch]:
        """The rows of `posts` (sorted by url_key), merged per url_key, as row-run batches; in
        slices of about MERGE_SLICE_POSTS posts (cut between url_keys), so that only a slice is
        ever held as Python objects. Counts posts into `tally` and rows as URLS."""
        score_rule, min_score = self.harvest_config.score_rule, self.harvest_config.min_score
        keys = posts.column("url_key").to_pylist()
        start = 0
        while start < len(keys):
            end = min(start + MERGE_SLICE_POSTS, len(keys))
            while end < len(keys) and keys[end] == keys[end - 1]:
                end += 1
            part = posts.slice(start, end - start)
            with cyclic_gc_paused():
                columns = [part.column(name).to_pylist() for name in POST_SCHEMA.names[1:]]
                merged = merge_posts(zip(keys[start:end], map(Post._make, zip(*columns))))  # keeps key order
                rows = [row for url_key, url_posts in merged.items()
                        if (row := url_row(url_key, url_posts, score_rule, min_score, tally))]
                del merged, columns
                hashes = pa.array([url_hash(row.url_key) for row in rows], pa.uint64())
                table = rows_to_table(rows).append_column(URL_HASH, hashes)
            tally[URLS] += len(rows)
            yield from table.to_batches(max_chunksize=ROW_RUN_BATCH_ROWS)
            start = end


def rows_to_table(rows: list[UrlRow]) -> pa.Table:
    columns = zip(*rows) if rows else [()] * len(URL_SCHEMA)
    return pa.Table.from_arrays(
        [pa.array(values, type=field.type) for values, field in zip(columns, URL_SCHEMA)], schema=URL_SCHEMA
    )


def url_file_name(index: int, total: int) -> str:
    return f"urls-{index:05d}-of-{total:05d}.parquet"


def merge_sorted(streams: list[Iterator[pa.RecordBatch]]) -> Iterator[pa.Table]:
    """Merge streams of batches, each sorted by url_key (unique across streams), into tables in
    url_key order, holding one batch per stream: each round takes from every stream the rows up
    to the smallest last key of the current batches (all rows up to it are in those batches)."""
    heads: list[tuple[pa.RecordBatch, Iterator[pa.RecordBatch]]] = []
    for stream in streams:
        batch = next((b for b in stream if b.num_rows), None)
        if batch is not None:
            heads.append((batch, stream))
    while heads:
        bound = pa.scalar(min(batch.column(1)[-1].as_py() for batch, _ in heads), pa.string())
        pieces, rest = [], []
        for batch, stream in heads:
            taken = pc.sum(pc.less_equal(batch.column(1), bound)).as_py() or 0
            pieces.append(batch.slice(0, taken))
            batch = batch.slice(taken) if taken < batch.num_rows else next((b for b in stream if b.num_rows), None)
            if batch is not None:
                rest.append((batch, stream))
        heads = rest
        yield pa.Table.from_batches(pieces).sort_by("url_key")


def row_groups(tables: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The rows of `tables`, in order, cut into tables of exactly `rows` rows (the last: the rest)."""
    pending, pending_rows = [], 0
    for table in tables:
        pending.append(table)
        pending_rows += table.num_rows
        while pending_rows >= rows:
            joined = pa.concat_tables(pending)
            yield joined.slice(0, rows)
            pending, pending_rows = [joined.slice(rows)], pending_rows - rows
    if pending_rows:
        yield pa.concat_tables(pending)


class WriteUrlFile(beam.DoFn):
    """File index -> one Parquet file of the rows whose url hash falls in its range, sorted by
    url_key, streamed from the buckets' row runs (files with no rows exist too)."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def process(self, index: int, row_runs: list[str], total: int):
        low, high = hash_range(index, total)
        path = fsio.join(self.out_dir, url_file_name(index, total))
        with tempfile.TemporaryDirectory(prefix="webtext-harvest-") as scratch:
            streams = []
            for run in sorted(row_runs):
                if fsio.is_local(run):
                    streams.append(self._rows_in_range(run, low, high, total))
                else:  # Beam's S3 reader holds 16 MiB per open file: copy this file's rows, one run at a time
                    local = os.path.join(scratch, f"{len(streams):05d}.arrow")
                    _write_ipc(local, ROW_RUN_SCHEMA, self._rows_in_range(run, low, high, total))
                    streams.append(self._rows_in_range(local, 0, HASH_SPACE, 1))
            with fsio.atomic_open(path, "wb") as fh, pq.ParquetWriter(fh, URL_SCHEMA, compression="zstd") as writer:
                for group in row_groups(merge_sorted(streams), ROW_GROUP_ROWS):
                    writer.write_table(group.drop_columns([URL_HASH]))
        yield path

    @staticmethod
    def _rows_in_range(path: str, low: int, high: int, total: int) -> Iterator[pa.RecordBatch]:
        with _open_ipc(path) as reader:
            for i in range(reader.num_record_batches):
                batch = reader.get_batch(i)
                if total > 1:
                    hashes = batch.column(URL_HASH)
                    inside = pc.greater_equal(hashes, pa.scalar(low, pa.uint64()))
                    if high < HASH_SPACE:
                        inside = pc.and_(inside, pc.less(hashes, pa.scalar(high, pa.uint64())))
                    batch = batch.filter(inside)
                yield batch


class SumCounts(beam.CombineFn):
    """The sum of Counter dicts (an empty input sums to {})."""

    def create_accumulator(self):
        return Counter()

    def add_input(self, total, counts):
        total.update(counts)
        return total

    def merge_accumulators(self, totals):
        merged = Counter()
        for total in totals:
            merged.update(total)
        return merged

    def extract_output(self, total):
        return dict(sorted(total.items()))


def write_json(value, out_dir: str, name: str) -> None:
    fsio.atomic_write_text(fsio.join(out_dir, name), json.dumps(value, sort_keys=True))


def write_unreadable(messages: list[str], out_dir: str) -> None:
    """The errors of the dumps that could not be read, for `run_harvest` to raise."""
    if messages:
        write_json(sorted(messages), out_dir, UNREADABLE_FILE)


def build_pipeline(pipeline: beam.Pipeline, paths: list[str], out_dir: str, harvest_config: HarvestConfig):
    """The harvest graph: dump paths -> sorted post runs -> rows per url_key -> Parquet files in
    `out_dir` (plus COUNTS_FILE, and UNREADABLE_FILE if some dump could not be read); the runs
    go to `out_dir`/runs and `out_dir`/rows."""
    read = (
        pipeline
        | "DumpPaths" >> beam.Create(paths)
        | "OneFilePerWorker" >> beam.Reshuffle()
        | "ReadAndFilter" >> beam.ParDo(ReadDump(harvest_config, fsio.join(out_dir, "runs")))
        .with_outputs(UNREADABLE, COUNTS, main="runs")
    )
    (
        read[UNREADABLE]
        | "AllUnreadable" >> beam.combiners.ToList()
        | "NoteUnreadable" >> beam.Map(write_unreadable, out_dir)
    )
    merged = (
        read.runs
        | "RunsPerBucket" >> beam.GroupByKey()
        | "MergePerUrl" >> beam.ParDo(MergeBucket(harvest_config, fsio.join(out_dir, "rows")))
        .with_outputs(COUNTS, main="row_runs")
    )
    counts = (
        (read[COUNTS], merged[COUNTS])
        | "AllCounts" >> beam.Flatten()
        | "SumCounts" >> beam.CombineGlobally(SumCounts())
    )
    counts | "NoteCounts" >> beam.Map(write_json, out_dir, COUNTS_FILE)
    file_count = counts | "FileCount" >> beam.Map(lambda total: file_count_for(total.get(URLS, 0), harvest_config))
    return (
        file_count
        | "FileIndices" >> beam.FlatMap(lambda count: range(count))
        | "OneFilePerWriter" >> beam.Reshuffle()
        | "WriteParquet" >> beam.ParDo(
            WriteUrlFile(out_dir), beam.pvalue.AsList(merged.row_runs), beam.pvalue.AsSingleton(file_count))
    )


def run_harvest(
    dump_patterns: list[str], out_dir: str, harvest_config: HarvestConfig, beam_config: BeamConfig,
    beam_args: list[str] = (),
) -> dict:
    """Run the harvest pipeline into a staging folder and publish its output in `out_dir`;
    returns the stats written to DIR/_harvest_stats.json. DumpError (one line, naming every dump
    that could not be read) if a dump cannot be read to its end: then nothing is published."""
    options = pipeline_options(beam_config, beam_args)  # first: FileSystems take their options from it
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
            with beam.Pipeline(options=options) as pipeline:
                build_pipeline(pipeline, paths, staging, harvest_config)
            elapsed = time.monotonic() - started
            _raise_if_unreadable(staging, out_dir)
            harvest, urls = _read_counts(staging)
            harvest.check()
            names = [url_file_name(i, file_count_for(urls, harvest_config))
                     for i in range(file_count_for(urls, harvest_config))]
            _check_rows(staging, names, urls)
            extra = {
                "urls": urls,
                "duplicate_posts_merged": harvest.records_out - urls,
                "dump_files": paths,
                "seconds": round(elapsed, 3),
                "records_per_second": round(harvest.records_in / max(elapsed, 1e-9), 1),
                "complete": True,
            }
            _publish(staging, out_dir, names, harvest, extra)
        finally:
            _delete_folder(staging)
    return {"counts": {STAGE: harvest}, **extra}


def _read_counts(staging: str) -> tuple[StageCounts, int]:
    """The accounting the pipeline wrote (COUNTS_FILE) as StageCounts, and the rows written."""
    with FileSystems.open(fsio.join(staging, COUNTS_FILE)) as fh:
        counts = json.loads(fh.read().decode("utf-8"))
    dropped = {name[len(DROP_PREFIX):]: n for name, n in counts.items() if name.startswith(DROP_PREFIX) and n}
    return StageCounts(STAGE, counts.get(IN, 0), counts.get(OUT, 0), dropped), counts.get(URLS, 0)


def _check_rows(staging: str, names: list[str], urls: int) -> None:
    """The staged files must hold the rows the counts promise (read from their Parquet footers)."""
    rows = 0
    for name in names:
        with FileSystems.open(fsio.join(staging, name), compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            rows += pq.ParquetFile(pa.PythonFile(fh, mode="r")).metadata.num_rows
    if rows != urls:
        raise AssertionError(f"harvest wrote {rows} URL rows but counted {urls}")


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
        FileSystems.delete(stale)  # the files of another file count
    write_stats_json(stats_path, {STAGE: counts}, extra)


def _delete_folder(path: str) -> None:
    """The staging folder and everything in it (on object stores: every object under its
    prefix, in nested `folders` too: `**` crosses `/`, `*` does not)."""
    if fsio.is_local(path):
        if FileSystems.exists(path):
            FileSystems.delete([path])  # a local folder goes with everything in it
        return
    matches = FileSystems.match([fsio.join(path, "**")])[0].metadata_list
    if matches:
        FileSystems.delete([m.path for m in matches])
