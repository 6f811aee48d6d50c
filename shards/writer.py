"""The dataset writer: shard schema and bytes, staging, and the one publish sequence.

A dataset folder DIR holds `DIR/<split>/shard-NNNNN-of-MMMMM.parquet`, a stats file, the
dataset card `DIR/README.md` and `DIR/manifest.json`, written last. A build also writes the
audit table `DIR/dropped/shard-NNNNN-of-MMMMM.parquet`: one row per document any stage
dropped, with stage and reason; it is staged and published like the splits. Every program that writes a
dataset (`webtext build`, `webtext overlap decontaminate`) goes through the same two steps:

1. Stage: each shard is written to `DIR/.staging/<split>/...`, then a `.json` sidecar with its
   path, split, row count, size and sha256 (plus what the writer wants to find again when it
   resumes). A shard without a sidecar is an unfinished write.
2. Publish: the old manifest goes first (from then on the folder reads as unfinished), shards
   of an earlier dataset that the new one does not list are removed, the staged shards move
   into place, then the stats file, the card and, last, the manifest are written and the
   staging folder is removed.

A killed writer therefore leaves no manifest, and its rerun replaces whatever it left. On an
object store (s3://, gs://) DIR is a prefix and its staging folder every object under
DIR/.staging/: a run empties it first and removes it after publishing (`core.fsio.remove_tree`),
so no sidecar of a killed run, or of another shard count, reaches a rerun.
Shard rows are sorted by id (the build does that), so the same documents always give
byte-identical shards.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import pyarrow as pa
import pyarrow.parquet as pq

from core import fsio
from core.stats import StageCounts, write_stats_json
from shards import card
from shards.manifest import remove_manifest, write_manifest
from shards.split import SPLITS

STAGING = ".staging"


def _field(name: str, type_: pa.DataType, description: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"description": description})


SCHEMA = pa.schema([
    _field("id", pa.string(), "first 16 hex digits of sha256(url_key of url); unique", False),
    _field("url", pa.string(), "the harvested URL that Reddit posts linked to (without Reddit provenance: the "
           "fetched URL)"),
    _field("final_url", pa.string(), "the URL the page was fetched from, after redirects"),
    _field("domain", pa.string(), "registered host of final_url (lower-case, no www.)"),
    _field("title", pa.string(), "page title found by the extractor (may be empty)"),
    _field("text", pa.string(), "extracted main text", False),
    _field("n_chars", pa.int64(), "characters in text"),
    _field("n_words", pa.int64(), "whitespace-separated words in text"),
    _field("lang", pa.string(), "ISO 639-1 language of text"),
    _field("lang_confidence", pa.float64(), "language identifier confidence in [0, 1]"),
    # The four Reddit provenance columns are null for a page without it: a WARC from another crawler
    # built without `--urls`, or a page `build.unknown_urls: keep` kept.
    _field("score", pa.int64(), "Reddit karma that admitted the URL (see harvest); null without Reddit provenance"),
    _field("post_ids", pa.list_(pa.field("element", pa.string())),
           "Reddit submission ids linking the URL, sorted; null without Reddit provenance"),
    _field("subreddits", pa.list_(pa.field("element", pa.string())),
           "subreddits of those posts, sorted; null without Reddit provenance"),
    _field("created_utc", pa.int64(), "earliest Reddit post time, epoch seconds; null without Reddit provenance"),
    _field("crawl_time", pa.timestamp("us", tz="UTC"), "fetch time (WARC-Date) of the capture kept for this id"),
    _field("warc_file", pa.string(), "WARC file holding the response, relative to the WARC folder"),
    _field("warc_offset", pa.int64(), "byte offset of the response record in warc_file"),
    _field("extractor", pa.string(), "extractor that produced text"),
    _field("dup_cluster", pa.string(), "id of the duplicate cluster this document survives: its own id, which "
           "dropped/ names as duplicate_of for every document removed as its duplicate"),
    _field("dup_count", pa.int64(), "documents removed as duplicates of this one (other captures of its id, exact "
           "+ near): its rows in dropped/"),
])
# Columns with Parquet min/max statistics: what readers filter on.
STATISTICS_COLUMNS = ["id", "score", "n_chars", "created_utc"]

DROPPED_DIR = "dropped"  # DIR/dropped/: the audit table
DROPPED_SCHEMA = pa.schema([
    _field("id", pa.string(), "document id as in the splits; null when the record had no usable URL"),
    _field("url", pa.string(), "the harvested URL (null when the WARC record names none)"),
    _field("final_url", pa.string(), "the URL the page was fetched from, after redirects"),
    _field("stage", pa.string(), "build stage that dropped it (the manifest's stages)", False),
    _field("reason", pa.string(), "why: the stage's drop reason, as counted in the manifest", False),
    _field("duplicate_of", pa.string(), "for duplicates: id of the kept document it duplicates (its dup_cluster)"),
    _field("warc_file", pa.string(), "WARC file of the response record, relative to the WARC folder"),
    _field("warc_offset", pa.int64(), "byte offset of the response record (null: the file broke off before one)"),
    _field("text", pa.string(), "extracted text when build.audit_text is on and the stage had text, else null"),
])
# Audit rows are sorted by url, so its statistics let readers skip row groups in a lookup by URL.
DROPPED_STATISTICS_COLUMNS = ["url", "id"]


def schema_json(schema: pa.Schema = SCHEMA) -> list[dict]:
    """The schema as recorded in the manifest and compared by `verify`."""
    return [
        {
            "name": field.name,
            "type": str(field.type),
            "nullable": field.nullable,
            "description": (field.metadata or {}).get(b"description", b"").decode(),
        }
        for field in schema
    ]


def to_row(doc: dict) -> dict:
    """A pipeline document as a shard row (only the schema's columns, typed)."""
    row = {name: doc.get(name) for name in SCHEMA.names}
    row["crawl_time"] = datetime.fromisoformat(doc["crawl_time"])
    return row


def to_dropped_row(record: dict, with_text: bool) -> dict:
    """A dropped record (labelled by `core.beam.StageCounter.drop`) as an audit row."""
    row = {name: record.get(name) for name in DROPPED_SCHEMA.names}
    if not with_text:
        row["text"] = None
    return row


def dropped_row_key(row: dict) -> tuple:
    """Order of audit rows in their shard: by URL, then where the record was (unique per drop)."""
    offset = row["warc_offset"]
    return (row["url"] or "", row["warc_file"] or "", -1 if offset is None else offset, row["stage"], row["reason"],
            row["id"] or "")


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}/shard-{index:05d}-of-{count:05d}.parquet"


def shard_bytes(table: pa.Table, row_group_docs: int, compression_level: int,
                statistics_columns: list[str] = STATISTICS_COLUMNS) -> bytes:
    """A shard file: zstd Parquet in row groups of `row_group_docs` rows. An empty table (a split
    without documents, a shard decontamination emptied) gets no row group rather than one of 0
    rows, on which readers that size their batches by the first row group (Hugging Face
    `datasets`) fail."""
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, table.schema, compression="zstd", compression_level=compression_level,
                          write_statistics=statistics_columns) as writer:
        if table.num_rows:
            writer.write_table(table, row_group_size=row_group_docs)
    return sink.getvalue().to_pybytes()


def staging_dir(out: str) -> str:
    return fsio.join(out, STAGING)


def fresh_staging(out: str) -> str:
    """The staging folder of `out`, emptied of what an earlier, unfinished run left there (on an
    object store: every object under the prefix, so no sidecar of another shard count survives)."""
    staging = staging_dir(out)
    fsio.remove_tree(staging)
    fsio.makedirs(staging)
    return staging


def stage_shard(staging: str, path: str, split: str, rows: int, data: bytes, **extra) -> dict:
    """Write one shard's bytes, then its sidecar; returns the sidecar (`extra` is stored in it)."""
    info = {"path": path, "split": split, "rows": rows, "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), **extra}
    fsio.atomic_write_bytes(fsio.join(staging, path), data)
    fsio.atomic_write_text(fsio.join(staging, path + ".json"), json.dumps(info, sort_keys=True))
    return info


def _read_json(path: str) -> dict:
    return json.loads(fsio.read_bytes(path).decode("utf-8"))


def staged_shard(staging: str, path: str) -> dict | None:
    """The sidecar of a finished staged shard `path`, or None."""
    sidecar = fsio.join(staging, path + ".json")
    if not fsio.exists(sidecar) or not fsio.exists(fsio.join(staging, path)):
        return None
    return _read_json(sidecar)


def staged_shards(staging: str) -> list[dict]:
    """The sidecars of every finished staged shard, by path."""
    sidecars = fsio.match(fsio.join(staging, "*", "*.parquet.json"))
    return sorted((_read_json(path) for path, _size in sidecars), key=lambda info: info["path"])


def stage_empty_splits(staging: str, shards: list[dict], row_group_docs: int, compression_level: int) -> list[dict]:
    """`shards` plus one zero-row shard for each split without any, so every split is readable."""
    shards = list(shards)
    for split in SPLITS:
        if not any(info["split"] == split for info in shards):
            data = shard_bytes(SCHEMA.empty_table(), row_group_docs, compression_level)
            shards.append(stage_shard(staging, shard_name(split, 0, 1), split, 0, data))
    return sorted(shards, key=lambda info: info["path"])


def stage_dropped_shard(staging: str, rows: list[dict], index: int, count: int, row_group_docs: int,
                        compression_level: int) -> dict:
    """Stage one audit shard of `rows`; its sidecar counts them by stage and reason (`drops`)."""
    rows = sorted(rows, key=dropped_row_key)
    drops: dict[str, dict[str, int]] = {}
    for row in rows:
        reasons = drops.setdefault(row["stage"], {})
        reasons[row["reason"]] = reasons.get(row["reason"], 0) + 1
    data = shard_bytes(pa.Table.from_pylist(rows, schema=DROPPED_SCHEMA), row_group_docs, compression_level,
                       DROPPED_STATISTICS_COLUMNS)
    return stage_shard(staging, shard_name(DROPPED_DIR, index, count), DROPPED_DIR, len(rows), data, drops=drops)


def publish(out: str, manifest: dict, stats_file: str, stats: dict[str, StageCounts], stats_extra: dict,
            top_domains: int) -> None:
    """Move the manifest's staged shards (and audit shards) into `out`, then write the stats,
    card and manifest (last)."""
    remove_manifest(out)
    staging = staging_dir(out)
    files = manifest["shards"] + manifest.get("dropped", {}).get("files", [])
    wanted = {fsio.join(out, shard["path"]) for shard in files}
    for folder in (*SPLITS, DROPPED_DIR):
        if folder in SPLITS or "dropped" in manifest:
            fsio.makedirs(fsio.join(out, folder))
        for old, _size in fsio.match(fsio.join(out, folder, "*.parquet")):
            if old not in wanted:
                fsio.remove(old)
    for shard in files:
        fsio.rename(fsio.join(staging, shard["path"]), fsio.join(out, shard["path"]))
    write_stats_json(fsio.join(out, stats_file), stats, stats_extra)
    card.write_card(out, manifest, top_domains)
    write_manifest(out, manifest)
    fsio.remove_tree(staging)  # the sidecars (and, on an object store, every object under the prefix)
