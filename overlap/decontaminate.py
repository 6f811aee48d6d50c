"""`webtext overlap decontaminate`: a copy of a dataset without the text that overlaps eval sets.

A Bloom filter of the eval files' `decontaminate_n`-grams (13 by default, as GPT-3 did: long
n-grams match copied text, not common phrases) is checked against every document of the
filtered splits. A document is contaminated when more than `decontaminate_threshold` of its
n-grams are found (0.0: any one). Mode `drop` removes it (`eval_overlap`); mode `cut` removes
only the words covered by found n-grams (each covered run of words, from its first to its last
character) and drops the document only if no word is left (`cut_to_nothing`). Other splits
are copied byte for byte.

The output is a dataset in the build's format (shards/manifest.py): finished shards wait in
`OUT/.staging` with a sidecar, so a killed run redoes only unfinished shards; then they move
into place and `manifest.json` is written last. Its `decontaminate` stage counts the filtered
documents; the `write` stage also carries those drops so that the build's stage chain still
ends in the rows on disk (`webtext verify` checks this).
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

from overlap.bloom import BloomFilter
from overlap.build import build_filter
from overlap.config import OverlapConfig
from overlap.ngrams import ngram_hashes, normalize_words, word_spans
from overlap.sources import TEXT_COLUMN, eval_files, units_of
from shards import card
from shards import manifest as mf
from shards.build import STAGING, publish
from core import fsio
from webtext.config import Config
from core.stats import StageCounts, write_stats_json

log = logging.getLogger(__name__)

STAGE = "decontaminate"
STATS_FILE = "decontaminate_stats.json"
DROPPED, CUT_TO_NOTHING = "eval_overlap", "cut_to_nothing"


def contaminated(found: np.ndarray, threshold: float) -> bool:
    return bool(found.any()) and found.mean() > threshold


def cut_ngrams(text: str, found: np.ndarray, n: int) -> str:
    """`text` without the words covered by found n-grams (each run cut from first to last char)."""
    spans = word_spans(text)
    depth = np.zeros(len(spans) + 1, dtype=np.int64)  # +1 at an n-gram's start, -1 past its end
    starts = np.flatnonzero(found)
    np.add.at(depth, starts, 1)
    np.add.at(depth, starts + n, -1)
    covered = np.cumsum(depth[:-1]) > 0
    pieces, pos, i = [], 0, 0
    while i < len(spans):
        if not covered[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(spans) and covered[j + 1]:
            j += 1
        pieces.append(text[pos: spans[i][0]])
        pos, i = spans[j][1], j + 1
    pieces.append(text[pos:])
    return "".join(pieces)


def clean_table(table: pa.Table, bloom: BloomFilter, cfg: OverlapConfig) -> tuple[pa.Table, dict[str, int], int]:
    """(rows to keep, dropped by reason, documents cut) of one shard."""
    texts = [text or "" for text in table.column(TEXT_COLUMN).to_pylist()]
    keep = np.ones(len(texts), dtype=bool)
    dropped = {DROPPED: 0, CUT_TO_NOTHING: 0}
    cut = 0
    hashes = [ngram_hashes(normalize_words(text), bloom.n) for text in texts]
    for i, found in enumerate(bloom.contains_each(hashes)):
        if not contaminated(found, cfg.decontaminate_threshold):
            continue
        if cfg.decontaminate_mode == "drop":
            keep[i], dropped[DROPPED] = False, dropped[DROPPED] + 1
            continue
        texts[i] = cut_ngrams(texts[i], found, bloom.n)
        if not normalize_words(texts[i]):
            keep[i], dropped[CUT_TO_NOTHING] = False, dropped[CUT_TO_NOTHING] + 1
        else:
            cut += 1
    if cut:
        table = _with_texts(table, texts)
    return table.filter(pa.array(keep)), {k: v for k, v in dropped.items() if v}, cut


def _with_texts(table: pa.Table, texts: list) -> pa.Table:
    """New text, and the length columns the build derives from it (extract/pipeline.py)."""
    derived = {TEXT_COLUMN: texts, "n_chars": [len(t) for t in texts], "n_words": [len(t.split()) for t in texts]}
    for name, values in derived.items():
        if name in table.column_names:
            index = table.schema.get_field_index(name)
            field = table.schema.field(index)
            table = table.set_column(index, field, pa.array(values, type=field.type))
    return table


def _parquet_bytes(table: pa.Table, cfg: Config) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", compression_level=cfg.build.compression_level,
                   row_group_size=cfg.build.row_group_docs)
    return sink.getvalue().to_pybytes()


def _read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as fh:
        return fh.read()


def _staged(staging: str, shard: dict, fingerprint: str) -> dict | None:
    """The sidecar of a shard an earlier run of the same decontamination finished, if any."""
    sidecar = fsio.join(staging, shard["path"] + ".json")
    if not FileSystems.exists(sidecar):
        return None
    info = json.loads(_read_bytes(sidecar).decode("utf-8"))
    if info.get("fingerprint") != fingerprint or info.get("source_sha256") != shard["sha256"]:
        return None
    return info if FileSystems.exists(fsio.join(staging, shard["path"])) else None


def process_shard(source_dir: str, staging: str, shard: dict, bloom: BloomFilter, cfg: Config,
                  ocfg: OverlapConfig, fingerprint: str) -> dict:
    """Write one shard's decontaminated copy to staging; returns its sidecar."""
    data = _read_bytes(fsio.join(source_dir, shard["path"]))
    if hashlib.sha256(data).hexdigest() != shard["sha256"]:
        raise ValueError(f"{fsio.join(source_dir, shard['path'])}: sha256 differs from the source manifest "
                         f"(run `webtext verify {source_dir}`)")
    filtered = shard["split"] in ocfg.decontaminate_splits
    dropped, cut = {}, 0
    if filtered:
        table = pq.read_table(pa.BufferReader(data))
        if TEXT_COLUMN not in table.column_names:
            raise ValueError(f"{shard['path']}: no column {TEXT_COLUMN!r}")
        table, dropped, cut = clean_table(table, bloom, ocfg)
        if dropped or cut:
            data = _parquet_bytes(table, cfg)
    info = {"path": shard["path"], "split": shard["split"], "rows": shard["rows"] - sum(dropped.values()),
            "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "source_sha256": shard["sha256"],
            "fingerprint": fingerprint, "filtered": filtered, "dropped": dropped, "cut": cut}
    fsio.atomic_write_bytes(fsio.join(staging, shard["path"]), data)
    fsio.atomic_write_text(fsio.join(staging, shard["path"] + ".json"), json.dumps(info, sort_keys=True))
    return info


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
    return mf.ordered_counts(counts)


def _same_place(a: str, b: str) -> bool:
    if fsio.is_local(a) and fsio.is_local(b):
        return os.path.realpath(fsio.join(a, "")) == os.path.realpath(fsio.join(b, ""))
    return a.rstrip("/") == b.rstrip("/")


def decontaminate(shards_dir: str, eval_patterns: list[str], out_dir: str, cfg: Config,
                  ocfg: OverlapConfig | None = None) -> dict:
    """Write the decontaminated copy of dataset `shards_dir` to `out_dir`; returns its manifest."""
    ocfg = ocfg or cfg.overlap
    if _same_place(shards_dir, out_dir):
        raise ValueError("--out must differ from --shards: the source dataset stays as it is")
    source = mf.read_manifest(shards_dir)
    files = eval_files(eval_patterns)
    bloom, eval_counts = build_filter(units_of(files), ocfg.decontaminate_n, ocfg.fp_rate, ocfg.text_field,
                                      ocfg.workers, {"eval_files": files})
    if bloom.items == 0:
        raise ValueError(f"no eval document has {ocfg.decontaminate_n} or more words: nothing to decontaminate against")
    settings = {"n": ocfg.decontaminate_n, "threshold": ocfg.decontaminate_threshold,
                "mode": ocfg.decontaminate_mode, "splits": sorted(ocfg.decontaminate_splits),
                "text_field": ocfg.text_field, "fp_rate": ocfg.fp_rate}
    fingerprint = hashlib.sha256(json.dumps([settings, bloom.header()["sha256"], cfg.build.compression_level,
                                             cfg.build.row_group_docs], sort_keys=True).encode()).hexdigest()
    staging = fsio.join(out_dir, STAGING)
    infos = []
    for shard in tqdm(source["shards"], desc="decontaminate shards", unit="shard", disable=None):
        info = _staged(staging, shard, fingerprint)
        if info is None:
            info = process_shard(shards_dir, staging, shard, bloom, cfg, ocfg, fingerprint)
        else:
            log.info("%s: finished by an earlier run, kept", shard["path"])
        infos.append(info)
    counts = _stage_counts(source["stages"], infos)
    rows = sum(info["rows"] for info in infos)
    problems = mf.count_problems(counts, rows)
    if problems:
        raise AssertionError("decontamination counts do not reconcile:\n  " + "\n  ".join(problems))
    shards = [{k: info[k] for k in ("path", "split", "rows", "bytes", "sha256")} for info in infos]
    publish(out_dir, staging, shards)
    manifest = mf.make_manifest(cfg, shards, source["schema"], counts, source["inputs"])
    # The content is the source's (its config decided it) minus what decontamination removed.
    manifest.update(config=source["config"], config_hash=source["config_hash"], decontamination={
        **settings, "source": shards_dir, "source_config_hash": source["config_hash"], "eval_files": files,
        "eval_documents": eval_counts.records_in, "eval_ngrams": bloom.items,
        "filter": {k: bloom.header()[k] for k in ("m", "k", "sha256")},
        "documents_cut": sum(info["cut"] for info in infos),
    })
    write_stats_json(fsio.join(out_dir, STATS_FILE), {STAGE: counts[STAGE]}, {"decontamination": manifest["decontamination"]})
    card.write_card(out_dir, manifest, cfg.build.top_domains)
    mf.write_manifest(out_dir, manifest)
    FileSystems.delete([staging])
    return manifest
