"""`webtext verify DIR`: is this folder exactly the dataset its manifest describes?

Checks every listed shard (present, size, sha256, readable Parquet, row count, schema), that
no unlisted shard sits in a split folder (a leftover of another build: readers globbing the
folder would pick it up), and that the recorded stage counts reconcile with the rows. The
audit table `dropped/` (when the manifest lists one) gets the same file checks, and its rows,
counted by stage and reason, must equal every stage's drop counts. DIR may be a local folder
or an object-store prefix (s3://, gs://; `core.fsio`).
"""

from __future__ import annotations

import hashlib
from collections import Counter

import pyarrow.parquet as pq
from core import fsio
from core.stats import StageCounts
from shards.manifest import audit_problems, count_problems, read_manifest
from shards.split import SPLITS
from shards.writer import DROPPED_DIR, schema_json

CHUNK = 1 << 20


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with fsio.open_read(path) as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _without_descriptions(schema: list[dict]) -> list[tuple]:
    return [(c["name"], c["type"], c["nullable"]) for c in schema]


def check_shard(out: str, shard: dict, schema: list[dict]) -> list[str]:
    """Problems with one listed shard (empty list: it is exactly as recorded)."""
    name = shard["path"]
    path = fsio.join(out, name)
    found = fsio.match(path)
    if not found:
        return [f"{name}: missing"]
    problems = []
    size = found[0][1]
    if size != shard["bytes"]:
        problems.append(f"{name}: {size} bytes, manifest says {shard['bytes']}")
    if _sha256(path) != shard["sha256"]:
        problems.append(f"{name}: sha256 differs from the manifest (file changed or corrupted)")
    try:
        with fsio.open_read(path) as fh:
            parquet = pq.ParquetFile(fh)
            rows = parquet.metadata.num_rows
            columns = _without_descriptions(schema_json(parquet.schema_arrow))
            for group in range(parquet.num_row_groups):
                parquet.read_row_group(group)  # decompresses every page: catches damaged data
    except Exception as exc:  # pyarrow raises several types for damaged files
        return problems + [f"{name}: not readable as Parquet ({type(exc).__name__}: {exc})"]
    if rows != shard["rows"]:
        problems.append(f"{name}: {rows} rows, manifest says {shard['rows']}")
    if columns != _without_descriptions(schema):
        problems.append(f"{name}: schema differs from the manifest")
    if not name.startswith(shard["split"] + "/"):
        problems.append(f"{name}: listed under split {shard['split']!r}")
    return problems


def unlisted_shards(out: str, manifest: dict) -> list[str]:
    """Parquet files in the split folders and dropped/ that the manifest does not list."""
    files = manifest["shards"] + manifest.get("dropped", {}).get("files", [])
    listed = {fsio.join(out, shard["path"]) for shard in files}
    extra = []
    for folder in (*SPLITS, DROPPED_DIR):
        for path, _size in fsio.match(fsio.join(out, folder, "*.parquet")):
            if path not in listed:
                extra.append(f"{path}: not in the manifest, so not part of the dataset (remove it)")
    return sorted(extra)


def dropped_problems(out: str, dropped: dict, counts: dict[str, StageCounts]) -> list[str]:
    """Problems with the audit table: its files, and its rows by stage and reason against the counts."""
    problems = []
    for info in dropped["files"]:
        problems += check_shard(out, info, dropped["schema"])
    if problems:
        return problems + audit_problems(counts, dropped)
    found: Counter = Counter()
    for info in dropped["files"]:
        with fsio.open_read(fsio.join(out, info["path"])) as fh:
            table = pq.read_table(fh, columns=["stage", "reason"])
        found.update(zip(table.column("stage").to_pylist(), table.column("reason").to_pylist()))
    recorded = Counter({(stage, reason): n for stage, reasons in dropped["counts"].items()
                        for reason, n in reasons.items()})
    if found != recorded:
        problems.append(f"{DROPPED_DIR}/: its rows by stage and reason {dict(sorted(found.items()))} differ from "
                        f"the manifest's {dict(sorted(recorded.items()))}")
    return problems + audit_problems(counts, dropped)


def verify_dataset(out: str) -> list[str]:
    """Every mismatch between `out` and its manifest, as readable lines."""
    try:
        manifest = read_manifest(out)
    except (FileNotFoundError, ValueError) as exc:
        return [str(exc)]
    problems = []
    for shard in manifest["shards"]:
        problems += check_shard(out, shard, manifest["schema"])
    counts = {name: StageCounts.from_json(name, data) for name, data in manifest["stages"].items()}
    rows = sum(shard["rows"] for shard in manifest["shards"])
    if manifest["rows"] != rows:
        problems.append(f"manifest rows={manifest['rows']} but its shards list {rows}")
    if "dropped" in manifest:  # datasets built before the audit table, and decontaminated copies, have none
        problems += dropped_problems(out, manifest["dropped"], counts)
    return problems + unlisted_shards(out, manifest) + count_problems(counts, rows)
