"""Token-shard loader: fixed-length windows streamed from memory-mapped shards.

A split is cut into non-overlapping windows of `block_size + 1` tokens (input + shifted
target). The training order is a seeded permutation of all windows, drawn afresh per epoch,
so the whole data stream is a pure function of (seed, position): the only state a checkpoint
needs is the global position (`cursor`), which makes resume exact and lets any number of
ranks split the same global batch into disjoint slices.

Loading the manifest checks every shard once, before any of its tokens reaches a model: its
size, its sha256 against the manifest and every id below the vocabulary size, in one streaming
read (bench/bench_tokenize.py compares its speed with the trainer's consumption).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
DTYPES = {"uint16": np.dtype("<u2"), "uint32": np.dtype("<u4")}  # little-endian on disk
TOKENIZER_COPY = "tokenizer"
VERIFY_CHUNK_BYTES = 1 << 22  # a multiple of every dtype's size
REBUILD_HINT = ("delete it and rerun `webtext tokenize` with the same --shards, --tokenizer and --out "
                "to rebuild it")


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
    def load(cls, root: str | Path, verify_splits: Iterable[str] | None = None) -> "TokenManifest":
        """The manifest of `root`, after every shard of `verify_splits` (default: all splits) has
        passed `verify_token_shard`: a corrupt shard is an error here, before any model is built."""
        root = Path(root)
        path = root / MANIFEST
        dataset_folder = any(root.glob("*/*.parquet"))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if dataset_folder:
                raise FileNotFoundError(_dataset_folder_message(root)) from None
            raise FileNotFoundError(f"{path}: no token-shard manifest (run `webtext tokenize` first)") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON: {exc}") from None
        if dataset_folder and isinstance(data, dict) and "dtype" not in data:
            raise ValueError(_dataset_folder_message(root))
        try:
            dtype = data["dtype"]
            if dtype not in DTYPES:
                raise ValueError(f"{path}: dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
            splits = {name: list(split["shards"]) for name, split in data["splits"].items()}
            for shards in splits.values():
                for shard in shards:
                    int(shard["tokens"]), str(shard["file"])
            if any(not shard.get("sha256") for shards in splits.values() for shard in shards):
                log.warning("%s records no sha256 for its token shards (an older `webtext tokenize`): they are "
                            "unverified, only token ids < vocab_size are checked", path)
            manifest = cls(
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
        for split in splits if verify_splits is None else verify_splits:
            for shard in splits.get(split, []):
                verify_token_shard(root / shard["file"], dtype, int(shard["tokens"]), shard.get("sha256"),
                                   manifest.vocab_size)
        return manifest


def _dataset_folder_message(root: Path) -> str:
    return (f"{root} is a dataset folder (Parquet shards of `webtext build`), not token shards: tokenize it with "
            f"`webtext tokenizer train --shards {root} --out TOKDIR` and `webtext tokenize --shards {root} "
            f"--tokenizer TOKDIR --out TOKENS`, then pass TOKENS (`make train SHARDS={root}` runs all three)")


def _tokenizer_dir(root: Path, recorded: str | None) -> str | None:
    """The tokenizer the shards were made with: the recorded path, else the copy the tokenize
    stage keeps in TOKENS/tokenizer (which survives moving the directory)."""
    if recorded and Path(recorded).exists():
        return recorded
    copy = root / TOKENIZER_COPY
    return str(copy) if copy.is_dir() else None


def verify_token_shard(path: Path, dtype: str, tokens: int, sha256: str | None, vocab_size: int) -> None:
    """Refuse a shard that is missing, not `tokens` ids long, not the bytes the manifest recorded
    (`sha256`, when recorded) or that holds an id >= `vocab_size` (which would index past the
    embedding table). One read in chunks through a reused buffer: it maps nothing, so the
    process's resident memory does not grow by the size of the data."""
    numpy_dtype = DTYPES[dtype]
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: token shard listed in the manifest is missing") from None
    if size != tokens * numpy_dtype.itemsize:
        raise ValueError(f"{path}: {size} bytes on disk but the manifest says {tokens} "
                         f"{dtype} tokens (truncated or foreign file?)")
    digest = hashlib.sha256()
    buffer = bytearray(VERIFY_CHUNK_BYTES)
    offset = 0  # in tokens
    with open(path, "rb") as file:
        while read := file.readinto(buffer):
            digest.update(memoryview(buffer)[:read])
            ids = np.frombuffer(buffer, numpy_dtype, read // numpy_dtype.itemsize)
            if ids.max() >= vocab_size:
                position = int(np.argmax(ids >= vocab_size))
                raise ValueError(f"{path}: token id {int(ids[position])} at token offset {offset + position} is "
                                 f"not below the vocabulary size {vocab_size}: the shard is corrupt; {REBUILD_HINT}")
            offset += len(ids)
    if sha256 and digest.hexdigest() != sha256:
        raise ValueError(f"{path}: sha256 differs from the token manifest (the file changed after "
                         f"`webtext tokenize` wrote it): the shard is corrupt; {REBUILD_HINT}")


class TokenWindows:
    """All `block_size + 1`-token windows of one split, read lazily from np.memmap shards.

    `manifest`, when given, must come from `TokenManifest.load` with this split verified (its
    default); without it, the manifest is loaded and only this split's shards are verified."""

    def __init__(self, root: str | Path, split: str, block_size: int, manifest: TokenManifest | None = None):
        self.manifest = manifest or TokenManifest.load(root, verify_splits=[split])
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
