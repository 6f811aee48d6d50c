"""Reading the harvested URL table (`urls-*.parquet`, docs/contracts.md) and sharding it, on
memory bounded by a shard's size, never by the table's.

The table may lie on any Beam filesystem (`gs://`, `s3://`; local paths never load Beam). A
crawl shard reads it twice, in record batches of BATCH_ROWS rows, and never holds more of it:
`select_shard` reads only `url` and `url_key`, validates every batch, and keeps, per row the
shard owns, its row number and a 16-byte digest of its URL (24 bytes a row: 10M rows at
`--shard 0/1000` keep 240 KB); `ShardRows.rows` then yields the owned rows as dicts, lazily,
one batch at a time. url and url_key are checked unique among the shard's own rows (digests:
equal url_keys always fall into one shard, so every duplicate key is found by the shard that
would crawl it).

Only a complete harvest output is read: its _harvest_stats.json, written last by
`webtext harvest` (crawl/harvest.py), must say `"complete": true` and count as many URLs
(`urls`) as the folder holds rows (summed from the Parquet footers: no data is read for it). A
folder whose stats are missing (a harvest failed or was killed while publishing) or disagree
(files added or removed since) is refused with the fix: rerun the harvest. Stats written before
the `complete` key existed are accepted when their counts reconcile and match the rows: that
version also wrote the stats file last, after deleting it at the start of each run. Folders
written before the file was renamed hold `harvest_stats.json` (LEGACY_STATS_FILE), which is read
where the new name is absent.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core import fsio
from core.stats import StageCounts

# The leading `_` makes Arrow's dataset discovery skip it: `pandas.read_parquet(DIR)` reads the URL table.
STATS_FILE = "_harvest_stats.json"
LEGACY_STATS_FILE = "harvest_stats.json"  # the name earlier versions wrote; still read
# Columns the crawler needs; the others (domain, titles, num_posts) are not read.
REQUIRED_COLUMNS = ("url", "url_key", "post_ids", "subreddits", "score", "first_created_utc")
BATCH_ROWS = 16_384  # rows decoded at once: the window of the table a crawl holds in memory
DIGEST = np.dtype("S16")  # blake2b-128 of a string: 16 bytes, sortable, no collision in practice


def digests(texts: list[str]) -> np.ndarray:
    """16-byte digests of `texts`, in their order (compact stand-ins for URL sets)."""
    return np.frombuffer(b"".join(hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest() for text in texts),
                         DIGEST).copy() if texts else np.empty(0, DIGEST)


def sorted_contains(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Which of `values` occur in the sorted array `sorted_values` (a boolean mask)."""
    if not len(sorted_values) or not len(values):
        return np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return sorted_values[at] == values


def file_sizes(directory: str, pattern: str) -> dict[str, int]:
    """Path -> size of the files in `directory` whose names match the glob `pattern` (local or
    remote); a one-line ValueError naming the path and the options to check where listing fails."""
    if fsio.is_local(directory):
        local = directory[len("file://"):] if directory.startswith("file://") else directory
        return {path: os.path.getsize(path) for path in glob.glob(os.path.join(local, pattern))}
    spec = fsio.join(directory, pattern)
    try:
        return dict(fsio.match(spec))
    except Exception as exc:  # noqa: BLE001 - Beam wraps every store's error in its own types
        raise ValueError(f"cannot list {spec}: {str(exc).splitlines()[0][:300]} (check the path, and the "
                         "filesystem options after `--`, e.g. --s3_endpoint_url, credentials, --project)") from None


def list_files(directory: str, pattern: str) -> list[str]:
    """The files in `directory` whose names match the glob `pattern`, sorted (local or remote)."""
    return sorted(file_sizes(directory, pattern))


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @property
    def tag(self) -> str:
        """Part of every output file name, so shards never collide."""
        return f"{self.index:05d}-of-{self.count:05d}"

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """`I/N` with 0 <= I < N; anything else is a ValueError saying what is expected."""
        parts = text.split("/")
        if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
            raise ValueError(f"--shard {text!r}: expected I/N with integers, e.g. 0/4")
        index, count = int(parts[0]), int(parts[1])
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"--shard {text!r}: need N >= 1 and 0 <= I < N")
        return cls(index, count)

    def owns(self, url_key: str) -> bool:
        digest = hashlib.blake2b(url_key.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index


@dataclass(frozen=True)
class UrlTable:
    """A validated harvest output: its files, in order, and their row count (from the footers)."""

    directory: str
    files: tuple[str, ...]
    num_rows: int

    def batches(self, columns: list[str]) -> Iterator[pa.RecordBatch]:
        """`columns` of every row, file after file, BATCH_ROWS rows at a time."""
        for path in self.files:
            try:
                with fsio.open_read(path) as fh:
                    yield from pq.ParquetFile(fh).iter_batches(batch_size=BATCH_ROWS, columns=columns)
            except (OSError, pa.ArrowException) as exc:
                raise ValueError(f"{path} is not a readable Parquet file: {exc}") from None


def open_url_table(directory: str) -> UrlTable:
    """The `urls-*.parquet` files under `directory`, checked against the contract from their
    footers alone; only if the harvest that wrote them completed."""
    if fsio.is_local(directory) and not os.path.isdir(directory):
        raise FileNotFoundError(f"URL table directory {directory} does not exist (run `webtext harvest` first)")
    files = list_files(directory, "urls-*.parquet")
    if not files:
        raise ValueError(f"{directory} holds no urls-*.parquet files (is it a `webtext harvest --out` directory?)")
    stats_name = _stats_name(directory)
    promised_urls = _completed_harvest_urls(directory, stats_name)
    num_rows = 0
    for path in files:
        try:
            with fsio.open_read(path) as fh:
                metadata = pq.ParquetFile(fh).metadata
                schema = metadata.schema.to_arrow_schema()
        except (OSError, pa.ArrowException) as exc:
            raise ValueError(f"{path} is not a readable Parquet file: {exc}") from None
        missing = [column for column in REQUIRED_COLUMNS if column not in schema.names]
        if missing:
            raise ValueError(f"{path} lacks column(s) {', '.join(missing)} of the URL table contract")
        for column in ("url", "url_key"):
            if not pa.types.is_string(schema.field(column).type) and not pa.types.is_large_string(schema.field(column).type):
                raise ValueError(f"{path}: column {column} is {schema.field(column).type}, not a string")
        num_rows += metadata.num_rows
    if num_rows != promised_urls:
        raise ValueError(
            f"{directory} holds {num_rows} URL rows but its {stats_name} counts "
            f"{promised_urls}: files were added or removed after the harvest; {_rerun(directory)}"
        )
    if num_rows == 0:
        raise ValueError(f"URL table under {directory} has no rows: nothing to crawl")
    return UrlTable(directory, tuple(files), num_rows)


def url_table_files(directory: str) -> list[str]:
    """The `urls-*.parquet` files of a complete harvest output (ValueError otherwise), checked
    from their footers alone (`open_url_table`), for readers that stream them (the build)."""
    return list(open_url_table(directory).files)


def read_url_table(directory: str) -> pa.Table:
    """The whole table (REQUIRED_COLUMNS) in memory, validated: for small tables and tests; the
    crawl streams its shard instead (`select_shard`)."""
    table = open_url_table(directory)
    select_shard(table, Shard(0, 1))  # validates every row
    return pa.Table.from_batches(list(table.batches(list(REQUIRED_COLUMNS))))


@dataclass(frozen=True)
class ShardRows:
    """The rows one shard owns, as row numbers and URL digests (in table order)."""

    table: UrlTable
    positions: np.ndarray  # int64 row numbers in the table, ascending
    url_digests: np.ndarray  # DIGEST of each one's url

    def __len__(self) -> int:
        return len(self.positions)

    def wanted(self) -> np.ndarray:
        """The shard's URL digests, sorted (for `sorted_contains`)."""
        return np.sort(self.url_digests)

    def rows(self, selected: np.ndarray) -> Iterator[dict]:
        """The owned rows where the boolean mask `selected` (one entry per owned row) is set, as
        dicts of REQUIRED_COLUMNS in table order; reads the table one batch at a time."""
        positions = self.positions[selected]
        start = 0
        for batch in self.table.batches(list(REQUIRED_COLUMNS)):
            end = start + batch.num_rows
            first, last = np.searchsorted(positions, [start, end])
            if last > first:
                yield from batch.take(pa.array(positions[first:last] - start)).to_pylist()
            start = end
            if last == len(positions):
                return


def select_shard(table: UrlTable, shard: Shard) -> ShardRows:
    """The rows of `table` that `shard` owns, validating every batch on the way: no null url or
    url_key, and both unique among the shard's rows. Holds one batch plus 24 bytes per owned row."""
    positions, url_digests, key_digests = [], [], []
    nulls = {"url": 0, "url_key": 0}
    start = 0
    for batch in table.batches(["url", "url_key"]):
        for column in nulls:
            nulls[column] += batch.column(column).null_count
        urls, keys = batch.column("url").to_pylist(), batch.column("url_key").to_pylist()
        if shard.count == 1:
            owned = [i for i, key in enumerate(keys) if key is not None]
        else:
            owned = [i for i, key in enumerate(keys) if key is not None and shard.owns(key)]
        positions.append(np.asarray(owned, np.int64) + start)
        url_digests.append(digests([urls[i] or "" for i in owned]))
        key_digests.append(digests([keys[i] for i in owned]))
        start += batch.num_rows
    for column, count in nulls.items():
        if count:
            raise ValueError(f"URL table under {table.directory}: {count} rows have a null {column}")
    rows = ShardRows(table, np.concatenate(positions), np.concatenate(url_digests))
    for column, column_digests in (("url_key", np.concatenate(key_digests)), ("url", rows.url_digests)):
        if len(np.unique(column_digests)) != len(column_digests):
            raise ValueError(f"URL table under {table.directory}: {column} is not unique")
    return rows


def _rerun(directory: str) -> str:
    return f"rerun `webtext harvest --out {directory}`"


def _stats_name(directory: str) -> str:
    """STATS_FILE, or LEGACY_STATS_FILE where only that exists; ValueError where neither does."""
    for name in (STATS_FILE, LEGACY_STATS_FILE):
        if list_files(directory, name):
            return name
    raise ValueError(
        f"{fsio.join(directory, STATS_FILE)} is missing, so the URL files in {directory} are not known to be "
        f"complete (a harvest failed or was interrupted); {_rerun(directory)}")


def _completed_harvest_urls(directory: str, name: str) -> int:
    """The URL count of the harvest that wrote `directory`; ValueError unless its stats file
    `name` says it completed."""
    path = fsio.join(directory, name)
    try:
        with fsio.open_read(path) as fh:
            stats = json.loads(fh.read().decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path} is unreadable ({exc}); {_rerun(directory)}") from None
    try:
        counts = StageCounts.from_json("harvest", stats["stages"]["harvest"])
        complete = stats.get("complete", True) is True and counts.reconciles()  # no key: a harvest before it existed
        urls = stats["urls"]
    except (KeyError, TypeError, ValueError, AttributeError):  # no stats of a harvest
        complete, urls = False, None
    if not complete or type(urls) is not int:
        raise ValueError(f"{path} does not say the harvest of {directory} completed; {_rerun(directory)}")
    return urls
