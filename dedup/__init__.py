"""Exact and MinHash near-duplicate removal as Beam transforms (see docs in each module).

    docs | ExactDedup(dedup_config) | NearDedup(dedup_config)      # dedup.exact, dedup.near

Both take and return document dicts (`id`, `text`, `score`, `created_utc`, `url`, ...); the
survivors carry `dup_cluster`. Counts: stages `dedup_exact` and `dedup_near`.
"""
