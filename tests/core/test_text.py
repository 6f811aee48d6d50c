"""core.text: the named normalisations, the word and n-gram hashes, and the one 64-bit mixer."""

import numpy as np
import pytest

from core.text import (
    alphanumeric_word_spans,
    lowercase_alphanumeric_words,
    mix64,
    ngram_hashes,
    normalize_for_exact,
    word_hashes,
)

BASE = 0x9E3779B97F4A7C15
LENGTH_SALT = 0xD6E8FEB86659FD93
MASK = (1 << 64) - 1


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("Hello,  World!", "hello world"),
        ("  tabs\tand\nnewlines \r\n ", "tabs and newlines"),
        ("ﬁne Ｆｕｌｌ", "fine full"),  # NFKC: ligature and full-width forms
        ("Straße STRASSE", "strasse strasse"),  # case folding, not just lower()
        ("don't_stop-me", "don t stop me"),
        ("“quoted” — €5 😀 a\x00b", "quoted 5 a b"),  # non-ASCII punctuation, symbols, control chars
        ("नमस्ते दुनिया", "नमस्ते दुनिया"),  # combining marks are part of words
        ("", ""),
        ("!!! ...", ""),
    ],
)
def test_normalize_for_exact(raw, normalized):
    assert normalize_for_exact(raw) == normalized


@pytest.mark.parametrize("text, expected", [
    ("Hello, World!", ["hello", "world"]),
    ("  It's   2019—OK?\n\tYes.", ["it", "s", "2019", "ok", "yes"]),
    ("Straße ÜBER café", ["straße", "über", "café"]),  # non-ASCII letters are letters; no accent folding
    ("東京 2020 ٣٤", ["東京", "2020", "٣٤"]),  # any script's letters and digits
    ("snake_case and-dash", ["snake", "case", "and", "dash"]),
    ("", []),
    ("!!! ... ©®", []),
])
def test_lowercase_alphanumeric_words(text, expected):
    assert lowercase_alphanumeric_words(text) == expected


def test_word_spans_point_at_the_alphanumeric_words():
    text = "  Don't STOP—now!"
    spans = alphanumeric_word_spans(text)
    assert [text[a:b].lower() for a, b in spans] == lowercase_alphanumeric_words(text) == ["don", "t", "stop", "now"]


def _reference_mix64(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def _reference_word_hash(word: str) -> int:
    data = word.encode("utf-8")
    h = sum((byte + 1) * pow(BASE, i, 1 << 64) for i, byte in enumerate(data)) + len(data) * LENGTH_SALT
    return _reference_mix64(h & MASK)


def test_mix64_is_splitmix64():
    # splitmix64 seeded with 0: its first output is the finaliser of the golden-ratio increment
    assert int(mix64(np.array([BASE], dtype=np.uint64))[0]) == 0xE220A8397B1DCDAF
    values = np.arange(100_000, dtype=np.uint64)
    assert len(np.unique(mix64(values))) == len(values)  # a bijection
    assert [int(v) for v in mix64(values[:50])] == [_reference_mix64(int(v)) for v in values[:50]]


def test_word_hashes_follow_the_documented_formula():
    text = "the café 東京 a bb x"
    assert [int(h) for h in word_hashes(text)] == [_reference_word_hash(w) for w in text.split(" ")]
    assert len(word_hashes("")) == 0
    assert word_hashes("a a")[0] == word_hashes("a a")[1] != word_hashes("aa")[0]


def test_long_texts_hash_like_their_pieces():
    """A long text is hashed in blocks of whole words; a word's hash never depends on its position."""
    words = [f"w{i}" for i in range(250_000)]  # 1.6 MB of bytes: several blocks, beyond the cached powers
    long = word_hashes(" ".join(words))
    pieces = np.concatenate([word_hashes(" ".join(words[i: i + 1000])) for i in range(0, len(words), 1000)])
    assert np.array_equal(long, pieces)
    giant = "x" * 1_500_000  # one word longer than a block and than the cached power tables
    assert np.array_equal(word_hashes(f"a {giant} b"), np.concatenate([word_hashes("a"), word_hashes(giant),
                                                                     word_hashes("b")]))
    assert word_hashes(giant)[0] != word_hashes(giant[1:])[0]


def test_ngram_hashes_identify_word_sequences():
    keys = word_hashes(" ".join(lowercase_alphanumeric_words("The cat sat on the mat, the cat sat on the MAT")))
    hashes = ngram_hashes(keys, 3)
    assert len(hashes) == 10 and hashes.dtype == np.uint64
    assert hashes[0] == hashes[6] and hashes[1] == hashes[7]  # "the cat sat", "cat sat on" repeat
    assert len(set(hashes.tolist())) == 6
    assert len(ngram_hashes(word_hashes("only two"), 3)) == 0
    assert ngram_hashes(word_hashes("a b"), 2)[0] != ngram_hashes(word_hashes("b a"), 2)[0]
    assert ngram_hashes(word_hashes("ab c"), 2)[0] != ngram_hashes(word_hashes("a bc"), 2)[0]
    with pytest.raises(ValueError, match="n-gram length"):
        ngram_hashes(keys, 0)


def test_ngram_hashes_follow_the_documented_formula():
    keys = np.array([3, 1, 4, 1, 5, 9], dtype=np.uint64)
    expected = [_reference_mix64((3 * BASE * BASE + 1 * BASE + 4) & MASK)]
    assert int(ngram_hashes(keys, 3)[0]) == expected[0]
    assert [int(h) for h in ngram_hashes(keys, 1)] == [_reference_mix64(k) for k in (3, 1, 4, 1, 5, 9)]
    # per-document word ids work as keys too: equal n-grams, equal hashes
    assert ngram_hashes(keys, 1)[1] == ngram_hashes(keys, 1)[3]


def test_hash_values_are_pinned():
    """Overlap's Bloom filter files store these hashes under NGRAM_HASH_SCHEME: a change to the
    values must come with a new scheme string, so that old filters are refused, not misread."""
    assert [hex(int(h)) for h in word_hashes("a bb")] == ["0x5988cf3c44f4551a", "0x6ad7473bb86987a5"]
    assert [hex(int(h)) for h in ngram_hashes(word_hashes("the cat sat on the mat"), 3)] == [
        "0xedeadcfa1d4f69fb", "0xec127d1d5af2ae0d", "0x8184fd08fe32098", "0xe36c7abe178dd394"]
