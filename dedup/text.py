"""Text normalisation and word shingles, the inputs of exact and near dedup.

`normalize_for_exact` decides what counts as "the same text": Unicode NFKC (compatibility
variants such as ligatures and full-width forms are the same text), case-folded, every
character that is not a letter, digit, combining mark or whitespace replaced by a space
(punctuation, symbols, emoji, control characters), whitespace runs collapsed to one space,
ends stripped. Two documents are exact duplicates when their normalised texts are equal,
decided by the SHA-256 of the normalised UTF-8 (`exact_key`).

`shingles` hashes every run of k consecutive words of the normalised text to 64 bits with a
polynomial hash over its UTF-8 bytes (mod 2^64, random odd base, MurmurHash3 finalizer),
computed for all shingles of a document at once from byte prefix sums. A document with fewer
than k words (including an empty one) has exactly one shingle: the hash of its whole
normalised text, so short documents still match their exact copies and nothing else.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata

import numpy as np

_SPACE = 32
# Odd 64-bit multiplier of the polynomial hash (any odd constant works; this is 2^64 / phi).
_BASE = 0x9E3779B97F4A7C15
_LENGTH_SALT = np.uint64(0xD6E8FEB86659FD93)
_POWER_CACHE_LIMIT = 1 << 20


# ASCII text goes through str.translate (fast only for ASCII). For other text the distinct
# characters are classified once each and blanked with one regex; combining marks (e.g. most
# Indic vowel signs) are not alphanumeric to Python but belong to words, so they are kept.
_ASCII_NON_TEXT = str.maketrans({c: " " for c in map(chr, range(128)) if not (c.isalnum() or c.isspace())})


@functools.lru_cache(maxsize=65536)
def _is_text_char(char: str) -> bool:
    return char.isalnum() or char.isspace() or unicodedata.category(char).startswith("M")


def normalize_for_exact(text: str) -> str:
    """NFKC, case-folded, punctuation/symbols -> space, whitespace collapsed, stripped."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if text.isascii():
        text = text.translate(_ASCII_NON_TEXT)
    else:
        non_text = "".join(sorted(c for c in set(text) if not _is_text_char(c)))
        if non_text:
            text = re.sub(f"[{re.escape(non_text)}]", " ", text)
    return " ".join(text.split())


def exact_key(text: str) -> bytes:
    """SHA-256 of the normalised text: equal keys <=> exact duplicates."""
    return hashlib.sha256(normalize_for_exact(text).encode("utf-8")).digest()


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: spreads every input bit over the whole output."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _power_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """BASE^i and BASE^-i (mod 2^64) for i < n; tables up to 2^20 entries are cached."""
    size = max(n, 1)
    if size > _POWER_CACHE_LIMIT:
        return _build_power_tables(size)
    cached = _POWERS.get("tables")
    if cached is None or len(cached[0]) < size:
        cap = min(_POWER_CACHE_LIMIT, max(4096, 1 << (size - 1).bit_length()))
        cached = _POWERS["tables"] = _build_power_tables(cap)
    return cached[0][:size], cached[1][:size]


def _build_power_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    inverse = pow(_BASE, -1, 1 << 64)
    powers = np.full(n, _BASE, dtype=np.uint64)
    powers[0] = 1
    inverse_powers = np.full(n, inverse, dtype=np.uint64)
    inverse_powers[0] = 1
    return np.cumprod(powers, dtype=np.uint64), np.cumprod(inverse_powers, dtype=np.uint64)


_POWERS: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def shingles(text: str, k: int) -> np.ndarray:
    """Sorted unique uint64 hashes of the k-word shingles of the normalised text.

    Hash of the byte span [s, e): sum_{s<=t<e} (byte_t + 1) * BASE^(t-s) mod 2^64, taken from
    prefix sums as (P[e] - P[s]) * BASE^-s, mixed with the span length and finalised.
    """
    if k < 1:
        raise ValueError(f"shingle size must be >= 1, got {k}")
    data = np.frombuffer(normalize_for_exact(text).encode("utf-8"), dtype=np.uint8)
    n = len(data)
    spaces = np.flatnonzero(data == _SPACE)
    n_words = len(spaces) + 1 if n else 0
    if n_words < k:
        starts = np.zeros(1, dtype=np.int64)
        ends = np.full(1, n, dtype=np.int64)
    else:
        word_starts = np.concatenate(([0], spaces + 1))
        word_ends = np.concatenate((spaces, [n]))
        starts = word_starts[: n_words - k + 1]
        ends = word_ends[k - 1:]
    powers, inverse_powers = _power_tables(n + 1)
    prefix = np.zeros(n + 1, dtype=np.uint64)
    np.cumsum((data.astype(np.uint64) + np.uint64(1)) * powers[:n], out=prefix[1:])
    hashes = (prefix[ends] - prefix[starts]) * inverse_powers[starts]
    hashes += (ends - starts).astype(np.uint64) * _LENGTH_SALT
    hashes = np.sort(_fmix64(hashes))
    return hashes[np.concatenate(([True], hashes[1:] != hashes[:-1]))]  # np.unique, several times faster


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Exact Jaccard similarity of two sorted unique shingle-hash arrays."""
    if not len(a) and not len(b):
        return 1.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)
