"""Token-shard loader: fixed-length windows streamed from memory-mapped shards.

A split is cut into non-overlapping windows of `block_size + 1` tokens (input + shifted
target). The training order is a seeded permutation of all windows, drawn afresh per epoch,
so the whole data stream is a pure function of (seed, position): the only state a checkpoint
needs is the global position (`cursor`), which makes resume exact and lets any number of
ranks split the same global batch into disjoint slices.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MANIFEST = "manifest.json"
DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}  # little-endian on disk
TOKENIZER_COPY = "tokenizer"


@dataclass(frozen=True)
class TokenManifest:
    """What the tokenize stage recorded about a token-shard directory."""

    root: Path
    dtype: str
    vocab_size: int
    eot_id: int
    tokenizer_sha256: str | None
    tokenizer_dir: str | None
    splits: dict[str, list[dict]]

    @classmethod
    def load(cls, root: str | Path) -> "TokenManifest":
        root = Path(root)
        path = root / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no token-shard manifest (run `webtext tokenize` first)") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from None
        try:
            dtype = data["dtype"]
            if dtype not in DTYPES:
                raise ValueError(f"{path}: dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
            splits = {name: list(split["shards"]) for name, split in data["splits"].items()}
            for shards in splits.values():
                for shard in shards:
                    int(shard["tokens"]), str(shard["file"])
            return cls(
                root=root,
                dtype=dtype,
                vocab_size=int(data["vocab_size"]),
                eot_id=int(data["eot_id"]),
                tokenizer_sha256=data.get("tokenizer_sha256"),
                tokenizer_dir=_tokenizer_dir(root, data.get("tokenizer_dir")),
                splits=splits,
            )
        except KeyError as exc:
            raise ValueError(f"{path}: missing key {exc.args[0]!r}") from None
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"{path}: malformed manifest: {exc}") from None


def _tokenizer_dir(root: Path, recorded: str | None) -> str | None:
    """The tokenizer the shards were made with: the recorded path, else the copy the tokenize
    stage keeps in TOKENS/tokenizer (which survives moving the directory)."""
    if recorded and Path(recorded).exists():
        return recorded
    copy = root / TOKENIZER_COPY
    return str(copy) if copy.is_dir() else None


class TokenWindows:
    """All `block_size + 1`-token windows of one split, read lazily from np.memmap shards."""

    def __init__(self, root: str | Path, split: str, block_size: int, manifest: TokenManifest | None = None):
        self.manifest = manifest or TokenManifest.load(root)
        self.split = split
        self.block_size = block_size
        shards = self.manifest.splits.get(split)
        if not shards:
            raise ValueError(f"{self.manifest.root}: no shards for split {split!r} "
                             f"(have: {', '.join(sorted(self.manifest.splits)) or 'none'})")
        dtype = DTYPES[self.manifest.dtype]
        self.arrays: list[np.ndarray] = []
        counts = []
        for shard in shards:
            path = self.manifest.root / shard["file"]
            expected = int(shard["tokens"])
            try:
                size = os.path.getsize(path)
            except FileNotFoundError:
                raise FileNotFoundError(f"{path}: token shard listed in the manifest is missing") from None
            if size != expected * dtype.itemsize:
                raise ValueError(f"{path}: {size} bytes on disk but the manifest says {expected} "
                                 f"{self.manifest.dtype} tokens (truncated or foreign file?)")
            arr = np.memmap(path, dtype=dtype, mode="r") if expected else np.zeros(0, dtype)
            self.arrays.append(arr)
            # consecutive windows share one token: window i covers [i*T, i*T + T + 1)
            counts.append(max(0, (expected - 1) // block_size))
        self.windows_per_shard = np.asarray(counts, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.windows_per_shard)])
        self.num_windows = int(self.offsets[-1])
        self.num_tokens = sum(int(s["tokens"]) for s in shards)
        if self.num_windows == 0:
            raise ValueError(f"{self.manifest.root}: split {split!r} has {self.num_tokens} tokens, "
                             f"fewer than one window of block_size+1 = {block_size + 1}")

    def window(self, index: int) -> np.ndarray:
        shard = int(np.searchsorted(self.offsets, index, side="right") - 1)
        start = (index - int(self.offsets[shard])) * self.block_size
        return self.arrays[shard][start:start + self.block_size + 1]

    def gather(self, indices) -> torch.Tensor:
        """The windows `indices` as an int64 tensor of shape (len(indices), block_size + 1)."""
        out = np.empty((len(indices), self.block_size + 1), dtype=np.int64)
        for row, index in enumerate(indices):
            out[row] = self.window(int(index))
        return torch.from_numpy(out)


class ShuffledStream:
    """The seeded training order over `TokenWindows`, addressed by global position.

    Position p falls in epoch p // N at slot p % N of that epoch's permutation. A global
    batch of G windows at cursor c is positions [c, c+G); rank r of W takes the r-th of W
    equal contiguous slices, so ranks are disjoint and their union is the single-process batch.
    """

    def __init__(self, windows: TokenWindows, seed: int, shuffle: bool = True):
        self.windows = windows
        self.seed = seed
        self.shuffle = shuffle
        self._epoch = -1
        self._order: np.ndarray | None = None

    def order(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            n = self.windows.num_windows
            if self.shuffle:
                self._order = np.random.default_rng([self.seed, epoch]).permutation(n)
            else:
                self._order = np.arange(n)
            self._epoch = epoch
        return self._order

    def indices(self, start: int, count: int) -> np.ndarray:
        n = self.windows.num_windows
        out = np.empty(count, dtype=np.int64)
        filled = 0
        while filled < count:
            epoch, slot = divmod(start + filled, n)
            take = min(count - filled, n - slot)
            out[filled:filled + take] = self.order(epoch)[slot:slot + take]
            filled += take
        return out

    def micro_batches(self, cursor: int, micro_batch: int, count: int, rank: int = 0, world: int = 1):
        """This rank's `count` micro-batches (x, y), each (micro_batch, block_size), of the global
        batch starting at `cursor`."""
        per_rank = micro_batch * count
        indices = self.indices(cursor + rank * per_rank, per_rank)
        for number in range(count):
            batch = self.windows.gather(indices[number * micro_batch:(number + 1) * micro_batch])
            yield batch[:, :-1], batch[:, 1:]

    def epoch_of(self, cursor: int) -> float:
        return cursor / self.windows.num_windows


def sequential_batches(windows: TokenWindows, batch_size: int, max_windows: int = 0, rank: int = 0, world: int = 1):
    """Validation order: windows 0.. in file order, the i-th batch going to rank i % world."""
    total = windows.num_windows if max_windows <= 0 else min(max_windows, windows.num_windows)
    for number, start in enumerate(range(0, total, batch_size)):
        if number % world == rank:
            batch = windows.gather(range(start, min(start + batch_size, total)))
            yield batch[:, :-1], batch[:, 1:]
