"""Normalisation, n-gram hashes and the Bloom filter (size, false positives, file format)."""

import numpy as np
import pytest

from overlap.bloom import BloomError, BloomFilter
from overlap.ngrams import ngram_hashes, normalize_text, normalize_words, word_spans


@pytest.mark.parametrize("text, expected", [
    ("Hello, World!", "hello world"),
    ("  It's   2019—OK?\n\tYes.", "it s 2019 ok yes"),
    ("Straße ÜBER café", "straße über café"),  # non-ASCII letters are letters; no accent folding
    ("東京 2020 ٣٤", "東京 2020 ٣٤"),  # any script's letters and digits
    ("snake_case and-dash", "snake case and dash"),
    ("", ""),
    ("!!! ... ©®", ""),
])
def test_normalisation(text, expected):
    assert normalize_text(text) == expected


def test_word_spans_point_at_the_normalised_words():
    text = "  Don't STOP—now!"
    assert [text[a:b].lower() for a, b in word_spans(text)] == normalize_words(text) == ["don", "t", "stop", "now"]


def test_ngram_hashes_identify_word_sequences():
    a = ngram_hashes(normalize_words("The cat sat on the mat, the cat sat on the MAT"), 3)
    assert len(a) == 10
    assert a[0] == a[6] and a[1] == a[7]  # "the cat sat", "cat sat on" repeat
    assert len(set(a.tolist())) == 6
    assert len(ngram_hashes(["only", "two"], 3)) == 0
    assert ngram_hashes(["a", "b"], 2)[0] != ngram_hashes(["b", "a"], 2)[0]
    assert ngram_hashes(["ab", "c"], 2)[0] != ngram_hashes(["a", "bc"], 2)[0]


def test_filter_size_follows_the_formula():
    bloom = BloomFilter.for_items(1000, 1e-8, 8)
    assert bloom.k == 27 and 38_000 < bloom.m < 38_500  # -N ln p / ln(2)^2 = 38,341
    with pytest.raises(ValueError, match="fp_rate"):
        BloomFilter.for_items(10, 1.5, 8)


def test_no_false_negatives_and_no_false_positives_in_a_million_random_strings():
    """The paper's check: 1M random 8-word strings, none found in a filter sized for 1e-8.

    200,000 training 8-grams take a 0.96 MB bit array (38.3 bits each, k=27); queries run in
    vectorised chunks of 65,536 n-grams (27 probes each, ~30 MB of temporaries)."""
    rng = np.random.default_rng(8)
    vocab = [f"v{i}" for i in range(50_000)]
    train = ngram_hashes([vocab[i] for i in rng.integers(0, len(vocab), 200_007)], 8)
    bloom = BloomFilter.for_items(len(train), 1e-8, 8)
    bloom.add(train)
    assert bloom.bits.nbytes < 1_000_000
    assert bloom.contains(train).all()
    queries = ngram_hashes([vocab[i] for i in rng.integers(0, len(vocab), 1_000_007)], 8)
    assert len(queries) == 1_000_000
    assert int(bloom.contains(queries).sum()) == 0  # expected 0.01 at p = 1e-8


def test_a_small_filter_has_the_false_positive_rate_it_was_sized_for():
    """At p = 1e-2 the rate is measurable, so the sizing formula itself is tested."""
    rng = np.random.default_rng(3)
    bloom = BloomFilter.for_items(20_000, 1e-2, 8)
    bloom.add(rng.integers(0, 2**63, 20_000, dtype=np.uint64))
    rate = bloom.contains(rng.integers(0, 2**63, 200_000, dtype=np.uint64)).mean()
    assert 0.006 < rate < 0.014


def test_filter_file_round_trip_and_corruption(tmp_path):
    bloom = BloomFilter.for_items(100, 1e-8, 8, {"split": "train"})
    hashes = ngram_hashes([f"x{i}" for i in range(107)], 8)
    bloom.add(hashes)
    path = str(tmp_path / "f.bloom")
    bloom.save(path)
    loaded = BloomFilter.load(path)
    assert (loaded.m, loaded.k, loaded.n, loaded.items) == (bloom.m, bloom.k, 8, 100)
    header = loaded.header()
    assert header["split"] == "train" and "lower-case" in header["normalisation"] and loaded.contains(hashes).all()
    data = bytearray((tmp_path / "f.bloom").read_bytes())
    flipped = bytearray(data)
    flipped[-1] ^= 0xFF
    (tmp_path / "bad.bloom").write_bytes(bytes(flipped))
    with pytest.raises(BloomError, match="checksum"):
        BloomFilter.load(str(tmp_path / "bad.bloom"))
    (tmp_path / "cut.bloom").write_bytes(bytes(data[:-10]))
    with pytest.raises(BloomError, match="bytes of bits"):
        BloomFilter.load(str(tmp_path / "cut.bloom"))
    (tmp_path / "other.bloom").write_bytes(b"PK\x03\x04 not a filter")
    with pytest.raises(BloomError, match="not a webtext Bloom filter"):
        BloomFilter.load(str(tmp_path / "other.bloom"))
    (tmp_path / "head.bloom").write_bytes(bytes(data).replace(b'"k": 27', b'"k": "x"', 1))
    with pytest.raises(BloomError, match="unreadable filter header"):
        BloomFilter.load(str(tmp_path / "head.bloom"))
    (tmp_path / "norm.bloom").write_bytes(bytes(data).replace(b'"normalisation": "lower', b'"normalisation": "upper', 1))
    with pytest.raises(BloomError, match="another normalisation, hash or probe scheme"):
        BloomFilter.load(str(tmp_path / "norm.bloom"))
