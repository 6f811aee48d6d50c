import numpy as np
import pytest
from datasketch import MinHash

from dedup.config import DedupConfig
from dedup.minhash import band_keys, minhash_input, minhash_signatures, permutations
from dedup.text import jaccard, shingles


def _datasketch_signature(shingle_hashes, num_perm, seed):
    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=int)  # default scheme: affine32
    m.update_batch(minhash_input(shingle_hashes))
    return m.hashvalues


@pytest.mark.parametrize("num_perm, seed", [(128, 1), (64, 7)])
def test_bit_identical_to_datasketch(num_perm, seed):
    rng = np.random.default_rng(seed)
    arrays = [np.unique(rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64)) for n in rng.integers(1, 3000, 40)]
    arrays += [np.array([], dtype=np.uint64), shingles("", 5), np.zeros(9000, dtype=np.uint64)]  # empty, one, > chunk
    cfg = DedupConfig(num_perm=num_perm, seed=seed)
    ours = minhash_signatures(arrays, cfg)
    assert ours.shape == (len(arrays), num_perm) and ours.dtype == np.uint32
    expected = np.array([_datasketch_signature(a, num_perm, seed) for a in arrays])
    assert np.array_equal(ours, expected)


def test_permutations_are_datasketchs():
    a, b = permutations(128, 1)
    reference = MinHash(num_perm=128, seed=1).permutations
    assert np.array_equal(a, reference[0]) and np.array_equal(b, reference[1])


def test_signature_does_not_depend_on_the_batch():
    cfg = DedupConfig()
    arrays = [shingles(f"document number {i} " * 50 + str(i), 5) for i in range(20)]
    together = minhash_signatures(arrays, cfg)
    alone = np.vstack([minhash_signatures([a], cfg) for a in arrays])
    assert np.array_equal(together, alone)


def test_estimated_jaccard_tracks_the_exact_one():
    words = [f"w{i}" for i in range(2000)]
    base = " ".join(words)
    edited = " ".join(w if i % 40 else "X" for i, w in enumerate(words))
    a, b = shingles(base, 5), shingles(edited, 5)
    sig = minhash_signatures([a, b], DedupConfig(num_perm=512))
    estimate = float(np.mean(sig[0] == sig[1]))
    assert estimate == pytest.approx(jaccard(a, b), abs=0.06)


def test_band_keys_split_the_signature():
    signature = np.arange(12, dtype=np.uint32)
    keys = band_keys(signature, 3, 4)
    assert keys == [signature[0:4].tobytes(), signature[4:8].tobytes(), signature[8:12].tobytes()]
    assert band_keys(signature, 2, 4) == keys[:2]  # derived params may leave rows unused
