"""The n-grams overlap is measured on: GPT-2 §4's words, hashed with `core.text`.

GPT-2 measured overlap on 8-grams of text "normalized to lower-case alphanumeric words
separated by single spaces" (`core.text.lowercase_alphanumeric_words`). The n-grams are hashed
to 64 bits with `core.text.ngram_hashes` over `core.text.word_hashes`. Both choices are
recorded in every filter file (`NORMALISATION`, `HASH_SCHEME`), and a filter made with others
is refused, since its bits would answer for other n-grams.
"""

from __future__ import annotations

import numpy as np

from core.text import (
    LOWERCASE_ALPHANUMERIC_NORMALISATION,
    NGRAM_HASH_SCHEME,
    lowercase_alphanumeric_words,
    ngram_hashes,
    word_hashes,
)

NORMALISATION = LOWERCASE_ALPHANUMERIC_NORMALISATION
HASH_SCHEME = NGRAM_HASH_SCHEME


def text_ngram_hashes(text: str, n: int) -> np.ndarray:
    """uint64 hashes of the word n-grams of `text`, in text order (none if it has fewer than n words)."""
    return ngram_hashes(word_hashes(" ".join(lowercase_alphanumeric_words(text))), n)


def ngram_count(text: str, n: int) -> int:
    """How many word n-grams `text` has (without hashing them)."""
    return max(0, len(lowercase_alphanumeric_words(text)) - n + 1)
