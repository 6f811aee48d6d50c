"""Word n-gram hashing and the text normalisations it runs on (Beam-free; numpy).

One 64-bit mixer (`mix64`), one word hash (`word_hashes`) and one n-gram hash (`ngram_hashes`)
serve every stage that compares texts by their word n-grams. What a word is differs between
the stages, on purpose, so each normalisation is a named function here:

- `normalize_for_exact` (dedup): what counts as "the same text" for exact and near dedup.
  Aggressive, because a copy with other quotes, case or ligatures is still a copy.
- `lowercase_alphanumeric_words` (overlap): GPT-2 §4's "lower-case alphanumeric words", which
  contamination numbers must follow to be comparable with the paper's.
- The quality rules (extract/quality.py) take words as written (`str.split`): a page that
  repeats a line with other capitalisation is not repetitive. They compare n-grams exactly
  within one document, so they need no hash.

Hashes are 64 bits: two different n-grams of a corpus of N collide with probability ~N/2^64,
negligible next to a Bloom filter's false-positive rate or MinHash's estimation error. Nothing
depends on Python's salted `hash()`, so every process of a distributed run agrees.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np

# Recorded in files that store these hashes (overlap's Bloom filters), which refuse any other.
NGRAM_HASH_SCHEME = (
    "word: sum (byte+1)*B^i over its UTF-8 bytes + length*0xD6E8FEB86659FD93, splitmix64; "
    "n-gram: polynomial base B over word hashes, splitmix64; B=0x9E3779B97F4A7C15, mod 2**64"
)

# Odd 64-bit multiplier of both polynomials (2^64 / golden ratio; any odd constant is invertible mod 2^64).
_BASE = 0x9E3779B97F4A7C15
_LENGTH_SALT = np.uint64(0xD6E8FEB86659FD93)
_SPACE = 32
_POWER_CACHE_LIMIT = 1 << 20
_BLOCK_BYTES = 1 << 18  # bytes of text hashed per numpy pass (a longer text goes in blocks)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that spreads every input bit over the output."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


# ---------------------------------------------------------------------------------------------
# Normalisations

# ASCII text goes through str.translate (fast only for ASCII). For other text the distinct
# characters are classified once each and blanked with one regex; combining marks (e.g. most
# Indic vowel signs) are not alphanumeric to Python but belong to words, so they are kept.
_ASCII_NON_TEXT = str.maketrans({c: " " for c in map(chr, range(128)) if not (c.isalnum() or c.isspace())})


@functools.lru_cache(maxsize=65536)
def _is_text_char(char: str) -> bool:
    return char.isalnum() or char.isspace() or unicodedata.category(char).startswith("M")


def normalize_for_exact(text: str) -> str:
    """Dedup's normal form: NFKC, case-folded, punctuation/symbols -> space, whitespace collapsed.

    NFKC makes compatibility variants (ligatures, full-width forms) the same text; every
    character that is not a letter, digit, combining mark or whitespace (punctuation, symbols,
    emoji, control characters) becomes a space; runs of whitespace become one space; the ends
    are stripped. Words are separated by single spaces, as `word_hashes` expects.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    if text.isascii():
        text = text.translate(_ASCII_NON_TEXT)
    else:
        non_text = "".join(sorted(c for c in set(text) if not _is_text_char(c)))
        if non_text:
            text = re.sub(f"[{re.escape(non_text)}]", " ", text)
    return " ".join(text.split())


# GPT-2 §4: a word is a maximal run of Unicode letters and digits (str.isalnum; "_" separates).
_ALPHANUMERIC_WORD = re.compile(r"[^\W_]+")
LOWERCASE_ALPHANUMERIC_NORMALISATION = "lower-case; words = runs of Unicode letters/digits; single spaces (GPT-2 §4)"


def lowercase_alphanumeric_words(text: str) -> list[str]:
    """GPT-2 §4's words: runs of Unicode letters and digits, lower-cased (no accent folding).

    "don't" is "don", "t"; "Straße" and "東京" stay words; "café" != "cafe".
    """
    return [word.lower() for word in _ALPHANUMERIC_WORD.findall(text)]


def alphanumeric_word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans in `text` of the words of `lowercase_alphanumeric_words(text)`, in order."""
    return [match.span() for match in _ALPHANUMERIC_WORD.finditer(text)]


# ---------------------------------------------------------------------------------------------
# Hashing


def _build_power_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    inverse = pow(_BASE, -1, 1 << 64)
    powers = np.full(n, _BASE, dtype=np.uint64)
    powers[0] = 1
    inverse_powers = np.full(n, inverse, dtype=np.uint64)
    inverse_powers[0] = 1
    return np.cumprod(powers, dtype=np.uint64), np.cumprod(inverse_powers, dtype=np.uint64)


_POWERS: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _power_tables(n: int) -> tuple[np.ndarray, np.ndarray]:
    """B^i and B^-i (mod 2^64) for i < n; tables up to 2^20 entries are cached."""
    size = max(n, 1)
    if size > _POWER_CACHE_LIMIT:
        return _build_power_tables(size)
    cached = _POWERS.get("tables")
    if cached is None or len(cached[0]) < size:
        capacity = min(_POWER_CACHE_LIMIT, max(4096, 1 << (size - 1).bit_length()))
        cached = _POWERS["tables"] = _build_power_tables(capacity)
    return cached[0][:size], cached[1][:size]


def _span_hashes(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Hashes of the byte spans [starts, ends) of `data` (the word hash of `word_hashes`)."""
    size = len(data)
    powers, inverse_powers = _power_tables(size + 1)
    prefix = np.zeros(size + 1, dtype=np.uint64)
    np.cumsum((data.astype(np.uint64) + np.uint64(1)) * powers[:size], out=prefix[1:])
    hashes = (prefix[ends] - prefix[starts]) * inverse_powers[starts]
    hashes += (ends - starts).astype(np.uint64) * _LENGTH_SALT
    return mix64(hashes)


def word_hashes(text: str) -> np.ndarray:
    """One uint64 hash per word of `text`, whose words are separated by single spaces.

    Every word is hashed from its UTF-8 bytes, all words of the text at once: with prefix sums
    P[i] = sum_{t<i} (byte_t + 1) * B^t, the word at bytes [s, e) is (P[e] - P[s]) * B^-s, plus
    its length times a salt, then `mix64`. A word's hash does not depend on where it stands, so
    a long text is hashed in blocks of whole words (bounded temporaries, cached powers of B).
    The empty text has no words.
    """
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    if not len(data):
        return np.zeros(0, dtype=np.uint64)
    spaces = np.flatnonzero(data == _SPACE)
    starts = np.concatenate(([0], spaces + 1))
    ends = np.concatenate((spaces, [len(data)]))
    if len(data) <= _BLOCK_BYTES:
        return _span_hashes(data, starts, ends)
    hashes = np.empty(len(starts), dtype=np.uint64)
    first = 0
    while first < len(starts):
        offset = starts[first]  # whole words up to _BLOCK_BYTES further, at least one
        last = max(first + 1, int(np.searchsorted(ends, offset + _BLOCK_BYTES, side="right")))
        block = data[offset: ends[last - 1]]
        hashes[first:last] = _span_hashes(block, starts[first:last] - offset, ends[first:last] - offset)
        first = last
    return hashes


def ngram_hashes(word_keys: np.ndarray, n: int) -> np.ndarray:
    """uint64 hashes of the len(word_keys) - n + 1 word n-grams, in text order (none if fewer words).

    `word_keys` holds one uint64 per word, equal for equal words: `word_hashes` of the text, or
    ids from a per-document vocabulary. The n-gram of words i..i+n-1 hashes to
    mix64(sum_j key_{i+j} * B^(n-1-j)) mod 2^64, so word order matters.
    """
    if n < 1:
        raise ValueError(f"n-gram length must be >= 1, got {n}")
    count = len(word_keys) - n + 1
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    keys = np.asarray(word_keys, dtype=np.uint64)
    hashes = keys[:count].copy()
    base = np.uint64(_BASE)
    for offset in range(1, n):
        hashes *= base  # wraps mod 2^64
        hashes += keys[offset: offset + count]
    return mix64(hashes)
