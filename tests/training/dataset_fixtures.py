"""Dataset folders as `webtext build` leaves them (zstd Parquet shards listed in a manifest.json
that `webtext verify` accepts), written directly, for the tokenizer and tokenize tests."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.section import config_hash
from core.stats import StageCounts
from shards.cli import dataset_config
from shards.manifest import STAGE_CHAIN, make_manifest, write_manifest
from shards.writer import schema_json
from webtext.config import load_config


def write_dataset(root: Path, splits: dict[str, list[list]], row_group_size: int = 16) -> Path:
    """ROOT/<split>/part-NNNNN.parquet (columns id, text), one file per list of texts, and the
    manifest listing them."""
    shards, schema = [], None
    for split, files in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for n, texts in enumerate(files):
            name = f"{split}/part-{n:05d}.parquet"
            table = pa.table({"id": [f"{split}-{n}-{i}" for i in range(len(texts))], "text": texts},
                             schema=pa.schema([("id", pa.string()), ("text", pa.string())]))
            pq.write_table(table, root / name, compression="zstd", row_group_size=row_group_size)
            data = (root / name).read_bytes()
            shards.append({"path": name, "split": split, "rows": len(texts), "bytes": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()})
            schema = table.schema
    rows = sum(shard["rows"] for shard in shards)
    content = dataset_config(load_config())
    counts = {stage: StageCounts(stage, rows, rows) for stage in STAGE_CHAIN}
    write_manifest(str(root), make_manifest(content.model_dump(mode="json"), config_hash(content), shards,
                                            schema_json(schema), counts, []))
    return root


def corrupt_text_pages(path: Path, row_group: int = 0) -> None:
    """Flip 8 bytes inside the zstd-compressed dictionary page of the `text` column of one row
    group: same file size, readable footer, a page that no longer decompresses."""
    text_chunk = pq.ParquetFile(path).metadata.row_group(row_group).column(1)
    position = (text_chunk.dictionary_page_offset + text_chunk.data_page_offset) // 2
    data = bytearray(path.read_bytes())
    data[position:position + 8] = bytes(b ^ 0x5A for b in data[position:position + 8])
    path.write_bytes(bytes(data))
