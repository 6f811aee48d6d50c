"""`webtext harvest`: Reddit submission dumps -> one Parquet row per normalised outbound URL.

WebText (Radford et al., 2019) scraped "all outbound links from Reddit ... which received at
least 3 karma". The pipeline reads every dump file as one work item (a zstd stream cannot be
split), parses and filters its records in the same step, so only kept posts are shuffled, then
merges posts per `url_key` (posts travel in batches per hash bucket of their url_key, merged
in plain Python after a GroupByKey: one Beam element per post cost more than all the rules)
and writes the rows sorted by `url_key`.

Accounting (stage `harvest`): `in` counts every line of every dump (a final line without a
newline included, the empty string after the last newline not), `out` counts the posts that
ended up in a row, and each other line is dropped with exactly one reason, the first that
applies in this order: empty_line, line_too_long, malformed_json (incl. NUL garbage, invalid
UTF-8, JSON that is not an object), promoted, bad_score, low_score, self_post, nsfw,
missing_url, missing_id, bad_created_utc, outside_date_window, bad_scheme, wikipedia and
blocked_domain on the posted host, private_address and bad_url from normalising, wikipedia
and blocked_domain again on the normalised host, blocked_extension; then after merging
duplicate_post (the same submission id seen again for the same URL, e.g. overlapping dumps;
the highest score wins). Under `score_rule: sum_per_url` low_score is decided per URL after
merging, and all posts of a URL below `min_score` are dropped as low_score.

Which URL a row keeps: variants of one `url_key` differ only in scheme and `www.`; the row's
`url` is the (normalised) variant of its highest-scored post, ties going to the earliest post:
the form most readers clicked is the one known to work, and the scheme and host are kept as
posted (no guessed https upgrade). `post_ids` are in numeric base36 order, which is posting
order (a plain string sort would put "100" before "99").

Speed: every line is parsed with orjson (json as its fallback, see `parse_record`) and then
judged on the parsed dict. A raw-bytes pre-check for the common drops used to skip the parse,
but with orjson the byte scans it needs cost more than the parse they save. Kept URLs that are
already in canonical form skip w3lib (crawl/urls.py), counters are incremented once per chunk
or merge bucket, and each merge bucket's rows travel to the writer as one Arrow IPC blob,
which the writer sorts in Arrow (`python -m bench.bench_harvest`: 66k records per CPU-second
on a 1M-record dump).
"""

from __future__ import annotations

import gc
import json
import logging
import time
import zlib
from collections import Counter
from contextlib import contextmanager
from datetime import datetime

import apache_beam as beam
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from tqdm import tqdm

from crawl import dumps
from crawl.config import HarvestConfig
from crawl.urls import (
    SCHEMES,
    TrackingParams,
    domain_of_normalized,
    extension_of,
    host_in,
    host_of,
    host_of_normalized,
    is_private_host,
    key_of_normalized,
    normalize,
    scheme_of,
)
from core import fsio
from core.beam import StageCounter, collect_stage_counts
from core.stats import StageCounts, format_counts_table, write_stats_json

log = logging.getLogger(__name__)

STAGE = "harvest"
STATS_FILE = "harvest_stats.json"
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

# A kept submission: (post_id, score, created_utc, subreddit, title, normalised url).
Post = tuple[str, int, int, str, str, str]


_FLOAT_EXACT = 2**53


def parse_int(value) -> int | None:
    """Reddit numbers arrive as int, float or digit string (`int(float(x))`); None if none."""
    if type(value) is int and -_FLOAT_EXACT <= value <= _FLOAT_EXACT:
        return value  # the common case, skipping the float round trip (exact up to 2**53)
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def post_id_order(post_id: str) -> tuple[int, str]:
    """Base36 ids sort numerically (= chronologically) by length first, then by digits."""
    return len(post_id), post_id


def _epoch(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp())


def parse_record(line: bytes):
    """The JSON value of a line, or None if it is no JSON.

    orjson parses (about 4x faster than `json`); what it rejects goes to `json.loads`, so the
    values `json` alone accepts (NaN, Infinity, 1e400, lone surrogates, a UTF-8 BOM, UTF-16
    lines) still parse as before. Where both accept a line they agree, except that orjson
    reads integers beyond 64 bits as floats, which `parse_int` turns into the same int.
    """
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, [[[[...
        return None


class PostFilter:
    """The per-record rules of the harvest, compiled once from the config.

    `check` applies them in order and returns the first drop reason that applies, or the kept
    post keyed by its url_key. The record rules are written out in `check`, one commented
    block per drop reason, instead of one method each: they run on every line of every dump,
    and nine calls per record made the rules ~12% slower.
    """

    def __init__(self, cfg: HarvestConfig):
        self.cfg = cfg
        self.per_post_score = cfg.score_rule == "max_post"
        self.min_score = cfg.min_score
        self.drop_self_posts, self.drop_nsfw = cfg.drop_self_posts, cfg.drop_nsfw
        self.after = _epoch(cfg.created_after)
        self.before = _epoch(cfg.created_before)
        self.blocked_domains = frozenset(cfg.blocked_domains)
        self.wikipedia_domains = frozenset(cfg.wikipedia_domains)
        self.blocked_extensions = frozenset(cfg.blocked_extensions)
        self.tracking = TrackingParams(cfg.tracking_params)

    # -- URL rules --------------------------------------------------------------------------
    def url_drop_reason(self, raw_url: str) -> tuple[str | None, str | None]:
        """(drop reason, None) or (None, normalised URL)."""
        raw_url = raw_url.strip()
        if scheme_of(raw_url) not in SCHEMES:
            return "bad_scheme", None
        posted_host = host_of(raw_url)  # checked first: saves normalising media links
        if host_in(posted_host, self.wikipedia_domains):
            return "wikipedia", None
        if host_in(posted_host, self.blocked_domains):
            return "blocked_domain", None
        url = normalize(raw_url, self.tracking)
        if url is None:  # localhost and legacy IP forms (2130706433) are no valid host either
            return ("private_address" if is_private_host(posted_host) else "bad_url"), None
        host = host_of_normalized(url)
        if is_private_host(host):
            return "private_address", None
        if host != posted_host:  # IDNA-encoded or its case changed: the lists may match it now
            if host_in(host, self.wikipedia_domains):
                return "wikipedia", None
            if host_in(host, self.blocked_domains):
                return "blocked_domain", None
        if extension_of(url) in self.blocked_extensions:
            return "blocked_extension", None
        return None, url

    # -- one line ---------------------------------------------------------------------------
    def check(self, line: bytes | None) -> str | tuple[str, Post]:
        """Drop reason of one dump line, or (url_key, post) if the post is kept."""
        if line is None:
            return "line_too_long"
        line = line.strip()
        if not line:
            return "empty_line"
        rec = parse_record(line)
        if not isinstance(rec, dict):
            return "malformed_json"
        get = rec.get
        # promoted: ads are not community-voted links.
        if get("promoted"):
            return "promoted"
        # bad_score: a score that is present but not a number; a missing score counts as 0.
        score = get("score")
        if score is not None:
            score = parse_int(score)
            if score is None:
                return "bad_score"
        else:
            score = 0
        # low_score: WebText's karma rule, per submission (sum_per_url applies it per URL).
        if self.per_post_score and score < self.min_score:
            return "low_score"
        # self_post: self posts link to their own Reddit thread, not to the web.
        if self.drop_self_posts and get("is_self"):
            return "self_post"
        if self.drop_nsfw and get("over_18"):
            return "nsfw"
        raw_url = get("url")
        if not isinstance(raw_url, str) or not raw_url.strip():
            return "missing_url"
        post_id = get("id")
        if not isinstance(post_id, str) or not post_id:
            return "missing_id"
        created = parse_int(get("created_utc"))
        if created is None:
            return "bad_created_utc"
        if (self.after is not None and created < self.after) or (self.before is not None and created >= self.before):
            return "outside_date_window"
        reason, url = self.url_drop_reason(raw_url)
        if reason:
            return reason
        title, subreddit = get("title"), get("subreddit")
        post = (
            post_id,
            score,
            created,
            subreddit if isinstance(subreddit, str) else "",
            title if isinstance(title, str) else "",
            url,
        )
        return key_of_normalized(url), post

    def filter_batch(self, lines: list, drops: Counter) -> list[tuple[str, Post]]:
        """Kept (url_key, post) pairs of a batch of lines; drops counted into `drops`."""
        kept = []
        for line in lines:
            result = self.check(line)
            if type(result) is str:
                drops[result] += 1
            else:
                kept.append(result)
        return kept


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


def bucket_of(key: str, buckets: int) -> int:
    """Stable bucket of a url_key (crc32: the same on every worker and Python version)."""
    return zlib.crc32(key.encode("utf-8")) % buckets


class ReadDump(beam.DoFn):
    """One dump file -> (bucket, [(url_key, post), ...]) per chunk and bucket; every line
    counted. Batching keeps Beam's per-element cost off the per-post path."""

    def __init__(self, cfg: HarvestConfig):
        self.cfg = cfg

    def setup(self):
        self.rules = PostFilter(self.cfg)
        self.counter = StageCounter(STAGE)

    def process(self, path: str):
        size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
        name = path.rsplit("/", 1)[-1]
        started, records, next_log = time.monotonic(), 0, LOG_EVERY_RECORDS
        with tqdm(total=size, unit="B", unit_scale=True, desc=name, disable=None, leave=False) as bar:
            def progress(position: int) -> None:
                bar.update(position - bar.n)

            for lines in dumps.iter_line_batches(
                path, self.cfg.read_chunk_bytes, self.cfg.max_line_bytes,
                self.cfg.zstd_window_log_max, progress,
            ):
                drops: Counter = Counter()
                with cyclic_gc_paused():
                    kept = self.rules.filter_batch(lines, drops)
                self.counter.seen(len(lines))
                for reason, n in drops.items():
                    self.counter.dropped(reason, n)
                records += len(lines)
                if records >= next_log:
                    next_log += LOG_EVERY_RECORDS
                    log.info("%s: %d records, %.0f records/s", name, records,
                             records / max(time.monotonic() - started, 1e-9))
                by_bucket: dict[int, list] = {}
                for pair in kept:
                    by_bucket.setdefault(bucket_of(pair[0], self.cfg.merge_buckets), []).append(pair)
                yield from by_bucket.items()
        elapsed = max(time.monotonic() - started, 1e-9)
        log.info("%s: done, %d records in %.1f s (%.0f records/s)", name, records, elapsed, records / elapsed)


class MergeBucket(beam.DoFn):
    """(bucket, batches of (url_key, post)) -> (output file index, the bucket's rows as Arrow
    IPC bytes: one opaque blob per bucket, which Beam's coders copy instead of walking every
    row's tuples and lists at each shuffle step).

    Posts merge per url_key; a repeated submission id keeps its highest-scored copy (scores
    are snapshots, a later dump usually saw more votes) and the others count as duplicate_post.
    """

    def __init__(self, cfg: HarvestConfig):
        self.cfg = cfg

    def setup(self):
        self.counter = StageCounter(STAGE)

    def process(self, element):
        bucket, batches = element
        with cyclic_gc_paused():
            merged: dict[str, list] = {}  # url_key -> [posts seen, {post_id: post}]
            for batch in batches:
                for key, post in batch:
                    entry = merged.get(key)
                    if entry is None:
                        merged[key] = [1, {post[0]: post}]
                        continue
                    entry[0] += 1
                    seen = entry[1].get(post[0])
                    if seen is None or (post[1], post) > (seen[1], seen):
                        entry[1][post[0]] = post
            tally: Counter = Counter()  # counted per bucket: a Beam counter per row costs more than the row
            rows = [row for key, (seen, by_id) in merged.items() if (row := self.row(key, seen, by_id, tally))]
            table = rows_to_table(rows)
        kept = tally.pop("kept", 0)
        if kept:
            self.counter.kept(kept)
        for reason, n in tally.items():
            self.counter.dropped(reason, n)
        yield bucket % self.cfg.output_files, table_to_ipc(table)

    def row(self, key: str, seen: int, by_id: dict, tally: Counter) -> tuple | None:
        """The URL table row of one url_key (a tuple in URL_SCHEMA's column order), or None if
        the URL falls below the score rule; its posts are counted into `tally`."""
        if seen == 1 and self.cfg.score_rule == "max_post":  # most URLs: one post, no choice to make
            (post,) = by_id.values()
            tally["kept"] += 1
            return (post[5], key, domain_of_normalized(post[5]), post[1], [post[0]], [post[3]], [post[4]],
                    post[2], 1)
        posts = sorted(by_id.values(), key=lambda p: post_id_order(p[0]))
        if seen > len(posts):
            tally["duplicate_post"] += seen - len(posts)
        if self.cfg.score_rule == "sum_per_url":
            score = sum(p[1] for p in posts)
            if score < self.cfg.min_score:
                tally["low_score"] += len(posts)
                return None
        else:
            score = max(p[1] for p in posts)
        tally["kept"] += len(posts)
        chosen = min(posts, key=lambda p: (-p[1], p[2], post_id_order(p[0])))
        return (
            chosen[5],  # url
            key,  # url_key
            domain_of_normalized(chosen[5]),
            score,
            [p[0] for p in posts],  # post_ids
            sorted({p[3] for p in posts}),  # subreddits
            [p[4] for p in posts],  # titles
            min(p[2] for p in posts),  # first_created_utc
            len(posts),  # num_posts
        )


def rows_to_table(rows: list[tuple]) -> pa.Table:
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
        self.rows_written = Metrics.counter("webtext." + STAGE, URLS_COUNTER)

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


def build_pipeline(pipeline: beam.Pipeline, paths: list[str], out_dir: str, cfg: HarvestConfig):
    """The harvest graph: dump paths -> filtered posts -> rows per url_key -> Parquet files."""
    n_files = cfg.output_files
    rows = (
        pipeline
        | "DumpPaths" >> beam.Create(paths)
        | "OneFilePerWorker" >> beam.Reshuffle()
        | "ReadAndFilter" >> beam.ParDo(ReadDump(cfg))
        | "PostsPerBucket" >> beam.GroupByKey()
        | "MergePerUrl" >> beam.ParDo(MergeBucket(cfg))
    )
    every_file = pipeline | "EveryFileIndex" >> beam.Create([(i, None) for i in range(n_files)])
    return (
        {"marker": every_file, "rows": rows}
        | "RowsPerFile" >> beam.CoGroupByKey()
        | "WriteParquet" >> beam.ParDo(WriteUrlFile(out_dir, n_files))
    )


def _remove_stale_outputs(out_dir: str, keep: set[str]) -> None:
    matches = FileSystems.match([fsio.join(out_dir, "urls-*.parquet")])[0].metadata_list
    stale = [m.path for m in matches if m.path.rsplit("/", 1)[-1] not in keep]
    if stale:
        FileSystems.delete(stale)


def run_harvest(dump_patterns: list[str], out_dir: str, cfg, beam_args: list[str] = ()) -> dict:
    """Run the harvest pipeline; returns the stats written to DIR/harvest_stats.json."""
    from core.beam import pipeline_options

    hcfg: HarvestConfig = cfg.harvest
    paths = dumps.resolve_dumps(dump_patterns)
    log.info("harvesting %d dump file(s) into %s", len(paths), out_dir)
    fsio.makedirs(out_dir)
    stats_path = fsio.join(out_dir, STATS_FILE)
    if FileSystems.exists(stats_path):
        FileSystems.delete([stats_path])  # no stats file = no complete output
    started = time.monotonic()
    with beam.Pipeline(options=pipeline_options(cfg.beam, beam_args)) as pipeline:
        build_pipeline(pipeline, paths, out_dir, hcfg)
    result = pipeline.result
    elapsed = time.monotonic() - started
    _remove_stale_outputs(out_dir, {url_file_name(i, hcfg.output_files) for i in range(hcfg.output_files)})

    harvest = collect_stage_counts(result).get(STAGE) or StageCounts(STAGE)  # empty dumps: no counters
    harvest.check()
    urls = _query_counter(result, URLS_COUNTER)
    extra = {
        "urls": urls,
        "duplicate_posts_merged": harvest.records_out - urls,
        "dump_files": paths,
        "seconds": round(elapsed, 3),
        "records_per_second": round(harvest.records_in / max(elapsed, 1e-9), 1),
    }
    write_stats_json(stats_path, {STAGE: harvest}, extra)
    return {"counts": {STAGE: harvest}, **extra}


def _query_counter(result, name: str) -> int:
    from apache_beam.metrics.metric import MetricsFilter

    query = result.metrics().query(MetricsFilter().with_namespace("webtext." + STAGE).with_name(name))
    return sum(c.committed if c.committed is not None else c.attempted for c in query["counters"])


def _cli(args, cfg) -> int:
    stats = run_harvest(args.dumps, args.out, cfg, args.beam_args)
    print(format_counts_table(stats["counts"]))
    print(
        f"{stats['urls']} URLs written to {args.out} ({stats['duplicate_posts_merged']} posts merged "
        f"into an existing URL), {stats['records_per_second']:.0f} records/s"
    )
    return 0


def add_cli(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "harvest",
        parents=[common],
        help="Reddit submission dumps -> karma-filtered, normalised URL table (Parquet)",
        description=(
            "Read Pushshift submission dumps (.zst with 2 GiB window, .xz, .bz2, .gz, NDJSON; "
            "local or any Beam filesystem), keep outbound links of posts with enough karma "
            "(harvest.min_score, default 3), drop self/NSFW posts, media/social hosts, "
            "Wikipedia and non-page extensions, and write one row per normalised URL to "
            "DIR/urls-*.parquet plus DIR/harvest_stats.json."
        ),
    )
    parser.add_argument("--dumps", nargs="+", required=True, metavar="PATH_OR_GLOB",
                        help="dump files, directories or globs (gs://, s3:// work too)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (overwritten)")
    parser.set_defaults(func=_cli)
