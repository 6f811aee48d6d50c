"""Token-shard loader: window layout, seeded per-epoch shuffle, per-rank slices, broken inputs."""

import json

import numpy as np
import pytest

from training.data import ShuffledStream, TokenWindows, sequential_batches


def write_shards(root, shard_tokens, dtype="uint16", split="train"):
    """Shards holding consecutive integers, so every window says where it came from."""
    (root / split).mkdir(parents=True, exist_ok=True)
    entries, start = [], 0
    for n, count in enumerate(shard_tokens):
        data = (np.arange(start, start + count) % 60000).astype(dtype)
        name = f"{split}/shard-{n:05d}.bin"
        (root / name).write_bytes(data.tobytes())
        entries.append({"file": name, "tokens": count, "documents": 1, "sha256": "x"})
        start += count
    manifest = {"dtype": dtype, "vocab_size": 60000, "eot_id": 59999, "tokenizer_sha256": None,
                "splits": {split: {"shards": entries}}}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_windows_cover_each_shard_without_crossing_it(tmp_path):
    windows = TokenWindows(write_shards(tmp_path, [41, 25]), "train", block_size=8)
    assert windows.num_windows == 5 + 3  # (41-1)//8, (25-1)//8
    assert windows.window(0).tolist() == list(range(0, 9))
    assert windows.window(4).tolist() == list(range(32, 41))  # last window of shard 0 ends at its end
    assert windows.window(5).tolist() == list(range(41, 50))  # first of shard 1
    batch = windows.gather([7, 0])
    assert batch.shape == (2, 9) and batch.dtype.is_floating_point is False
    assert batch[0, 0].item() == 41 + 16


def test_uint32_shards(tmp_path):
    windows = TokenWindows(write_shards(tmp_path, [100], dtype="uint32"), "train", block_size=9)
    assert windows.window(10).tolist() == list(range(90, 100))


def test_shuffle_is_seeded_per_epoch_and_covers_every_window(tmp_path):
    windows = TokenWindows(write_shards(tmp_path, [801]), "train", block_size=8)  # 100 windows
    a, b, c = ShuffledStream(windows, 1), ShuffledStream(windows, 1), ShuffledStream(windows, 2)
    assert np.array_equal(a.indices(0, 250), b.indices(0, 250))
    assert not np.array_equal(a.indices(0, 100), c.indices(0, 100))
    epoch0, epoch1 = a.indices(0, 100), a.indices(100, 100)
    assert sorted(epoch0) == list(range(100)) == sorted(epoch1)
    assert not np.array_equal(epoch0, epoch1)
    # reading across the epoch boundary gives the same positions as reading each epoch
    assert np.array_equal(a.indices(90, 20), np.concatenate([epoch0[90:], epoch1[:10]]))


def test_ranks_take_disjoint_slices_whose_union_is_the_single_process_batch(tmp_path):
    windows = TokenWindows(write_shards(tmp_path, [2001]), "train", block_size=8)
    stream = ShuffledStream(windows, seed=5)
    cursor, micro, accum = 37, 3, 2
    single = [x for x, _ in stream.micro_batches(cursor, micro, accum * 2)]
    ranks = [[x for x, _ in stream.micro_batches(cursor, micro, accum, rank, 2)] for rank in range(2)]
    rows = lambda batches: [tuple(row.tolist()) for b in batches for row in b]  # noqa: E731
    assert not set(rows(ranks[0])) & set(rows(ranks[1]))
    assert rows(ranks[0]) + rows(ranks[1]) == rows(single)
    for x, y in stream.micro_batches(cursor, micro, accum):
        assert np.array_equal(x[:, 1:], y[:, :-1])  # targets are inputs shifted by one


def test_sequential_batches_split_over_ranks(tmp_path):
    windows = TokenWindows(write_shards(tmp_path, [161]), "train", block_size=8)  # 20 windows
    whole = [x for x, _ in sequential_batches(windows, 3, max_windows=10)]
    assert sum(len(x) for x in whole) == 10
    parts = [x for r in range(2) for x, _ in sequential_batches(windows, 3, 10, r, 2)]
    assert sorted(tuple(row.tolist()) for b in parts for row in b) == sorted(
        tuple(row.tolist()) for b in whole for row in b)


@pytest.mark.parametrize("breakage, message", [
    (lambda root: (root / "manifest.json").unlink(), "no token-shard manifest"),
    (lambda root: (root / "manifest.json").write_text("{nope"), "not valid JSON"),
    (lambda root: _edit(root, lambda m: m.pop("vocab_size")), "missing key 'vocab_size'"),
    (lambda root: _edit(root, lambda m: m.update(dtype="int8")), "dtype must be one of"),
    (lambda root: (root / "train/shard-00000.bin").write_bytes(b"\0" * 10), "truncated or foreign"),
    (lambda root: (root / "train/shard-00001.bin").unlink(), "is missing"),
])
def test_broken_shard_directories_fail_clearly(tmp_path, breakage, message):
    write_shards(tmp_path, [100, 100])
    breakage(tmp_path)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        TokenWindows(tmp_path, "train", block_size=8)


def test_missing_split_and_too_short_split(tmp_path):
    write_shards(tmp_path, [5])
    with pytest.raises(ValueError, match="no shards for split 'val'"):
        TokenWindows(tmp_path, "val", block_size=8)
    with pytest.raises(ValueError, match="fewer than one window"):
        TokenWindows(tmp_path, "train", block_size=8)


def _edit(root, change):
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))
