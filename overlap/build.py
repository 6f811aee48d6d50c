"""A Bloom filter of every n-gram of a set of files, filled by parallel workers, merged by OR.

Two streaming passes over the text, neither holding more than one row group of it:
1. count: the number of n-gram positions (len(words) - n + 1 per document). It is an upper
   bound on the distinct n-grams, so a filter sized from it meets the false-positive target
   (repeats only lower the real rate); an exact distinct count would need every n-gram in
   memory, and it only needs the word split, not the hashing.
2. fill: each worker fills its own bit array of the final size from its share of the units
   (Parquet row groups or files); the partial arrays are ORed into one, which is exactly the
   filter a single process would build. Peak memory: one bit array (m/8 bytes) per worker plus
   the merged one.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import tempfile

import numpy as np
from tqdm import tqdm

from core.stats import StageCounts
from overlap.bloom import BloomFilter
from overlap.ngrams import ngram_count, text_ngram_hashes
from overlap.sources import Unit, read_unit

log = logging.getLogger(__name__)
STAGE = "overlap_build"
BATCH_NGRAMS = 1 << 16
SHORT = "fewer_than_n_words"  # documents too short for one n-gram: read, but they add nothing


def count_unit(unit: Unit, n: int, text_field: str) -> tuple[int, int, int]:
    """(documents, documents with at least one n-gram, n-grams) of one unit."""
    docs = with_ngrams = ngrams = 0
    for text in read_unit(unit, text_field):
        count = ngram_count(text, n)
        docs += 1
        with_ngrams += count > 0
        ngrams += count
    return docs, with_ngrams, ngrams


def fill(bloom: BloomFilter, units: list[Unit], text_field: str) -> None:
    """Add every n-gram of `units`, a batch of documents at a time (numpy calls cost per call)."""
    batch, size = [], 0
    for unit in units:
        for text in read_unit(unit, text_field):
            batch.append(text_ngram_hashes(text, bloom.n))
            size += len(batch[-1])
            if size >= BATCH_NGRAMS:
                bloom.add(np.concatenate(batch))
                batch, size = [], 0
    if size:
        bloom.add(np.concatenate(batch))


def _fill_part(units: list[Unit], m: int, k: int, n: int, text_field: str, part: str) -> tuple[str, int]:
    """Worker: a filter of size (m, k) from `units`, written as raw bits to `part`."""
    bloom = BloomFilter(m, k, n)
    fill(bloom, units, text_field)
    bloom.bits.tofile(part)
    return part, bloom.items


def workers_for(workers: int, units: int) -> int:
    return max(1, min(workers or os.cpu_count() or 1, units))


def count_ngrams(units: list[Unit], n: int, text_field: str, workers: int) -> tuple[StageCounts, int]:
    """Document counts (in, with n-grams, too short) and the number of n-grams of `units`."""
    counts = StageCounts(STAGE)
    ngrams = 0
    args = (units, [n] * len(units), [text_field] * len(units))
    with contextlib.ExitStack() as stack:
        if workers == 1:
            results = map(count_unit, *args)
        else:
            results = stack.enter_context(concurrent.futures.ProcessPoolExecutor(workers)).map(count_unit, *args)
        for docs, with_ngrams, grams in tqdm(results, total=len(units), desc=f"count {n}-grams",
                                             unit="unit", disable=None):
            counts.records_in += docs
            counts.records_out += with_ngrams
            ngrams += grams
    if counts.records_in > counts.records_out:
        counts.dropped[SHORT] = counts.records_in - counts.records_out
    counts.check()
    return counts, ngrams


def build_filter(units: list[Unit], n: int, fp_rate: float, text_field: str, workers: int = 1,
                 meta: dict | None = None) -> tuple[BloomFilter, StageCounts]:
    """The filter of all n-grams of `units` and the document counts (in, with n-grams, too short)."""
    workers = workers_for(workers, len(units))
    counts, ngrams = count_ngrams(units, n, text_field, workers)
    bloom = BloomFilter.for_items(ngrams, fp_rate, n, {**(meta or {}), "documents": counts.records_in})
    log.info("%d %d-grams in %d documents: m=%d bits, k=%d, %d worker(s)",
             ngrams, n, counts.records_in, bloom.m, bloom.k, workers)
    if workers == 1:
        fill(bloom, tqdm(units, desc=f"fill {n}-gram filter", unit="unit", disable=None), text_field)
        return bloom, counts
    groups = [units[i::workers] for i in range(workers)]
    with tempfile.TemporaryDirectory(prefix="webtext-bloom-") as tmp, \
            concurrent.futures.ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(_fill_part, group, bloom.m, bloom.k, n, text_field, os.path.join(tmp, f"part-{i}"))
                   for i, group in enumerate(groups)]
        for future in tqdm(concurrent.futures.as_completed(futures), total=len(futures),
                           desc=f"fill {n}-gram filter", unit="worker", disable=None):
            part, items = future.result()
            np.bitwise_or(bloom.bits, np.memmap(part, dtype=np.uint8, mode="r"), out=bloom.bits)
            bloom.items += items
            os.unlink(part)
    return bloom, counts
