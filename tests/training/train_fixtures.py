"""Small real inputs for the trainer tests: a BPE tokenizer learned from a synthetic corpus
and token shards in the tokenize stage's layout, written directly with numpy."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest

from training.config import TokenizerConfig
from training.tokenizer import train_tokenizer
from training.logging_utils import read_jsonl_log
from webtext.config import load_config

SUBJECTS = ["the cat", "a dog", "the old man", "my sister", "the red fox", "our teacher", "a small bird"]
VERBS = ["sat on", "looked at", "ran past", "jumped over", "walked to", "found", "painted"]
OBJECTS = ["the mat", "a tree", "the river", "the house", "a green box", "the garden", "the moon"]


def synthetic_documents(n: int, seed: int = 0) -> list[str]:
    """Simple grammatical sentences: enough structure for a tiny model's loss to fall fast."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        sentences = [f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}."
                     for _ in range(rng.randint(3, 8))]
        docs.append(" ".join(s[0].upper() + s[1:] for s in sentences))
    return docs


def make_tokenizer(directory: Path):
    tokenizer = train_tokenizer(synthetic_documents(300, seed=99), TokenizerConfig(vocab_size=320, min_frequency=1))
    tokenizer.save(directory)
    return tokenizer


def write_token_shards(root: Path, tokenizer, splits: dict[str, list[list[str]]], dtype=np.uint16) -> Path:
    """TOKENS/<split>/shard-NNNNN.bin (+ manifest.json) from documents grouped into shards."""
    manifest_splits = {}
    for split, shards in splits.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        entries = []
        for number, docs in enumerate(shards):
            ids = []
            for doc in docs:
                ids += tokenizer.encode(doc) + [tokenizer.eot_id]
            data = np.asarray(ids, dtype=dtype).tobytes()
            name = f"{split}/shard-{number:05d}.bin"
            (root / name).write_bytes(data)
            entries.append({"file": name, "tokens": len(ids), "documents": len(docs),
                            "sha256": hashlib.sha256(data).hexdigest()})
        manifest_splits[split] = {"shards": entries}
    manifest = {"dtype": np.dtype(dtype).name, "vocab_size": tokenizer.vocab_size, "eot_id": tokenizer.eot_id,
                "tokenizer_sha256": tokenizer.sha256(), "splits": manifest_splits}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


def tiny_config(dropout: float = 0.1, **train_overrides):
    """A 2-layer, 64-wide GPT on 32-token windows; 1 thread so runs are bit-reproducible.
    Dropout is on by default so that exact resume depends on the restored RNG states."""
    overrides = [
        "model.preset=tiny", "model.n_layer=2", "model.n_head=2", "model.n_embd=64", "model.block_size=32",
        f"model.dropout={dropout}",
        "train.micro_batch_size=4", "train.batch_tokens=256", "train.max_steps=12", "train.warmup_steps=2",
        "train.learning_rate=0.003", "train.min_lr=0.0003", "train.log_interval=1", "train.eval_interval=6",
        "train.eval_batches=2", "train.checkpoint_interval=0", "train.num_threads=1", "train.peak_flops=1e9",
        "train.tensorboard=false", "train.device=cpu",
    ]
    overrides += [f"train.{k}={v}" for k, v in train_overrides.items()]
    return load_config(None, overrides), overrides


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """(tokens dir, tokenizer dir) with a 2-shard train split and a val split."""
    root = tmp_path_factory.mktemp("corpus")
    tokenizer = make_tokenizer(root / "tokenizer")
    docs = synthetic_documents(400, seed=1)
    write_token_shards(root / "tokens", tokenizer, {"train": [docs[:200], docs[200:370]], "val": [docs[370:]]})
    return root / "tokens", root / "tokenizer"


@pytest.fixture(scope="session")
def trained_run(corpus, tmp_path_factory):
    """A tiny GPT trained for 80 steps on the synthetic grammar: it has learned the sentence frame."""
    from training.train import train

    tokens, tokenizer = corpus
    config, _ = tiny_config(dropout=0.0, max_steps=80, eval_interval=0, learning_rate=0.01, min_lr=0.001, warmup_steps=5)
    run = tmp_path_factory.mktemp("trained") / "run"
    train(config.train, config.model, tokens, run, tokenizer_dir=tokenizer)
    return run


@pytest.fixture(scope="session")
def straight_run(corpus, tmp_path_factory):
    """12 uninterrupted steps: the reference for the resume tests."""
    from training.train import train

    tokens, tokenizer = corpus
    config, _ = tiny_config()
    run = tmp_path_factory.mktemp("straight") / "run"
    result = train(config.train, config.model, tokens, run, tokenizer_dir=tokenizer)
    return result, read_jsonl_log(run / "log.jsonl")


def curve(records):
    """What must match bit for bit between runs: every train/val loss (and lr, grad norm)."""
    return [(r["kind"], r["step"], r["loss"], r.get("lr"), r.get("grad_norm"), r.get("bits_per_byte"))
            for r in records if r["kind"] in ("train", "val")]
