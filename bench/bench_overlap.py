"""Overlap throughput: n-grams per second into and out of Bloom filters, ours against rbloom.

    .venv/bin/python -m bench.bench_overlap [--words N] [--workers W]

Random text of N words (vocabulary 50k) is normalised and hashed into 8-grams (64-bit), then
inserted into a filter sized for p = 1e-8, and the 8-grams of a second random text of N words
are queried (none of them are in the training text, so every hit is a false positive). The
baseline, in the same process, is rbloom (a maintained Rust Bloom filter) fed the same
hashes as Python ints; a Python set of 8-word tuples shows what exact matching costs in
memory. The last rows build a filter end to end from Parquet row groups with 1 and W worker
processes (overlap/build.py), against the 1-worker run. Rates are n-grams per CPU second for
the in-process rows (steadier on a shared machine) and per wall second for the worker runs.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import rbloom

from core.text import lowercase_alphanumeric_words
from overlap.bloom import BloomFilter
from overlap.build import build_filter
from overlap.ngrams import text_ngram_hashes
from overlap.sources import units_of

RESULTS = Path(__file__).resolve().parent / "results" / "overlap.json"
N, FP_RATE = 8, 1e-8


def _text(rng: random.Random, vocab: list[str], words: int) -> str:
    return " ".join(rng.choice(vocab) for _ in range(words))


def _timed(fn):
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, result


def _peak_bytes(fn) -> int:
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv or [])
    rng = random.Random(1)
    vocab = [f"word{i}" for i in range(50_000)]
    train_text, eval_text = _text(rng, vocab, args.words), _text(rng, vocab, args.words)
    rows = []  # (group, variant, n-grams, cpu s, wall s, bytes)

    cpu, wall, train = _timed(lambda: text_ngram_hashes(train_text, N))
    rows.append(("hash", "normalise + 8-gram hashes", len(train), cpu, wall, None))
    queries = text_ngram_hashes(eval_text, N)
    train_ints, query_ints = train.tolist(), queries.tolist()

    def ours_build():
        bloom = BloomFilter.for_items(len(train), FP_RATE, N)
        bloom.add(train)
        return bloom

    def rbloom_build():
        bloom = rbloom.Bloom(len(train_ints), FP_RATE)
        bloom.update(train_ints)
        return bloom

    cpu, wall, theirs = _timed(rbloom_build)
    rows.append(("build", "rbloom (baseline)", len(train), cpu, wall, theirs.size_in_bits // 8))
    cpu, wall, ours = _timed(ours_build)
    rows.append(("build", "ours (numpy)", len(train), cpu, wall, ours.bits.nbytes))
    words = lowercase_alphanumeric_words(train_text)
    set_bytes = _peak_bytes(lambda: {tuple(words[i: i + N]) for i in range(len(words) - N + 1)})
    rows.append(("memory", "python set of 8-gram tuples", len(train), None, None, set_bytes))

    cpu, wall, their_hits = _timed(lambda: sum(q in theirs for q in query_ints))
    rows.append(("query", "rbloom (baseline)", len(queries), cpu, wall, None))
    cpu, wall, our_hits = _timed(lambda: int(ours.contains(queries).sum()))
    rows.append(("query", "ours (numpy)", len(queries), cpu, wall, None))

    with tempfile.TemporaryDirectory() as tmp:
        docs = [train_text[i: i + 5000] for i in range(0, len(train_text), 5000)]
        path = f"{tmp}/train.parquet"
        pq.write_table(pa.table({"text": docs}), path, row_group_size=max(1, len(docs) // 16))
        units = units_of([path])
        for workers in (1, args.workers):
            cpu, wall, (bloom, _) = _timed(lambda: build_filter(units, N, FP_RATE, "text", workers))
            rows.append(("parquet", f"build_filter, {workers} worker(s)", bloom.items, cpu, wall, bloom.bits.nbytes))

    results, base = [], {}
    for group, variant, ngrams, cpu, wall, nbytes in rows:
        # in-process rows by CPU time (steadier on a shared machine); worker runs by wall time
        seconds = wall if group == "parquet" else cpu
        rate = ngrams / seconds if seconds else None
        if rate is not None:
            base.setdefault(group, rate)
        results.append({"group": group, "variant": variant, "ngrams": ngrams,
                        "cpu_s": None if cpu is None else round(cpu, 3), "wall_s": None if wall is None else round(wall, 3),
                        "ngrams_per_s": None if rate is None else round(rate),
                        "vs_baseline": None if rate is None else round(rate / base[group], 2),
                        "bytes_per_ngram": None if nbytes is None else round(nbytes / ngrams, 2)})
    summary = {"words": args.words, "n": N, "fp_rate": FP_RATE, "m": ours.m, "k": ours.k,
               "false_positives": {"ours": our_hits, "rbloom": their_hits, "queries": len(queries)},
               "results": results}
    print(f"{'group':<9}{'variant':<30}{'n-grams/s':>18}{'x baseline':>12}{'bytes/n-gram':>14}")
    for r in results:
        rate = "" if r["ngrams_per_s"] is None else f"{r['ngrams_per_s']:,}"
        ratio = "" if r["vs_baseline"] is None else f"{r['vs_baseline']:.2f}"
        per = "" if r["bytes_per_ngram"] is None else f"{r['bytes_per_ngram']:.2f}"
        print(f"{r['group']:<9}{r['variant']:<30}{rate:>18}{ratio:>12}{per:>14}")
    print(f"{len(train):,} 8-grams, m={ours.m:,} bits, k={ours.k}; false positives among "
          f"{len(queries):,} absent 8-grams: ours {our_hits}, rbloom {their_hits}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
