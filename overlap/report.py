"""`webtext overlap build|report`: how much of an eval set is in the training data.

GPT-2 (§4, Table 6) built Bloom filters of WebText's training-set 8-grams and reported the
share of each eval set's 8-grams found in them. `build` makes that filter from a dataset's
training split, `report` measures eval files against it (per file, per document, the most
overlapping documents; Markdown + JSON), `decontaminate` (overlap/decontaminate.py) drops
training documents that share too many n-grams with eval files.

Eval files: see overlap/sources.py. Also usable against a split of our own dataset
(`--against DIR/val`): the paper's "overlap with WebText train" column for our val/test.
"""

from __future__ import annotations

import json
import os
import statistics

from tqdm import tqdm

from core import fsio
from core.stats import StageCounts, write_stats_json
from overlap.bloom import BloomFilter
from overlap.build import STAGE, build_filter
from overlap.config import OverlapConfig
from overlap.ngrams import text_ngram_hashes
from overlap.sources import TEXT_COLUMN, eval_files, read_documents, split_files, units_of
from shards.manifest import MANIFEST

REPORT_JSON, REPORT_MD = "overlap.json", "overlap.md"
BATCH_DOCS = 1024  # documents per filter query
STATS_SUFFIX = ".stats.json"  # build counts, next to the filter file
BUCKETS = [("0%", 0.0, 0.0), ("(0, 1%]", 0.0, 0.01), ("(1, 10%]", 0.01, 0.10),
           ("(10, 50%]", 0.10, 0.50), ("(50, 100%)", 0.50, 1.0 - 1e-12), ("100%", 1.0 - 1e-12, 1.0)]


def _batches(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def eval_sets(patterns: list[str], text_field: str) -> list[tuple[str, list[str], str]]:
    """(name, files, text field) per eval set: a split folder of one of our datasets (DIR/<split>
    next to DIR/manifest.json) is one set, like the paper's own-split column; any other file is
    one set."""
    sets = []
    for pattern in patterns:
        parent = os.path.dirname(os.path.normpath(pattern))
        if os.path.isdir(pattern) and os.path.isfile(os.path.join(parent, MANIFEST)):
            sets.append((pattern, split_files(parent, os.path.basename(os.path.normpath(pattern))), TEXT_COLUMN))
        else:
            sets += [(path, [path], text_field) for path in eval_files([pattern])]
    return sets


def build(shards_dir: str, out_path: str, overlap_config: OverlapConfig) -> tuple[BloomFilter, StageCounts]:
    """The filter of split `overlap_config.split`'s n-grams, saved to `out_path` (stats next to it)."""
    units = units_of(split_files(shards_dir, overlap_config.split))
    bloom, counts = build_filter(units, overlap_config.n, overlap_config.fp_rate, TEXT_COLUMN,
                                 overlap_config.workers, {"split": overlap_config.split, "shards_dir": shards_dir})
    if bloom.items == 0:
        raise ValueError(f"split {overlap_config.split} of {shards_dir} has no document of "
                         f"{overlap_config.n} or more words")
    bloom.save(out_path)
    write_stats_json(out_path + STATS_SUFFIX, {STAGE: counts},
                     {"ngrams": bloom.items, "m": bloom.m, "k": bloom.k, "fp_rate": overlap_config.fp_rate})
    return bloom, counts


def _distribution(fractions: list[float]) -> dict:
    counts = {name: 0 for name, _, _ in BUCKETS}
    for fraction in fractions:
        for name, low, high in BUCKETS:
            if (fraction == 0.0 and high == 0.0) or (low < fraction <= high and high > 0.0):
                counts[name] += 1
                break
    if not fractions:
        return {"buckets": counts, "mean": None, "median": None, "p90": None, "max": None}
    ordered = sorted(fractions)
    return {
        "buckets": counts,
        "mean": statistics.fmean(ordered),
        "median": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "max": ordered[-1],
    }


def _documents(files: list[str], text_field: str):
    for path in files:
        yield from read_documents(path, text_field)


def set_overlap(name: str, files: list[str], text_field: str, bloom: BloomFilter,
                overlap_config: OverlapConfig) -> dict:
    """Share of one eval set's n-grams found in the filter, overall and per document."""
    ngrams = found = docs = 0
    per_doc = []  # (fraction, found, ngrams, index, preview)
    for batch in _batches(enumerate(_documents(files, text_field)), BATCH_DOCS):
        docs += len(batch)
        hashes = [text_ngram_hashes(text, bloom.n) for _, text in batch]
        for (index, text), hits in zip(batch, bloom.contains_each(hashes)):
            if len(hits):
                ngrams += len(hits)
                found += int(hits.sum())
                per_doc.append((float(hits.mean()), int(hits.sum()), len(hits), index, " ".join(text.split())[:160]))
    if docs == 0:
        raise ValueError(f"{name}: no documents (empty eval file)")
    if ngrams == 0:
        raise ValueError(f"{name}: no document has {bloom.n} or more words, so no {bloom.n}-gram to look up")
    top = sorted((doc for doc in per_doc if doc[1]), key=lambda doc: (-doc[0], -doc[1], doc[3]))
    top = top[: overlap_config.top_docs]
    return {
        "file": name,
        "files": files,
        "documents": docs,
        "documents_without_ngrams": docs - len(per_doc),
        "ngrams": ngrams,
        "found": found,
        "percent": 100.0 * found / ngrams,
        "per_document": _distribution([doc[0] for doc in per_doc]),
        "top_documents": [
            {"index": index, "fraction": fraction, "found": hits, "ngrams": grams, "preview": preview}
            for fraction, hits, grams, index, preview in top
        ],
    }


def _markdown(report: dict) -> str:
    bloom = report["filter"]
    lines = [
        "# N-gram overlap with the training data",
        "",
        f"Filter: {bloom['n']}-grams of split `{bloom.get('split', '?')}` ({bloom['items']:,} n-grams, "
        f"m={bloom['m']:,} bits, k={bloom['k']}, false-positive rate {bloom.get('fp_rate')}); "
        f"normalisation: {bloom['normalisation']}.",
        "",
        "| eval set | documents | n-grams | found | % found |",
        "|---|---:|---:|---:|---:|",
    ]
    for result in report["files"]:
        lines.append(f"| {result['file']} | {result['documents']:,} | {result['ngrams']:,} | {result['found']:,} "
                     f"| {result['percent']:.2f} |")
    lines += ["", f"Mean over eval sets: {report['mean_percent']:.2f}% of n-grams found."]
    for result in report["files"]:
        shares = result["per_document"]
        lines += ["", f"## {result['file']}", "", "Documents by share of their n-grams found:", "",
                  "| share | documents |", "|---|---:|"]
        lines += [f"| {name} | {count:,} |" for name, count in shares["buckets"].items()]
        if shares["mean"] is not None:
            lines += ["", f"mean {shares['mean']:.4f}, median {shares['median']:.4f}, p90 {shares['p90']:.4f}, "
                          f"max {shares['max']:.4f}"]
        if result["top_documents"]:
            lines += ["", "Most overlapping documents:", "", "| # | share | found / n-grams | start |",
                      "|---:|---:|---:|---|"]
            for top in result["top_documents"]:
                preview = top["preview"].replace("|", "\\|")
                lines.append(f"| {top['index']} | {top['fraction']:.3f} | {top['found']:,} / {top['ngrams']:,} "
                             f"| {preview} |")
    return "\n".join(lines) + "\n"


def report(filter_path: str, eval_patterns: list[str], out_dir: str, overlap_config: OverlapConfig) -> dict:
    bloom = BloomFilter.load(filter_path)
    if bloom.n != overlap_config.n:
        raise ValueError(f"{filter_path} holds {bloom.n}-grams but overlap.n is {overlap_config.n}: "
                         f"rebuild the filter or pass --set overlap.n={bloom.n}")
    sets = eval_sets(eval_patterns, overlap_config.text_field)
    files = [set_overlap(*eval_set, bloom, overlap_config) for eval_set in tqdm(sets, desc="eval sets", disable=None)]
    result = {
        "filter": bloom.header(),
        "files": files,
        "mean_percent": statistics.fmean(r["percent"] for r in files),  # GPT-2 Table 6's "average"
    }
    fsio.makedirs(out_dir)
    fsio.atomic_write_text(fsio.join(out_dir, REPORT_JSON), json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    fsio.atomic_write_text(fsio.join(out_dir, REPORT_MD), _markdown(result))
    return result
