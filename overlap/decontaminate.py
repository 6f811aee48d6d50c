"""`webtext overlap decontaminate`: a copy of a dataset without the text that overlaps eval sets.

A Bloom filter of the eval files' `decontaminate_n`-grams (13 by default, as GPT-3 did: long
n-grams match copied text, not common phrases) is checked against every document of the
filtered splits. A document is contaminated when more than `decontaminate_threshold` of its
n-grams are found (0.0: any one). Mode `drop` removes it (`eval_overlap`); mode `cut` removes
only the words covered by found n-grams (each covered run of words, from its first to its last
character) and drops the document only if no word is left (`cut_to_nothing`). Other splits
are copied byte for byte.

The output is a dataset in the build's format, written by the build's dataset writer
(shards/writer.py): finished shards wait in `OUT/.staging` with a sidecar, so a killed run
redoes only unfinished shards; then they move into place and `manifest.json` is written last.
Its `decontaminate` stage counts the filtered documents; the `write` stage also carries those
drops so that the build's stage chain still ends in the rows on disk (`webtext verify` checks
this).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from tqdm import tqdm

from core import fsio
from core.stats import StageCounts
from core.text import alphanumeric_word_spans, lowercase_alphanumeric_words
from overlap.bloom import BloomFilter
from overlap.build import build_filter
from overlap.config import OverlapConfig
from overlap.ngrams import text_ngram_hashes
from overlap.sources import TEXT_COLUMN, eval_files, units_of
from shards.config import BuildConfig
from shards.manifest import count_problems, make_manifest, ordered_counts, read_manifest
from shards.writer import publish, shard_bytes, stage_shard, staged_shard, staging_dir

log = logging.getLogger(__name__)

STAGE = "decontaminate"
STATS_FILE = "decontaminate_stats.json"
DROPPED, CUT_TO_NOTHING = "eval_overlap", "cut_to_nothing"


def contaminated(found: np.ndarray, threshold: float) -> bool:
    return bool(found.any()) and found.mean() > threshold


def cut_ngrams(text: str, found: np.ndarray, n: int) -> str:
    """`text` without the words covered by found n-grams (each run cut from first to last char)."""
    spans = alphanumeric_word_spans(text)
    depth = np.zeros(len(spans) + 1, dtype=np.int64)  # +1 at an n-gram's start, -1 past its end
    starts = np.flatnonzero(found)
    np.add.at(depth, starts, 1)
    np.add.at(depth, starts + n, -1)
    covered = np.cumsum(depth[:-1]) > 0
    pieces, position, i = [], 0, 0
    while i < len(spans):
        if not covered[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(spans) and covered[j + 1]:
            j += 1
        pieces.append(text[position: spans[i][0]])
        position, i = spans[j][1], j + 1
    pieces.append(text[position:])
    return "".join(pieces)


def clean_table(table: pa.Table, bloom: BloomFilter, overlap_config: OverlapConfig) -> tuple[pa.Table, dict[str, int], int]:
    """(rows to keep, dropped by reason, documents cut) of one shard."""
    texts = [text or "" for text in table.column(TEXT_COLUMN).to_pylist()]
    keep = np.ones(len(texts), dtype=bool)
    dropped = {DROPPED: 0, CUT_TO_NOTHING: 0}
    cut = 0
    hashes = [text_ngram_hashes(text, bloom.n) for text in texts]
    for i, found in enumerate(bloom.contains_each(hashes)):
        if not contaminated(found, overlap_config.decontaminate_threshold):
            continue
        if overlap_config.decontaminate_mode == "drop":
            keep[i], dropped[DROPPED] = False, dropped[DROPPED] + 1
            continue
        texts[i] = cut_ngrams(texts[i], found, bloom.n)
        if not lowercase_alphanumeric_words(texts[i]):
            keep[i], dropped[CUT_TO_NOTHING] = False, dropped[CUT_TO_NOTHING] + 1
        else:
            cut += 1
    if cut:
        table = _with_texts(table, texts)
    return table.filter(pa.array(keep)), {reason: n for reason, n in dropped.items() if n}, cut


def _with_texts(table: pa.Table, texts: list) -> pa.Table:
    """New text, and the length columns the build derives from it (extract/pipeline.py)."""
    derived = {TEXT_COLUMN: texts, "n_chars": [len(t) for t in texts], "n_words": [len(t.split()) for t in texts]}
    for name, values in derived.items():
        if name in table.column_names:
            index = table.schema.get_field_index(name)
            field = table.schema.field(index)
            table = table.set_column(index, field, pa.array(values, type=field.type))
    return table


def _read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as fh:
        return fh.read()


def _finished(staging: str, shard: dict, fingerprint: str) -> dict | None:
    """The sidecar of a shard an earlier run of the same decontamination finished, if any."""
    info = staged_shard(staging, shard["path"])
    if info is None or info.get("fingerprint") != fingerprint or info.get("source_sha256") != shard["sha256"]:
        return None
    return info


def process_shard(source_dir: str, staging: str, shard: dict, bloom: BloomFilter, overlap_config: OverlapConfig,
                  build_config: BuildConfig, fingerprint: str) -> dict:
    """Stage one shard's decontaminated copy; returns its sidecar."""
    data = _read_bytes(fsio.join(source_dir, shard["path"]))
    if hashlib.sha256(data).hexdigest() != shard["sha256"]:
        raise ValueError(f"{fsio.join(source_dir, shard['path'])}: sha256 differs from the source manifest "
                         f"(run `webtext verify {source_dir}`)")
    filtered = shard["split"] in overlap_config.decontaminate_splits
    dropped, cut = {}, 0
    if filtered:
        table = pq.read_table(pa.BufferReader(data))
        if TEXT_COLUMN not in table.column_names:
            raise ValueError(f"{shard['path']}: no column {TEXT_COLUMN!r}")
        table, dropped, cut = clean_table(table, bloom, overlap_config)
        if dropped or cut:
            data = shard_bytes(table, build_config.row_group_docs, build_config.compression_level)
    return stage_shard(staging, shard["path"], shard["split"], shard["rows"] - sum(dropped.values()), data,
                       source_sha256=shard["sha256"], fingerprint=fingerprint, filtered=filtered,
                       dropped=dropped, cut=cut)


def _stage_counts(source_stages: dict, infos: list[dict]) -> dict[str, StageCounts]:
    """Source stages, with the decontamination drops added to `write`, plus `decontaminate`."""
    counts = {name: StageCounts.from_json(name, data) for name, data in source_stages.items()}
    stage = StageCounts(STAGE)
    for info in infos:
        if info["filtered"]:
            stage.records_in += info["rows"] + sum(info["dropped"].values())
            stage.records_out += info["rows"]
            for reason, n in info["dropped"].items():
                stage.dropped[reason] = stage.dropped.get(reason, 0) + n
    write = counts.setdefault("write", StageCounts("write"))
    write.records_out -= stage.total_dropped
    for reason, n in stage.dropped.items():
        write.dropped[reason] = write.dropped.get(reason, 0) + n
    counts[STAGE] = stage
    return ordered_counts(counts)


def _same_place(a: str, b: str) -> bool:
    if fsio.is_local(a) and fsio.is_local(b):
        return os.path.realpath(fsio.join(a, "")) == os.path.realpath(fsio.join(b, ""))
    return a.rstrip("/") == b.rstrip("/")


def decontaminate(shards_dir: str, eval_patterns: list[str], out_dir: str, overlap_config: OverlapConfig,
                  build_config: BuildConfig) -> dict:
    """Write the decontaminated copy of dataset `shards_dir` to `out_dir`; returns its manifest.

    Rewritten shards use `build_config`'s row groups and compression; the card lists
    `build_config.top_domains` domains.
    """
    if _same_place(shards_dir, out_dir):
        raise ValueError("--out must differ from --shards: the source dataset stays as it is")
    source = read_manifest(shards_dir)
    files = eval_files(eval_patterns)
    n = overlap_config.decontaminate_n
    bloom, eval_counts = build_filter(units_of(files), n, overlap_config.fp_rate, overlap_config.text_field,
                                      overlap_config.workers, {"eval_files": files})
    if bloom.items == 0:
        raise ValueError(f"no eval document has {n} or more words: nothing to decontaminate against")
    settings = {"n": n, "threshold": overlap_config.decontaminate_threshold,
                "mode": overlap_config.decontaminate_mode, "splits": sorted(overlap_config.decontaminate_splits),
                "text_field": overlap_config.text_field, "fp_rate": overlap_config.fp_rate}
    fingerprint = hashlib.sha256(json.dumps([settings, bloom.header()["sha256"], build_config.compression_level,
                                             build_config.row_group_docs], sort_keys=True).encode()).hexdigest()
    staging = staging_dir(out_dir)
    infos = []
    for shard in tqdm(source["shards"], desc="decontaminate shards", unit="shard", disable=None):
        info = _finished(staging, shard, fingerprint)
        if info is None:
            info = process_shard(shards_dir, staging, shard, bloom, overlap_config, build_config, fingerprint)
        else:
            log.info("%s: finished by an earlier run, kept", shard["path"])
        infos.append(info)
    counts = _stage_counts(source["stages"], infos)
    problems = count_problems(counts, sum(info["rows"] for info in infos))
    if problems:
        raise AssertionError("decontamination counts do not reconcile:\n  " + "\n  ".join(problems))
    # The content is the source's (its config decided it) minus what decontamination removed.
    manifest = make_manifest(source["config"], source["config_hash"], infos, source["schema"], counts,
                             source["inputs"])
    manifest["decontamination"] = {
        **settings, "source": shards_dir, "source_config_hash": source["config_hash"], "eval_files": files,
        "eval_documents": eval_counts.records_in, "eval_ngrams": bloom.items,
        "filter": {key: bloom.header()[key] for key in ("m", "k", "sha256")},
        "documents_cut": sum(info["cut"] for info in infos),
    }
    publish(out_dir, manifest, STATS_FILE, {STAGE: counts[STAGE]}, {"decontamination": manifest["decontamination"]},
            build_config.top_domains)
    return manifest
