"""`webtext overlap decontaminate`: a copy of a dataset without documents that overlap eval sets.

A Bloom filter of the eval files' `decontaminate_n`-grams (13 by default, as GPT-3 did; long
n-grams only match copied text, not common phrases) is checked against every document of the
filtered splits; a document is dropped (`eval_overlap`) when more than `decontaminate_threshold`
of its n-grams are found. Other splits are copied unchanged. Shards keep their names; the new
`manifest.json` is written last and lists every shard with rows, bytes and sha256 plus the
counts, so a folder without it is an unfinished run.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from tqdm import tqdm

from overlap.bloom import BloomFilter
from overlap.config import OverlapConfig
from overlap.ngrams import ngram_hashes, normalize_words
from overlap.report import filter_of
from webtext import fsio
from webtext.stats import StageCounts, write_stats_json

MANIFEST = "manifest.json"
FORMAT = "webtext-decontaminated-v1"
STAGE = "decontaminate"


def dataset_shards(shards_dir: str) -> dict[str, list[str]]:
    """{split: sorted shard paths} of a dataset directory (DIR/<split>/*.parquet)."""
    matches = FileSystems.match([fsio.join(shards_dir, "*", "*.parquet")])[0].metadata_list
    splits: dict[str, list[str]] = {}
    for m in matches:
        split = m.path.rstrip("/").rsplit("/", 2)[-2]
        splits.setdefault(split, []).append(m.path)
    if not splits:
        raise FileNotFoundError(f"{shards_dir} holds no <split>/*.parquet shards")
    return {split: sorted(paths) for split, paths in sorted(splits.items())}


def overlap_fractions(texts: list, bloom: BloomFilter) -> np.ndarray:
    """Per text: the share of its n-grams found in the filter (0 for texts with none)."""
    out = np.zeros(len(texts))
    for i, text in enumerate(texts):
        hashes = ngram_hashes(normalize_words(text if isinstance(text, str) else ""), bloom.n)
        if len(hashes):
            out[i] = bloom.contains(hashes).mean()
    return out


def _read(path: str) -> pa.Table:
    with FileSystems.open(path) as fh:
        try:
            return pq.read_table(fh)
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise ValueError(f"{path}: not a readable Parquet file ({exc})") from None


def decontaminate(shards_dir: str, eval_patterns: list[str], out_dir: str, cfg: OverlapConfig) -> dict[str, StageCounts]:
    splits = dataset_shards(shards_dir)
    eval_files = fsio.expand(eval_patterns)
    bloom = filter_of(eval_files, cfg.decontaminate_n, cfg.fp_rate, cfg.text_field)
    manifest_path = fsio.join(out_dir, MANIFEST)
    if FileSystems.exists(manifest_path):
        FileSystems.delete([manifest_path])
    counts = StageCounts(STAGE)
    shards = []
    for split, paths in splits.items():
        filtered = split in cfg.decontaminate_splits
        for path in tqdm(paths, desc=f"{split} shards", unit="shard", disable=None):
            table = _read(path)
            if filtered:
                if cfg.text_field not in table.column_names:
                    raise ValueError(f"{path}: no column {cfg.text_field!r}")
                fractions = overlap_fractions(table.column(cfg.text_field).to_pylist(), bloom)
                keep = fractions <= cfg.decontaminate_threshold
                counts.records_in += len(keep)
                counts.records_out += int(keep.sum())
                if not keep.all():
                    counts.dropped["eval_overlap"] = counts.dropped.get("eval_overlap", 0) + int((~keep).sum())
                table = table.filter(pa.array(keep))
            buffer = io.BytesIO()
            pq.write_table(table, buffer, compression="zstd")
            data = buffer.getvalue()
            name = path.rsplit("/", 1)[-1]
            fsio.makedirs(fsio.join(out_dir, split))
            fsio.atomic_write_bytes(fsio.join(out_dir, split, name), data)
            shards.append({"split": split, "file": f"{split}/{name}", "rows": table.num_rows,
                           "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                           "filtered": filtered})
    counts.check()
    write_stats_json(manifest_path, {STAGE: counts}, {
        "format": FORMAT, "source": shards_dir, "eval_files": eval_files,
        "n": cfg.decontaminate_n, "threshold": cfg.decontaminate_threshold, "fp_rate": cfg.fp_rate,
        "filter": {k: v for k, v in bloom.header().items() if k != "source_files"},
        "shards": shards,
    })
    return {STAGE: counts}
