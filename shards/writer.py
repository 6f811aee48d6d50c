"""The shard schema and the DoFn that writes one shard: sorted rows, zstd Parquet, atomically.

A shard is written to the build's staging folder as `<split>/shard-NNNNN-of-MMMMM.parquet`
plus a `.json` sidecar with its row count, size and sha256; the sidecar is written after the
Parquet file, so a shard without a sidecar is an unfinished write. Rows are sorted by id, so
the same documents always give byte-identical shards.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq

from core import fsio
from core.beam import StageCounter

log = logging.getLogger(__name__)


def _field(name: str, type_: pa.DataType, description: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"description": description})


SCHEMA = pa.schema([
    _field("id", pa.string(), "first 16 hex digits of sha256(url_key of url); unique", False),
    _field("url", pa.string(), "the harvested URL that Reddit posts linked to"),
    _field("final_url", pa.string(), "the URL the page was fetched from, after redirects"),
    _field("domain", pa.string(), "registered host of final_url (lower-case, no www.)"),
    _field("title", pa.string(), "page title found by the extractor (may be empty)"),
    _field("text", pa.string(), "extracted main text", False),
    _field("n_chars", pa.int64(), "characters in text"),
    _field("n_words", pa.int64(), "whitespace-separated words in text"),
    _field("lang", pa.string(), "ISO 639-1 language of text"),
    _field("lang_confidence", pa.float64(), "language identifier confidence in [0, 1]"),
    _field("score", pa.int64(), "Reddit karma that admitted the URL (see harvest)"),
    _field("post_ids", pa.list_(pa.field("element", pa.string())), "Reddit submission ids linking the URL, sorted"),
    _field("subreddits", pa.list_(pa.field("element", pa.string())), "subreddits of those posts, sorted"),
    _field("created_utc", pa.int64(), "earliest Reddit post time, epoch seconds"),
    _field("crawl_time", pa.timestamp("us", tz="UTC"), "fetch time (WARC-Date)"),
    _field("warc_file", pa.string(), "WARC file holding the response, relative to the WARC folder"),
    _field("warc_offset", pa.int64(), "byte offset of the response record in warc_file"),
    _field("extractor", pa.string(), "extractor that produced text"),
    _field("dup_cluster", pa.string(), "id of the near-duplicate cluster this document represents"),
])


def schema_json(schema: pa.Schema = SCHEMA) -> list[dict]:
    """The schema as recorded in the manifest and compared by `verify`."""
    return [
        {
            "name": f.name,
            "type": str(f.type),
            "nullable": f.nullable,
            "description": (f.metadata or {}).get(b"description", b"").decode(),
        }
        for f in schema
    ]


def to_row(doc: dict) -> dict:
    """A pipeline document as a shard row (only the schema's columns, typed)."""
    row = {name: doc.get(name) for name in SCHEMA.names}
    row["crawl_time"] = datetime.fromisoformat(doc["crawl_time"])
    return row


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}/shard-{index:05d}-of-{count:05d}.parquet"


def parquet_bytes(rows: list[dict], row_group_docs: int, compression_level: int) -> bytes:
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(
        table, sink, compression="zstd", compression_level=compression_level,
        row_group_size=row_group_docs, write_statistics=["id", "score", "n_chars", "created_utc"],
    )
    return sink.getvalue().to_pybytes()


def _survivor_order(doc: dict) -> tuple:
    """Among records with the same id (a URL fetched twice), keep the earliest fetch."""
    return (doc["crawl_time"], doc["warc_file"], doc["warc_offset"])


class WriteShard(beam.DoFn):
    """((split, index, count), documents) -> nothing; writes the Parquet shard + sidecar.

    Stage `write`: documents in, rows written out; a second record of an id already in the
    shard (same URL crawled twice) is dropped as `duplicate_id`."""

    def __init__(self, staging: str, row_group_docs: int, compression_level: int):
        self.staging = staging
        self.row_group_docs = row_group_docs
        self.compression_level = compression_level
        self.counter = StageCounter("write")

    def process(self, element):
        (split, index, count), docs = element
        by_id: dict[str, dict] = {}
        for doc in docs:
            self.counter.seen()
            kept = by_id.get(doc["id"])
            if kept is None or _survivor_order(doc) < _survivor_order(kept):
                by_id[doc["id"]] = doc
                if kept is not None:
                    self.counter.dropped("duplicate_id")
            else:
                self.counter.dropped("duplicate_id")
        rows = [to_row(by_id[i]) for i in sorted(by_id)]
        data = parquet_bytes(rows, self.row_group_docs, self.compression_level)
        name = shard_name(split, index, count)
        info = {
            "path": name,
            "split": split,
            "rows": len(rows),
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        fsio.atomic_write_bytes(fsio.join(self.staging, name), data)
        fsio.atomic_write_text(fsio.join(self.staging, name + ".json"), json.dumps(info, sort_keys=True))
        self.counter.kept(len(rows))
        log.info("wrote %s: %d rows, %d bytes", name, len(rows), len(data))


def empty_shard_bytes(row_group_docs: int, compression_level: int) -> bytes:
    """A zero-row shard, so that an empty split is still a readable dataset folder."""
    return parquet_bytes([], row_group_docs, compression_level)
