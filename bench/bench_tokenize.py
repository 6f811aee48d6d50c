"""Tokenize-stage throughput: what the stage costs over the bare Rust BPE encoder.

    .venv/bin/python -m bench.bench_tokenize [--docs N] [--vocab V]

Writes N synthetic documents (~2 kB each) as Parquet dataset shards, learns a V-token
tokenizer from them, then times, in this process:

- `hf encode_batch_fast`: the `tokenizers` library on texts already in memory (the baseline),
- `Tokenizer.encode_batch`: our wrapper on the same texts (lossless-surrogate handling),
- `tokenize_shards` with 1 and 2 workers: the whole stage (Parquet read, encode, EOT, shard
  cutting, sha256, atomic writes, manifest), the 2-worker run including process start-up.

Rates are input MB (UTF-8) per wall second; ratios compare against the baseline of the same run.

Then the check every token shard passes before training or eval reads it (`verify_token_shard`:
size, sha256, every id < vocab_size; once per shard per run), timed on a 2^25-token shard (best
of 3, from the page cache: the trainer reads the same bytes anyway), against the trainer's
consumption of tokens in the same run (`bench_train`'s toy setup, our Trainer's step, 2 timed
steps after one warm-up). Target: verification >= 1000x faster, i.e. checking a split costs at
most 0.1% of one epoch over it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer as HFTokenizer

from training.config import TokenizerConfig
from training.data import verify_token_shard
from training.tokenize import tokenize_shards
from training.tokenizer import train_tokenizer

RESULTS = Path(__file__).resolve().parent / "results" / "tokenize.json"
VERIFY_TARGET = 1000.0  # verification tokens/s over the trainer's
VERIFY_SHARD_TOKENS = 1 << 25
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


def verification_vs_trainer(root: Path) -> dict:
    """Tokens/s of `verify_token_shard` and of the trainer's step, measured here, and their ratio."""
    from bench.bench_train import SETUPS, VOCAB, make_trainer, seconds_per_step, write_random_shards

    shard = root / "verify.bin"
    data = np.random.default_rng(0).integers(0, VOCAB, VERIFY_SHARD_TOKENS, dtype=np.uint16).astype("<u2").tobytes()
    shard.write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()
    verify_seconds = min(timed(lambda: verify_token_shard(shard, "uint16", VERIFY_SHARD_TOKENS, sha256, VOCAB))
                         for _ in range(3))
    setup = SETUPS["toy"]
    trainer = make_trainer(setup, write_random_shards(root / "train-tokens"), root / "run", compile_model=False)
    seconds_per_step(trainer._train_step, 1)  # warm-up: first-touch of every buffer
    trainer_tokens_per_s = setup.tokens_per_step / seconds_per_step(trainer._train_step, 2)
    verify_tokens_per_s = VERIFY_SHARD_TOKENS / verify_seconds
    return {"shard_tokens": VERIFY_SHARD_TOKENS, "verify_seconds": verify_seconds,
            "verify_tokens_per_s": verify_tokens_per_s, "verify_mb_per_s": len(data) / verify_seconds / 1e6,
            "trainer_setup": "toy", "trainer_tokens_per_s": trainer_tokens_per_s,
            "verify_vs_trainer": verify_tokens_per_s / trainer_tokens_per_s, "target": VERIFY_TARGET}


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
        verification = verification_vs_trainer(root)
    base = rows["hf encode_batch_fast"]
    print(f"{args.docs} documents, {megabytes:.1f} MB, {tokens:,} tokens, vocab {tokenizer.vocab_size}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'what':<32}{'seconds':>9}{'MB/s':>9}{'tokens/s':>12}{'x baseline':>12}")
    results = {}
    for name, seconds in rows.items():
        results[name] = {"seconds": seconds, "mb_per_s": megabytes / seconds, "tokens_per_s": tokens / seconds,
                         "time_vs_baseline": seconds / base}
        print(f"{name:<32}{seconds:>9.2f}{megabytes / seconds:>9.2f}{tokens / seconds:>12,.0f}{seconds / base:>12.2f}")
    print(f"verify_token_shard: {verification['shard_tokens']:,} tokens in {verification['verify_seconds']:.3f} s = "
          f"{verification['verify_tokens_per_s']:,.0f} tokens/s ({verification['verify_mb_per_s']:,.0f} MB/s); "
          f"trainer (toy) {verification['trainer_tokens_per_s']:,.0f} tokens/s; verification "
          f"{verification['verify_vs_trainer']:,.0f}x faster (target >= {VERIFY_TARGET:,.0f}x)")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"config": {"docs": args.docs, "megabytes": megabytes, "tokens": tokens,
                                              "vocab_size": tokenizer.vocab_size, "cpus": os.cpu_count()},
                                   "results": results, "verification": verification}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
