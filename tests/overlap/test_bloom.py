"""Overlap's n-grams and the Bloom filter (size, false positives, file format)."""

import numpy as np
import pytest

from overlap.bloom import BloomError, BloomFilter
from overlap.ngrams import HASH_SCHEME, ngram_count, text_ngram_hashes


def test_ngrams_are_gpt2_normalised_words():
    hashes = text_ngram_hashes("The cat sat on the mat, the cat sat on the MAT", 3)
    assert len(hashes) == ngram_count("The cat sat on the mat, the cat sat on the MAT", 3) == 10
    assert hashes[0] == hashes[6] and len(set(hashes.tolist())) == 6  # case and punctuation do not count
    assert np.array_equal(text_ngram_hashes("It's 2019—OK?", 2), text_ngram_hashes("it s 2019 ok", 2))
    assert len(text_ngram_hashes("only two", 3)) == 0 and ngram_count("only two", 3) == 0


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
    train = text_ngram_hashes(" ".join(vocab[i] for i in rng.integers(0, len(vocab), 200_007)), 8)
    bloom = BloomFilter.for_items(len(train), 1e-8, 8)
    bloom.add(train)
    assert bloom.bits.nbytes < 1_000_000
    assert bloom.contains(train).all()
    queries = text_ngram_hashes(" ".join(vocab[i] for i in rng.integers(0, len(vocab), 1_000_007)), 8)
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
    hashes = text_ngram_hashes(" ".join(f"x{i}" for i in range(107)), 8)
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
    with pytest.raises(BloomError, match=r"another normalisation, hash or probe scheme \(differs in: normalisation\)"):
        BloomFilter.load(str(tmp_path / "norm.bloom"))


# What filter files of earlier versions record: per-word blake2b hashes, not core.text's.
EARLIER_HASH_SCHEME = "blake2b-64 per word, polynomial base 0x100000001b3 mod 2**64, splitmix64 finish"


def test_filter_of_an_earlier_hash_scheme_is_refused_with_a_way_out(tmp_path):
    bloom = BloomFilter.for_items(100, 1e-8, 8)
    bloom.add(text_ngram_hashes(" ".join(f"x{i}" for i in range(107)), 8))
    bloom.save(str(tmp_path / "f.bloom"))
    data = (tmp_path / "f.bloom").read_bytes()
    assert HASH_SCHEME != EARLIER_HASH_SCHEME and HASH_SCHEME.encode() in data
    (tmp_path / "old.bloom").write_bytes(data.replace(HASH_SCHEME.encode(), EARLIER_HASH_SCHEME.encode(), 1))
    with pytest.raises(BloomError, match=r"old\.bloom: built with another .*\(differs in: hash\).*rebuild it with `webtext overlap build`"):
        BloomFilter.load(str(tmp_path / "old.bloom"))
