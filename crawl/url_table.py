"""Reading the harvested URL table (`urls-*.parquet`, docs/contracts.md) and sharding it.

Only a complete harvest output is read: its _harvest_stats.json, written last by
`webtext harvest` (crawl/harvest.py), must say `"complete": true` and count as many URLs
(`urls`) as the folder holds rows. A folder whose stats are missing (a harvest failed or was
killed while publishing) or disagree (files added or removed since) is refused with the fix:
rerun the harvest. Stats written before the `complete` key existed are accepted when their
counts reconcile and match the rows: that version also wrote the stats file last, after
deleting it at the start of each run. Folders written before the file was renamed hold
`harvest_stats.json` (LEGACY_STATS_FILE), which is read where the new name is absent.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.stats import StageCounts, stats_file

# The leading `_` makes Arrow's dataset discovery skip it: `pandas.read_parquet(DIR)` reads the URL table.
STATS_FILE = "_harvest_stats.json"
LEGACY_STATS_FILE = "harvest_stats.json"  # the name earlier versions wrote; still read
# Columns the crawler needs; the others (domain, titles, num_posts) are not read.
REQUIRED_COLUMNS = ("url", "url_key", "post_ids", "subreddits", "score", "first_created_utc")


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


def read_url_table(directory: str) -> pa.Table:
    """All `urls-*.parquet` files under `directory`, validated against the contract; only
    if the harvest that wrote them completed."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"URL table directory {directory} does not exist (run `webtext harvest` first)")
    files = sorted(glob.glob(os.path.join(directory, "urls-*.parquet")))
    if not files:
        raise ValueError(f"{directory} holds no urls-*.parquet files (is it a `webtext harvest --out` directory?)")
    stats_path = stats_file(directory, STATS_FILE, LEGACY_STATS_FILE)
    promised_urls = _completed_harvest_urls(directory, stats_path)
    tables = []
    for path in files:
        try:
            schema = pq.read_schema(path)
        except (OSError, pa.ArrowException) as exc:
            raise ValueError(f"{path} is not a readable Parquet file: {exc}") from None
        missing = [column for column in REQUIRED_COLUMNS if column not in schema.names]
        if missing:
            raise ValueError(f"{path} lacks column(s) {', '.join(missing)} of the URL table contract")
        try:
            tables.append(pq.read_table(path, columns=list(REQUIRED_COLUMNS)))
        except (OSError, pa.ArrowException) as exc:
            raise ValueError(f"{path} is not a readable Parquet file: {exc}") from None
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException as exc:
        raise ValueError(f"URL table files under {directory} have incompatible schemas: {exc}") from None
    if table.num_rows != promised_urls:
        raise ValueError(
            f"{directory} holds {table.num_rows} URL rows but its {os.path.basename(stats_path)} counts "
            f"{promised_urls}: files were added or removed after the harvest; {_rerun(directory)}"
        )
    _validate(table, directory)
    return table


def _rerun(directory: str) -> str:
    return f"rerun `webtext harvest --out {directory}`"


def _completed_harvest_urls(directory: str, path: str) -> int:
    """The URL count of the harvest that wrote `directory`; ValueError unless its stats `path` say it completed."""
    try:
        with open(path, encoding="utf-8") as fh:
            stats = json.load(fh)
    except FileNotFoundError:
        raise ValueError(
            f"{path} is missing, so the URL files in {directory} are not known to be complete "
            f"(a harvest failed or was interrupted); {_rerun(directory)}"
        ) from None
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


def _validate(table: pa.Table, directory: str) -> None:
    if table.num_rows == 0:
        raise ValueError(f"URL table under {directory} has no rows: nothing to crawl")
    for column in ("url", "url_key"):
        if table.column(column).null_count:
            raise ValueError(f"URL table under {directory}: {table.column(column).null_count} rows have a null {column}")
    if pc.count_distinct(table.column("url_key")).as_py() != table.num_rows:
        raise ValueError(f"URL table under {directory}: url_key is not unique")
    if pc.count_distinct(table.column("url")).as_py() != table.num_rows:
        raise ValueError(f"URL table under {directory}: url is not unique")


def shard_rows(table: pa.Table, shard: Shard) -> list[dict]:
    """The rows of this shard as dicts, in table order."""
    rows = table.to_pylist()
    if shard.count == 1:
        return rows
    return [row for row in rows if shard.owns(row["url_key"])]
