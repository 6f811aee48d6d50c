"""Exact and MinHash near-duplicate removal as Beam transforms (see docs in each module).

    docs | Deduplicate(dedup_config)                                # dedup.pipeline: both, in order
    docs | ExactDedup(dedup_config) | NearDedup(dedup_config)      # dedup.exact, dedup.near

All take and return document dicts (`id`, `text`, `score`, `created_utc`, `url`, ...); the
survivors carry `dup_cluster` (their own id) and `dup_count` (documents removed as their
duplicates). With `with_dropped=True` they return (kept, dropped): every removed document
labelled with `stage`, `reason` and `duplicate_of`. Counts: stages `dedup_exact` and `dedup_near`.
"""
