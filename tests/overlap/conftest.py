"""A small dataset in the build's format (shards + manifest) and eval files with known overlap."""

import hashlib
import json
import random
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.section import config_hash
from core.stats import StageCounts
from core.text import lowercase_alphanumeric_words
from shards.cli import dataset_config
from shards.manifest import STAGE_CHAIN, make_manifest, write_manifest
from shards.writer import SCHEMA, schema_json, shard_bytes, shard_name
from webtext.config import load_config

WORDS = [f"w{i}" for i in range(5000)]


def random_text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def brute_ngrams(text: str, n: int) -> list[tuple]:
    words = lowercase_alphanumeric_words(text)
    return [tuple(words[i: i + n]) for i in range(len(words) - n + 1)]


def row(split: str, i: int, text: str) -> dict:
    return {
        "id": f"{split}{i:04d}", "url": f"http://site{i % 3}.example/{i}", "final_url": f"http://site{i % 3}.example/{i}",
        "domain": f"site{i % 3}.example", "title": f"doc {i}", "text": text, "n_chars": len(text),
        "n_words": len(text.split()), "lang": "en", "lang_confidence": 0.99, "score": 3, "post_ids": ["a1"],
        "subreddits": ["test"], "created_utc": 1_500_000_000, "crawl_time": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "warc_file": "crawl-0.warc.gz", "warc_offset": i * 100, "extractor": "trafilatura", "dup_cluster": f"{split}{i:04d}",
    }


def write_dataset(root, splits: dict[str, list[str]]) -> None:
    """Shards of 2 files per split (row groups of 4) and a manifest `webtext verify` accepts."""
    shards = []
    for split, docs in splits.items():
        rows = [row(split, i, t) for i, t in enumerate(docs)]
        for index, chunk in enumerate([rows[: len(rows) // 2], rows[len(rows) // 2:]]):
            name = shard_name(split, index, 2)
            data = shard_bytes(pa.Table.from_pylist(chunk, schema=SCHEMA), 4, 3)
            (root / split).mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
            shards.append({"path": name, "split": split, "rows": len(chunk), "bytes": len(data),
                           "sha256": hashlib.sha256(data).hexdigest()})
    total = sum(len(d) for d in splits.values())
    counts = {stage: StageCounts(stage, total, total) for stage in STAGE_CHAIN}
    content = dataset_config(load_config())
    write_manifest(str(root), make_manifest(content.model_dump(mode="json"), config_hash(content), shards,
                                            schema_json(SCHEMA), counts, []))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """(root, train docs, eval docs): train copies eval doc 0 whole and 15 words of eval doc 1."""
    rng = random.Random(5)
    root = tmp_path_factory.mktemp("overlap")
    eval_docs = [random_text(rng, 40) for _ in range(6)]
    train_docs = [random_text(rng, 60) for _ in range(30)]
    train_docs[3] = "Intro text here. " + eval_docs[0].upper() + " and then more."  # a full copy
    train_docs[7] = random_text(rng, 20) + " " + " ".join(eval_docs[1].split()[:15])  # 15 words of eval 1
    train_docs[9] = " ".join(eval_docs[2].split()[:7]) + " " + random_text(rng, 30)  # 7 words: no 8-gram
    train_docs[12] = "too short"
    write_dataset(root / "data", {"train": train_docs, "val": [random_text(rng, 50) for _ in range(5)] + [eval_docs[5]],
                                  "test": [random_text(rng, 50) for _ in range(4)]})
    (root / "eval").mkdir()
    (root / "eval" / "a.txt").write_text("\n".join(eval_docs[:2]) + "\n\n", encoding="utf-8")
    (root / "eval" / "b.jsonl").write_text("\n".join(json.dumps({"question": t, "label": 1}) for t in eval_docs[2:4]) + "\n")
    pq.write_table(pa.table({"question": eval_docs[4:]}), root / "eval" / "c.parquet")
    return root, train_docs, eval_docs
