"""Document ids, the deterministic train/val/test split and the shard a document lands in.

Everything here is a pure function of the document's normalised URL (`url_key`), so a
document keeps its id, split and shard across reruns, runners and worker counts.

Split rule: each document gets a salted hash h in [0, 1). It goes to val if h < val_fraction,
else to test if h < val_fraction + test_fraction, else to train. Because a tiny corpus can
leave val or test empty, the `min_val_docs` documents with the smallest h always go to val
and then the `min_test_docs` smallest of the rest to test, but only when the corpus has
more documents than min_val_docs + min_test_docs (train is never emptied for them).
"""

from __future__ import annotations

import hashlib
import math
from typing import Callable

import apache_beam as beam
from apache_beam.pvalue import AsSingleton

from shards.config import BuildConfig

SPLITS = ("train", "val", "test")


def doc_id(url_key: str) -> str:
    """Stable document id: the first 16 hex digits of sha256(url_key)."""
    return hashlib.sha256(url_key.encode("utf-8")).hexdigest()[:16]


def _unit_hash(*parts: str) -> float:
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_hash(doc_id_: str, salt: str) -> float:
    return _unit_hash(salt, doc_id_)


def shard_index(doc_id_: str, num_shards: int) -> int:
    return int(_unit_hash("shard", doc_id_) * num_shards)


def num_shards(rows: int, docs_per_shard: int) -> int:
    return max(1, math.ceil(rows / docs_per_shard))


def _in_split(h: float, limit: float, smallest: list[float], forced: bool) -> bool:
    return h < limit or (forced and bool(smallest) and h <= smallest[-1])


class AssignSplits(beam.PTransform):
    """document dicts -> (split, document) by the rule in the module docstring."""

    def __init__(self, cfg: BuildConfig):
        super().__init__()
        self.cfg = cfg

    def expand(self, docs):
        cfg = self.cfg
        salt = cfg.split_salt
        keyed = docs | "SplitHash" >> beam.Map(lambda d: (split_hash(d["id"], salt), d))
        hashes = keyed | "Hashes" >> beam.Keys()
        total = hashes | "CountDocs" >> beam.combiners.Count.Globally()
        forced = total | "ForceMinimums" >> beam.Map(lambda n: n > cfg.min_val_docs + cfg.min_test_docs)
        smallest_val = hashes | "SmallestForVal" >> beam.combiners.Top.Smallest(cfg.min_val_docs)

        def is_val(item, smallest, force):
            return _in_split(item[0], cfg.val_fraction, smallest, force)

        val = keyed | "Val" >> beam.Filter(is_val, AsSingleton(smallest_val), AsSingleton(forced))
        rest = keyed | "NotVal" >> beam.Filter(
            lambda item, s, f: not is_val(item, s, f), AsSingleton(smallest_val), AsSingleton(forced))
        smallest_test = (rest | "RestHashes" >> beam.Keys()
                         | "SmallestForTest" >> beam.combiners.Top.Smallest(cfg.min_test_docs))
        test_limit = cfg.val_fraction + cfg.test_fraction

        def split_of_rest(item, smallest, force):
            return "test" if _in_split(item[0], test_limit, smallest, force) else "train"

        rest_split = rest | "TestOrTrain" >> beam.Map(
            lambda item, s, f: (split_of_rest(item, s, f), item[1]),
            AsSingleton(smallest_test), AsSingleton(forced))
        val_split = val | "TagVal" >> beam.Map(lambda item: ("val", item[1]))
        return (val_split, rest_split) | "AllSplits" >> beam.Flatten()


def _by_id(doc: dict) -> str:
    return doc["id"]


class AssignShards(beam.PTransform):
    """(split, document) -> ((split, shard_index, num_shards), document).

    The shard count of a split follows from its size and `docs_per_shard`, so it is known
    only after counting; the shard of a document is then a hash of its `shard_key` (the id;
    the audit table, whose rows may lack one, passes its own)."""

    def __init__(self, docs_per_shard: int, shard_key: Callable[[dict], str] = _by_id):
        super().__init__()
        self.docs_per_shard = docs_per_shard
        self.shard_key = shard_key

    def expand(self, split_docs):
        per_split = (split_docs | "SplitKeys" >> beam.Keys()
                     | "CountPerSplit" >> beam.combiners.Count.PerElement()
                     | "AsDict" >> beam.combiners.ToDict())
        docs_per_shard, shard_key = self.docs_per_shard, self.shard_key

        def key(item, counts):
            split, doc = item
            n = num_shards(counts[split], docs_per_shard)
            return (split, shard_index(shard_key(doc), n), n), doc

        return split_docs | "ShardKey" >> beam.Map(key, AsSingleton(per_split))
