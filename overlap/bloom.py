"""A Bloom filter over 64-bit n-gram hashes, vectorised with numpy, saved with its parameters.

Sized from the number of n-grams that go in: m = -N ln p / (ln 2)^2 bits and k = (m/N) ln 2
hash functions give false-positive rate p (1e-8: ~38 bits and 27 probes per n-gram). Probe
positions come from double hashing, (h1 + i*h2) mod m, with h1 the n-gram's 64-bit hash and
h2 a remix of it. The file records n, m, k, the
normalisation, the hash scheme and a sha256 of the bit array, and loading checks all of them.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from core import fsio
from core.text import mix64
from overlap.ngrams import HASH_SCHEME, NORMALISATION

MAGIC = b"WEBTEXT-BLOOM-1\n"
PROBES = "probe i = (h1 mod m + i * (1 + splitmix64(h1 ^ golden) mod (m-1))) mod m"
_CHUNK = 1 << 16  # hashes per vectorised step (k probes each)
_SECOND = np.uint64(0x9E3779B97F4A7C15)


class BloomError(ValueError):
    """A filter file that is not one, is corrupt, or does not match what it is used with."""


class BloomFilter:
    def __init__(self, m: int, k: int, n: int, meta: dict | None = None, bits: np.ndarray | None = None):
        if m < 8 or k < 1 or k * m >= 2**64:
            raise ValueError(f"Bloom filter needs m >= 8 bits, k >= 1 and k*m < 2**64 (got m={m}, k={k})")
        self.m, self.k, self.n = m, k, n
        self.meta = dict(meta or {})
        self.bits = np.zeros((m + 7) // 8, dtype=np.uint8) if bits is None else bits
        self.items = int(self.meta.get("items", 0))

    @classmethod
    def for_items(cls, items: int, fp_rate: float, n: int, meta: dict | None = None) -> "BloomFilter":
        """A filter sized for `items` insertions at false-positive rate `fp_rate`."""
        if not 0 < fp_rate < 1:
            raise ValueError(f"fp_rate must be in (0, 1), got {fp_rate}")
        items = max(items, 1)
        m = max(8, math.ceil(-items * math.log(fp_rate) / math.log(2) ** 2))
        k = max(1, round(m / items * math.log(2)))
        return cls(m, k, n, {**(meta or {}), "capacity": items, "fp_rate": fp_rate})

    def _start(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First probe h1 mod m and step 1 + h2 mod (m - 1): probe i is (h1 + i*step) mod m."""
        m = np.uint64(self.m)
        step = mix64(hashes ^ _SECOND) % (m - np.uint64(1)) + np.uint64(1)
        return hashes % m, step

    def _advance(self, pos: np.ndarray, step: np.ndarray) -> None:
        """pos = (pos + step) mod m in place; both are below m, so one subtraction suffices."""
        pos += step
        np.subtract(pos, np.uint64(self.m), out=pos, where=pos >= np.uint64(self.m))

    def add(self, hashes: np.ndarray) -> None:
        for start in range(0, len(hashes), _CHUNK):
            pos, step = self._start(hashes[start: start + _CHUNK])
            probes = np.empty((self.k, len(pos)), dtype=np.uint64)
            probes[0] = pos
            for i in range(1, self.k):  # h1 + i*step stays below k*m < 2**64: one modulo at the end
                np.add(probes[i - 1], step, out=probes[i])
            probes %= np.uint64(self.m)
            self._set(probes.ravel())
        self.items += len(hashes)

    def _set(self, positions: np.ndarray) -> None:
        """Set bits. A fancy-indexed `|=` keeps only one of several writes to the same byte, so
        the bits still unset are read back and written again until none is left (a few rounds);
        still about twice as fast as the unbuffered np.bitwise_or.at."""
        byte = (positions >> np.uint64(3)).astype(np.intp)
        mask = np.left_shift(np.uint8(1), (positions & np.uint64(7)).astype(np.uint8))
        while len(byte):
            self.bits[byte] |= mask
            lost = (self.bits[byte] & mask) == 0
            byte, mask = byte[lost], mask[lost]

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Boolean array: which hashes are (probably) in the filter.

        Probes run one at a time over the hashes still possible, so an absent n-gram (most of
        them, in a contamination report) costs about two probes instead of k."""
        out = np.zeros(len(hashes), dtype=bool)
        for start in range(0, len(hashes), _CHUNK):
            pos, step = self._start(hashes[start: start + _CHUNK])
            alive = np.arange(start, start + len(pos))
            for _ in range(self.k):
                bit = (self.bits[(pos >> np.uint64(3)).astype(np.intp)] >> (pos & np.uint64(7)).astype(np.uint8)) & 1
                hit = bit.astype(bool)
                alive, pos, step = alive[hit], pos[hit], step[hit]
                if not len(alive):
                    break
                self._advance(pos, step)
            out[alive] = True
        return out

    def contains_each(self, hash_arrays: list[np.ndarray]) -> list[np.ndarray]:
        """`contains` of each array (say, each document's n-grams) in one batched query."""
        if not hash_arrays:
            return []
        found = self.contains(np.concatenate(hash_arrays))
        return np.split(found, np.cumsum([len(h) for h in hash_arrays])[:-1])

    def header(self) -> dict:
        return {
            **self.meta, "n": self.n, "m": self.m, "k": self.k, "items": self.items,
            "normalisation": NORMALISATION, "hash": HASH_SCHEME, "probes": PROBES,
            "sha256": hashlib.sha256(self.bits.tobytes()).hexdigest(),
        }

    def save(self, path: str) -> None:
        head = json.dumps(self.header(), sort_keys=True).encode("utf-8")
        with fsio.atomic_open(path, "wb") as fh:
            fh.write(MAGIC + head + b"\n")
            fh.write(self.bits.tobytes())

    @classmethod
    def load(cls, path: str) -> "BloomFilter":
        from apache_beam.io.filesystems import FileSystems

        with FileSystems.open(path) as fh:
            data = fh.read()
        if not data.startswith(MAGIC):
            raise BloomError(f"{path}: not a webtext Bloom filter file")
        head, sep, body = data[len(MAGIC):].partition(b"\n")
        try:
            meta = json.loads(head)
            m, k, n = int(meta["m"]), int(meta["k"]), int(meta["n"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BloomError(f"{path}: unreadable filter header ({exc})") from None
        if len(body) != (m + 7) // 8:
            raise BloomError(f"{path}: {len(body)} bytes of bits, header says m={m} ({(m + 7) // 8} bytes)")
        if hashlib.sha256(body).hexdigest() != meta.get("sha256"):
            raise BloomError(f"{path}: checksum mismatch, the file is corrupt")
        schemes = {"normalisation": NORMALISATION, "hash": HASH_SCHEME, "probes": PROBES}
        differing = [key for key, ours in schemes.items() if meta.get(key) != ours]
        if differing:
            raise BloomError(
                f"{path}: built with another normalisation, hash or probe scheme (differs in: "
                f"{', '.join(differing)}), so its bits answer for other n-grams: rebuild it with "
                f"`webtext overlap build`")
        return cls(m, k, n, meta, np.frombuffer(body, dtype=np.uint8).copy())
