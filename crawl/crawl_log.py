"""The crawl log: one row per input URL (docs/contracts.md), written as checkpoint parts.

Each run appends new, immutable Parquet parts (`<prefix>-NNNNN.parquet`, written atomically)
every `log_flush_rows` rows or `log_flush_seconds`. A part is written only after the WARC
records it refers to are fsynced, so after a kill -9 the logged rows are exactly the URLs
that need no second fetch, and everything in the WARC files beyond them can be cut off.
"""

from __future__ import annotations

import glob
import io
import os
import time
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from core.fsio import atomic_write_bytes

SCHEMA = pa.schema([
    ("url", pa.string()),
    ("final_url", pa.string()),
    ("outcome", pa.string()),
    ("http_status", pa.int32()),
    ("bytes", pa.int64()),
    ("fetch_seconds", pa.float64()),
    ("crawl_time", pa.timestamp("us", tz="UTC")),
    ("redirects", pa.list_(pa.string())),
    ("warc_file", pa.string()),
    ("warc_offset", pa.int64()),
    ("error", pa.string()),
])


class CrawlLogWriter:
    """Buffers rows and writes them as a new part on every checkpoint."""

    def __init__(self, directory: str, prefix: str):
        self.directory = directory
        self.prefix = prefix
        self.parts: list[str] = []
        self.rows_written = 0
        self._rows: list[dict] = []
        self.last_flush = time.monotonic()
        os.makedirs(directory, exist_ok=True)

    def __len__(self) -> int:
        return len(self._rows)

    def append(self, row: dict) -> None:
        self._rows.append(row)

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if not self._rows:
            return
        name = f"{self.prefix}-{len(self.parts):05d}.parquet"
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(self._rows, schema=SCHEMA), buffer, compression="zstd")
        atomic_write_bytes(os.path.join(self.directory, name), buffer.getvalue())
        self.parts.append(name)
        self.rows_written += len(self._rows)
        self._rows = []


@dataclass
class LoggedState:
    """What earlier runs of one shard left behind."""

    urls: set[str] = field(default_factory=set)
    outcomes: Counter = field(default_factory=Counter)
    last_offsets: dict[str, int] = field(default_factory=dict)  # WARC file -> last logged response
    duplicates: int = 0


def log_parts(directory: str, shard_tag: str) -> list[str]:
    return sorted(glob.glob(os.path.join(directory, f"crawl-{shard_tag}-*.parquet")))


def read_logged_state(directory: str, shard_tag: str) -> LoggedState:
    """URLs already finished, outcome counts and per-WARC-file last offsets of one shard."""
    state = LoggedState()
    for path in log_parts(directory, shard_tag):
        try:
            table = pq.read_table(path, columns=["url", "outcome", "warc_file", "warc_offset"])
        except (OSError, pa.ArrowException) as exc:
            raise ValueError(f"crawl log part {path} is unreadable ({exc}); move it away to re-crawl its URLs") from None
        for url, outcome, warc_file, offset in zip(*(table.column(column).to_pylist() for column in table.column_names)):
            if url in state.urls:
                state.duplicates += 1
                continue
            state.urls.add(url)
            state.outcomes[outcome] += 1
            if warc_file is not None:
                state.last_offsets[warc_file] = max(offset, state.last_offsets.get(warc_file, -1))
    return state


def read_crawl_log(directory: str) -> pa.Table:
    """Every part of the crawl log under `directory` (all shards) as one table."""
    parts = sorted(glob.glob(os.path.join(directory, "*.parquet")))
    if not parts:
        return SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(part, schema=SCHEMA) for part in parts])
