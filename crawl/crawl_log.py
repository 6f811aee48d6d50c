"""The crawl log: one row per input URL (docs/contracts.md), written as checkpoint parts.

Each run appends new, immutable Parquet parts (`<prefix>-NNNNN.parquet`, written atomically)
every `log_flush_rows` rows or `log_flush_seconds`. A part is written only after the WARC
records it refers to are fsynced, so after a kill -9 the logged rows are exactly the URLs
that need no second fetch, and everything in the WARC files beyond them can be cut off.

Resume state (`LoggedState`) is read back part by part, batch by batch, and keeps only sorted
16-byte URL digests and a count per outcome: bounded by the URLs logged, not by the rows or
the URL table. Parts may lie on any Beam filesystem (core.fsio.open_read).
"""

from __future__ import annotations

import glob
import io
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core import fsio
from crawl.url_table import DIGEST, digests, sorted_contains

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
        fsio.atomic_write_bytes(os.path.join(self.directory, name), buffer.getvalue())
        self.parts.append(name)
        self.rows_written += len(self._rows)
        self._rows = []


# `crawl-<shard tag>-<run id>-<part number>.parquet`; run ids start with the UTC start time.
PART_NAME = re.compile(r"crawl-(?P<tag>\d+-of-\d+)-(?P<run>.+)\.parquet")


@dataclass
class LoggedState:
    """What earlier runs logged, under any `--shard` setting (a URL logged once is done).

    The logged URLs are kept as sorted 16-byte digests (crawl/url_table.py `digests`), never as
    rows or strings: 17 bytes per URL counted (digest + outcome), plus, while `read` runs, 17
    bytes per row it keeps, a batch of the part being read and one entry per WARC file."""

    logged: np.ndarray = field(default_factory=lambda: np.empty(0, DIGEST))  # sorted, unique
    outcomes: Counter = field(default_factory=Counter)  # the outcome of each URL's first row
    last_offsets: dict[str, int] = field(default_factory=dict)  # WARC file -> last logged response
    duplicates: int = 0  # rows for a URL an earlier row already logged

    def __len__(self) -> int:
        return len(self.logged)

    def contains(self, url_digests: np.ndarray) -> np.ndarray:
        """Which of `url_digests` are logged (a boolean mask)."""
        return sorted_contains(self.logged, url_digests)

    def read(self, parts: list[str], wanted: np.ndarray | None = None) -> "LoggedState":
        """Add `parts` (oldest first, local or remote) to the state, counting only URLs whose
        digest is in the sorted array `wanted` (all if None); the last offsets cover every WARC
        file, whatever its URLs."""
        kept_digests, kept_outcomes, outcome_names = [], [], {}
        for path in parts:
            for batch in _part_batches(path):
                self._note_offsets(batch)
                url_digests = digests(batch.column("url").to_pylist())
                outcomes = np.asarray([outcome_names.setdefault(o, len(outcome_names))
                                       for o in batch.column("outcome").to_pylist()], np.int32)
                if wanted is not None:
                    mine = sorted_contains(wanted, url_digests)
                    url_digests, outcomes = url_digests[mine], outcomes[mine]
                kept_digests.append(url_digests)
                kept_outcomes.append(outcomes)
        if not kept_digests:
            return self
        url_digests, outcomes = np.concatenate(kept_digests), np.concatenate(kept_outcomes)
        seen_before = self.contains(url_digests)
        url_digests, outcomes = url_digests[~seen_before], outcomes[~seen_before]
        new, first = np.unique(url_digests, return_index=True)  # index of each URL's first row
        self.duplicates += int(seen_before.sum()) + len(url_digests) - len(new)
        names = list(outcome_names)
        for code, count in zip(*np.unique(outcomes[first], return_counts=True)):
            self.outcomes[names[code]] += int(count)
        self.logged = np.sort(np.concatenate([self.logged, new]))
        return self

    def _note_offsets(self, batch: pa.RecordBatch) -> None:
        with_records = pa.Table.from_batches([batch]).filter(pc.is_valid(batch.column("warc_file")))
        if with_records.num_rows:
            for row in with_records.group_by("warc_file").aggregate([("warc_offset", "max")]).to_pylist():
                warc_file, offset = row["warc_file"], row["warc_offset_max"]
                self.last_offsets[warc_file] = max(offset, self.last_offsets.get(warc_file, -1))


def _part_batches(path: str):
    """The columns LoggedState needs of one log part, batch by batch."""
    try:
        with fsio.open_read(path) as fh:
            yield from pq.ParquetFile(fh).iter_batches(columns=["url", "outcome", "warc_file", "warc_offset"])
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"crawl log part {path} is unreadable ({exc}); move it away to re-crawl its URLs") from None


def log_parts(directory: str, name_prefix: str = "crawl-") -> list[str]:
    """The log parts whose names start with `name_prefix` (a shard's `crawl-<tag>-`, a run's
    `<prefix>-`; default all), oldest run first."""
    return sorted(glob.glob(os.path.join(directory, f"{name_prefix}*.parquet")), key=_run_order)


def _run_order(path: str) -> tuple[str, str]:
    name = os.path.basename(path)
    match = PART_NAME.fullmatch(name)
    return (match["run"] if match else name, name)


def read_logged_state(directory: str, wanted: np.ndarray | None = None) -> LoggedState:
    """What every run logged in `directory` (all shard settings) for the URLs whose digests are
    in the sorted array `wanted` (all if None)."""
    return LoggedState().read(log_parts(directory), wanted)
