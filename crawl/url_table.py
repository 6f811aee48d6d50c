"""Reading the harvested URL table (`urls-*.parquet`, docs/contracts.md) and sharding it."""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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
    """All `urls-*.parquet` files under `directory`, validated against the contract."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"URL table directory {directory} does not exist (run `webtext harvest` first)")
    files = sorted(glob.glob(os.path.join(directory, "urls-*.parquet")))
    if not files:
        raise ValueError(f"{directory} holds no urls-*.parquet files (is it a `webtext harvest --out` directory?)")
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
    _validate(table, directory)
    return table


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
