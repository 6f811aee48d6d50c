"""A Bloom filter over 64-bit n-gram hashes, vectorised with numpy, saved with its parameters.

Sized from the number of n-grams that go in: m = -N ln p / (ln 2)^2 bits and k = (m/N) ln 2
hash functions give false-positive rate p (1e-8: ~38 bits and 27 probes per n-gram). Probe
positions come from double hashing, (h1 + i*h2) mod m. The file records n, m, k, the
normalisation, the hash scheme and a sha256 of the bit array, and loading checks all of them.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from overlap.ngrams import HASH_SCHEME, NORMALISATION, mix64
from webtext import fsio

MAGIC = b"WEBTEXT-BLOOM-1\n"
_CHUNK = 1 << 16  # hashes per vectorised step (k probes each)
_SECOND = np.uint64(0x9E3779B97F4A7C15)


class BloomError(ValueError):
    """A filter file that is not one, is corrupt, or does not match what it is used with."""


class BloomFilter:
    def __init__(self, m: int, k: int, n: int, meta: dict | None = None, bits: np.ndarray | None = None):
        if m < 8 or k < 1:
            raise ValueError(f"Bloom filter needs m >= 8 bits and k >= 1 (got m={m}, k={k})")
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

    def _probes(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h2 = mix64(hashes ^ _SECOND) | np.uint64(1)
        steps = np.arange(self.k, dtype=np.uint64)
        idx = (hashes[:, None] + steps[None, :] * h2[:, None]) % np.uint64(self.m)
        return (idx >> np.uint64(3)).astype(np.int64), (np.uint8(1) << (idx & np.uint64(7)).astype(np.uint8))

    def add(self, hashes: np.ndarray) -> None:
        for start in range(0, len(hashes), _CHUNK):
            byte, mask = self._probes(hashes[start: start + _CHUNK])
            np.bitwise_or.at(self.bits, byte.ravel(), mask.ravel())
        self.items += len(hashes)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Boolean array: which hashes are (probably) in the filter."""
        out = np.zeros(len(hashes), dtype=bool)
        for start in range(0, len(hashes), _CHUNK):
            byte, mask = self._probes(hashes[start: start + _CHUNK])
            out[start: start + _CHUNK] = ((self.bits[byte] & mask) != 0).all(axis=1)
        return out

    def header(self) -> dict:
        return {
            **self.meta, "n": self.n, "m": self.m, "k": self.k, "items": self.items,
            "normalisation": NORMALISATION, "hash": HASH_SCHEME,
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
        if meta.get("normalisation") != NORMALISATION or meta.get("hash") != HASH_SCHEME:
            raise BloomError(f"{path}: built with another normalisation or hash scheme")
        return cls(m, k, n, meta, np.frombuffer(body, dtype=np.uint8).copy())
