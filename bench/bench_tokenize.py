"""Tokenize-stage throughput: what the stage costs over the bare Rust BPE encoder.

    .venv/bin/python -m bench.bench_tokenize [--docs N] [--vocab V]

Writes N synthetic documents (~2 kB each) as Parquet dataset shards, learns a V-token
tokenizer from them, then times, in this process:

- `hf encode_batch_fast`: the `tokenizers` library on texts already in memory (the baseline),
- `Tokenizer.encode_batch`: our wrapper on the same texts (lossless-surrogate handling),
- `tokenize_shards` with 1 and 2 workers: the whole stage (Parquet read, encode, EOT, shard
  cutting, sha256, atomic writes, manifest), the 2-worker run including process start-up.

Rates are input MB (UTF-8) per wall second; ratios compare against the baseline of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer as HFTokenizer

from training.config import TokenizerConfig
from training.tokenize import tokenize_shards
from training.tokenizer import train_tokenizer

RESULTS = Path(__file__).resolve().parent / "results" / "tokenize.json"
WORDS = ("the of and to in is was for on that with as by at from his her it an were are which this be "
         "city council river market school museum library harbor ferry train station report budget "
         "1999 2019 42 3.14 don't it's we're café naïve 東京 😀 — ! ? ; : ( )").split()


def synthetic_texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(200, 500))) + "\n" for _ in range(n)]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--vocab", type=int, default=4096)
    args = parser.parse_args(argv or [])
    texts = synthetic_texts(args.docs)
    megabytes = sum(len(t.encode()) for t in texts) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "dataset" / "train").mkdir(parents=True)
        for f in range(4):
            part = texts[f::4]
            pq.write_table(pa.table({"text": part}), root / "dataset" / "train" / f"part-{f}.parquet",
                           row_group_size=250)
        tokenizer = train_tokenizer(iter(texts), TokenizerConfig(vocab_size=args.vocab))
        tokenizer.save(root / "tok")
        rows = {}
        bare = HFTokenizer.from_str(tokenizer.hf_json())
        rows["hf encode_batch_fast"] = timed(lambda: bare.encode_batch_fast(texts, add_special_tokens=False))
        rows["Tokenizer.encode_batch"] = timed(lambda: tokenizer.encode_batch(texts))
        for workers in (1, 2):
            config = TokenizerConfig(vocab_size=args.vocab, splits=["train"], shard_tokens=1_000_000, workers=workers)
            rows[f"tokenize_shards, {workers} worker{'s' if workers > 1 else ''}"] = timed(
                lambda: tokenize_shards(root / "dataset", root / "tok", root / f"out{workers}", config, progress=False))
        tokens = json.loads((root / "out1" / "manifest.json").read_text())["splits"]["train"]["tokens"]
    base = rows["hf encode_batch_fast"]
    print(f"{args.docs} documents, {megabytes:.1f} MB, {tokens:,} tokens, vocab {tokenizer.vocab_size}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'what':<32}{'seconds':>9}{'MB/s':>9}{'tokens/s':>12}{'x baseline':>12}")
    results = {}
    for name, seconds in rows.items():
        results[name] = {"seconds": seconds, "mb_per_s": megabytes / seconds, "tokens_per_s": tokens / seconds,
                         "time_vs_baseline": seconds / base}
        print(f"{name:<32}{seconds:>9.2f}{megabytes / seconds:>9.2f}{tokens / seconds:>12,.0f}{seconds / base:>12.2f}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"config": {"docs": args.docs, "megabytes": megabytes, "tokens": tokens,
                                              "vocab_size": tokenizer.vocab_size, "cpus": os.cpu_count()},
                                   "results": results}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
