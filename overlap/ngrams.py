"""Text normalisation and 64-bit n-gram hashes shared by the filter, report and decontamination.

GPT-2 (§4) measured overlap on 8-grams of text "normalized to lower-case alphanumeric words
separated by single spaces". Words here are maximal runs of Unicode letters and digits of the
lower-cased text (so "don't" is "don t" and "Straße" stays one word). An n-gram's hash is a
polynomial over per-word blake2b hashes, finished with the splitmix64 mixer, all vectorised in
numpy: 64 bits make a false match between two different n-grams (~N/2**64) negligible next to
the Bloom filter's own false-positive rate.
"""

from __future__ import annotations

import functools
import hashlib
import re

import numpy as np

NORMALISATION = "lower-case; words = runs of Unicode letters/digits; single spaces (GPT-2 §4)"
HASH_SCHEME = "blake2b-64 per word, polynomial base 0x100000001b3 mod 2**64, splitmix64 finish"
_WORD = re.compile(r"[^\W_]+")
_BASE = np.uint64(0x100000001B3)


def normalize_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def normalize_text(text: str) -> str:
    return " ".join(normalize_words(text))


@functools.lru_cache(maxsize=1 << 20)
def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: spreads every input bit over the whole 64-bit output."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def ngram_count(words: list[str], n: int) -> int:
    return max(0, len(words) - n + 1)


def ngram_hashes(words: list[str], n: int) -> np.ndarray:
    """uint64 hashes of the len(words)-n+1 word n-grams, in text order."""
    count = ngram_count(words, n)
    if count == 0:
        return np.zeros(0, dtype=np.uint64)
    w = np.fromiter((_word_hash(word) for word in words), dtype=np.uint64, count=len(words))
    h = np.zeros(count, dtype=np.uint64)
    for i in range(n):
        h = h * _BASE + w[i: i + count]  # wraps mod 2**64
    return mix64(h)
