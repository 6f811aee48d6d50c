"""Exact and MinHash near-duplicate removal as Beam transforms (see docs in each module).

    docs | ExactDedup(cfg.dedup) | NearDedup(cfg.dedup)

Both take and return document dicts (`id`, `text`, `score`, `created_utc`, `url`, ...); the
survivors carry `dup_cluster`. Counts: stages `dedup_exact` and `dedup_near`.

Names are imported on first use, so that loading the config (`dedup.config`) or the text
functions does not import Apache Beam.
"""

import importlib

_EXPORTS = {
    "DedupConfig": "dedup.config",
    "ExactDedup": "dedup.exact",
    "NearDedup": "dedup.near",
    "NearDuplicateClusters": "dedup.near",
    "lsh_diagnostics": "dedup.near",
    "minhash_signatures": "dedup.minhash",
    "normalize_for_exact": "dedup.text",
    "shingles": "dedup.text",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'dedup' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
