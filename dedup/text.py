"""Exact keys and word shingles, the inputs of exact and near dedup.

Both start from `core.text.normalize_for_exact`, which decides what counts as "the same text".
Two documents are exact duplicates when their normalised texts are equal, decided by the
SHA-256 of the normalised UTF-8 (`exact_key`).

`shingles` are the k-word n-grams of the normalised text, hashed to 64 bits with
`core.text.ngram_hashes` over `core.text.word_hashes`. A document with fewer than k words has
exactly one shingle, the hash of all its words (the empty document: `EMPTY_TEXT_SHINGLE`), so
short documents still match their exact copies and nothing else.
"""

from __future__ import annotations

import hashlib

import numpy as np

from core.text import ngram_hashes, normalize_for_exact, word_hashes

# The one shingle of a document without words (its normalised text is empty).
EMPTY_TEXT_SHINGLE = np.zeros(1, dtype=np.uint64)


def exact_key(text: str) -> bytes:
    """SHA-256 of the normalised text: equal keys <=> exact duplicates."""
    return hashlib.sha256(normalize_for_exact(text).encode("utf-8")).digest()


def shingles(text: str, k: int) -> np.ndarray:
    """Sorted unique uint64 hashes of the k-word shingles of the normalised text."""
    if k < 1:
        raise ValueError(f"shingle size must be >= 1, got {k}")
    words = word_hashes(normalize_for_exact(text))
    if not len(words):
        return EMPTY_TEXT_SHINGLE.copy()
    hashes = np.sort(ngram_hashes(words, min(k, len(words))))
    return hashes[np.concatenate(([True], hashes[1:] != hashes[:-1]))]  # np.unique, several times faster


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique shingle-hash arrays."""
    if not len(a) and not len(b):
        return 1.0
    shared = len(np.intersect1d(a, b, assume_unique=True))
    return shared / (len(a) + len(b) - shared)
