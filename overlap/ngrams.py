"""Text normalisation and 64-bit n-gram hashes shared by the filter, report and decontamination.

GPT-2 (§4) measured overlap on 8-grams of text "normalized to lower-case alphanumeric words
separated by single spaces". Words here are maximal runs of Unicode letters and digits
(`str.isalnum`, so "don't" is "don t", "Straße" and "東京" stay words, "_" separates), each
lower-cased (`str.lower`, no accent folding: "café" != "cafe"). An n-gram's hash is a
polynomial over per-word blake2b hashes, finished with the splitmix64 mixer, all vectorised in
numpy: 64 bits make a false match between two different n-grams (~N/2**64) negligible next to
the Bloom filter's own false-positive rate.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

NORMALISATION = "lower-case; words = runs of Unicode letters/digits; single spaces (GPT-2 §4)"
HASH_SCHEME = "blake2b-64 per word, polynomial base 0x100000001b3 mod 2**64, splitmix64 finish"
_WORD = re.compile(r"[^\W_]+")
_BASE = np.uint64(0x100000001B3)


def normalize_words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the words of `normalize_words(text)` in the original text (for cutting)."""
    return [m.span() for m in _WORD.finditer(text)]


def normalize_text(text: str) -> str:
    return " ".join(normalize_words(text))


_WORD_HASHES: dict[str, int] = {}  # cache: frequent words repeat; cleared when it reaches _CACHE_WORDS
_CACHE_WORDS = 1 << 20


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def word_hashes(words: list[str]) -> np.ndarray:
    missing = set(words).difference(_WORD_HASHES)
    if len(_WORD_HASHES) + len(missing) > _CACHE_WORDS:
        _WORD_HASHES.clear()
        missing = set(words)
    _WORD_HASHES.update((word, _word_hash(word)) for word in missing)
    return np.fromiter(map(_WORD_HASHES.__getitem__, words), dtype=np.uint64, count=len(words))


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
    w = word_hashes(words)
    h = np.zeros(count, dtype=np.uint64)
    for i in range(n):
        h = h * _BASE + w[i: i + count]  # wraps mod 2**64
    return mix64(h)
