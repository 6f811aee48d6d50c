"""Overlap throughput: n-grams per second into and out of the Bloom filter, against Python sets.

    .venv/bin/python -m bench.bench_overlap [--words N]

Random text of N words (vocabulary 50k) is normalised, hashed into 8-grams and inserted into a
Bloom filter at p = 1e-8, then a second text of N words is queried. The baseline, in the same
process, is the exact approach: a Python set of 8-word tuples (memory per n-gram is reported
too: the set needs ~100+ bytes, the filter ~4.8 bytes at 1e-8).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import tracemalloc
from pathlib import Path

from overlap.bloom import BloomFilter
from overlap.ngrams import ngram_hashes, normalize_words

RESULTS = Path(__file__).resolve().parent / "results" / "overlap.json"
N = 8


def _text(rng: random.Random, vocab: list[str], words: int) -> str:
    return " ".join(rng.choice(vocab) for _ in range(words))


def _timed(fn):
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return time.process_time() - cpu, time.perf_counter() - wall, result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--words", type=int, default=1_000_000)
    args = parser.parse_args(argv or [])
    rng = random.Random(1)
    vocab = [f"word{i}" for i in range(50_000)]
    train_text, eval_text = _text(rng, vocab, args.words), _text(rng, vocab, args.words)
    ngrams = args.words - N + 1
    rows = []

    def bloom_build():
        hashes = ngram_hashes(normalize_words(train_text), N)
        bloom = BloomFilter.for_items(len(hashes), 1e-8, N)
        bloom.add(hashes)
        return bloom

    def set_build():
        words = normalize_words(train_text)
        return {tuple(words[i: i + N]) for i in range(len(words) - N + 1)}

    cpu, wall, exact = _timed(set_build)
    tracemalloc.start()  # memory measured on a second build: tracing slows allocation down
    set_build()
    set_bytes = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rows.append(("build: python set (baseline)", cpu, wall, set_bytes))
    cpu, wall, bloom = _timed(bloom_build)
    rows.append(("build: bloom filter", cpu, wall, bloom.bits.nbytes))

    def set_query():
        words = normalize_words(eval_text)
        return sum(tuple(words[i: i + N]) in exact for i in range(len(words) - N + 1))

    def bloom_query():
        return int(bloom.contains(ngram_hashes(normalize_words(eval_text), N)).sum())

    cpu, wall, set_hits = _timed(set_query)
    rows.append(("query: python set (baseline)", cpu, wall, None))
    cpu, wall, bloom_hits = _timed(bloom_query)
    rows.append(("query: bloom filter", cpu, wall, None))

    results = []
    base = {}
    for name, cpu, wall, nbytes in rows:
        kind = name.split(":")[0]
        rate = ngrams / max(cpu, 1e-9)
        base.setdefault(kind, rate)
        results.append({"variant": name, "ngrams": ngrams, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
                        "ngrams_per_cpu_s": round(rate), "vs_baseline": round(rate / base[kind], 2),
                        "bytes_per_ngram": None if nbytes is None else round(nbytes / ngrams, 1)})
    summary = {"words": args.words, "n": N, "fp_rate": 1e-8, "m": bloom.m, "k": bloom.k,
               "set_hits": set_hits, "bloom_hits": bloom_hits, "results": results}
    print(f"{'variant':<32}{'n-grams/s/core':>16}{'x baseline':>12}{'bytes/n-gram':>14}")
    for r in results:
        per = "" if r["bytes_per_ngram"] is None else f"{r['bytes_per_ngram']:.1f}"
        print(f"{r['variant']:<32}{r['ngrams_per_cpu_s']:>16,}{r['vs_baseline']:>12.2f}{per:>14}")
    print(f"{ngrams:,} 8-grams, m={bloom.m:,} bits, k={bloom.k}; false positives in the query: "
          f"{bloom_hits - set_hits} (set {set_hits}, bloom {bloom_hits})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
