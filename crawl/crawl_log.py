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
import re
import time
from collections import Counter
from collections.abc import Container
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
    ("source", pa.string()),  # live | archive (null in logs written before archive recovery)
    ("capture_time", pa.timestamp("us", tz="UTC")),  # an archive capture's time; null for live fetches
    ("first_created_utc", pa.int64()),  # the URL's first Reddit post (link-rot by post year)
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


# `crawl-<shard tag>-<run id>-<part number>.parquet`; run ids start with the UTC start time.
PART_NAME = re.compile(r"crawl-(?P<tag>\d+-of-\d+)-(?P<run>.+)\.parquet")


@dataclass
class LoggedState:
    """What earlier runs logged, under any `--shard` setting (a URL logged once is done)."""

    urls: set[str] = field(default_factory=set)
    outcomes: Counter = field(default_factory=Counter)  # the outcome of each URL's first row
    last_offsets: dict[str, int] = field(default_factory=dict)  # WARC file -> last logged response
    duplicates: int = 0  # rows for a URL an earlier row already logged

    def read(self, parts: list[str], wanted: Container[str] | None = None) -> "LoggedState":
        """Add `parts` (oldest first) to the state, counting only URLs in `wanted` (all if None).

        Only the URLs are kept (a set, at most `wanted`'s size), never the rows; the last
        offsets cover every WARC file, whatever its URLs."""
        for path in parts:
            try:
                table = pq.read_table(path, columns=["url", "outcome", "warc_file", "warc_offset"])
            except (OSError, pa.ArrowException) as exc:
                raise ValueError(f"crawl log part {path} is unreadable ({exc}); move it away to re-crawl its URLs") from None
            for url, outcome, warc_file, offset in zip(*(table.column(column).to_pylist() for column in table.column_names)):
                if warc_file is not None:
                    self.last_offsets[warc_file] = max(offset, self.last_offsets.get(warc_file, -1))
                if wanted is not None and url not in wanted:
                    continue
                if url in self.urls:
                    self.duplicates += 1
                    continue
                self.urls.add(url)
                self.outcomes[outcome] += 1
        return self


def log_parts(directory: str, name_prefix: str = "crawl-") -> list[str]:
    """The log parts whose names start with `name_prefix` (a shard's `crawl-<tag>-`, a run's
    `<prefix>-`; default all), oldest run first."""
    return sorted(glob.glob(os.path.join(directory, f"{name_prefix}*.parquet")), key=_run_order)


def _run_order(path: str) -> tuple[str, str]:
    name = os.path.basename(path)
    match = PART_NAME.fullmatch(name)
    return (match["run"] if match else name, name)


def read_logged_state(directory: str, wanted: Container[str] | None = None) -> LoggedState:
    """What every run logged in `directory` (all shard settings) for the URLs in `wanted`."""
    return LoggedState().read(log_parts(directory), wanted)
