"""Token-shard loader: window layout, seeded per-epoch shuffle, per-rank slices, broken and
corrupted inputs."""

import hashlib
import json
import logging
import shutil

import numpy as np
import pytest

from tests.training.train_fixtures import tiny_config
from training.data import ShuffledStream, TokenWindows, sequential_batches
from webtext.cli import main


def write_shards(root, shard_tokens, dtype="uint16", split="train"):
    """Shards holding consecutive integers, so every window says where it came from."""
    (root / split).mkdir(parents=True, exist_ok=True)
    entries, start = [], 0
    for n, count in enumerate(shard_tokens):
        data = (np.arange(start, start + count) % 60000).astype(dtype).tobytes()
        name = f"{split}/shard-{n:05d}.bin"
        (root / name).write_bytes(data)
        entries.append({"file": name, "tokens": count, "documents": 1, "sha256": hashlib.sha256(data).hexdigest()})
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


def _flip(path, first_token: int, count: int = 32) -> None:
    """Same-size damage that keeps every id inside the vocabulary: the lowest bit of `count`
    uint16 ids from `first_token` flipped (n <-> n^1; the vocabularies here have an even size)."""
    data = bytearray(path.read_bytes())
    for low_byte in range(2 * first_token, 2 * (first_token + count), 2):
        data[low_byte] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_same_size_corrupted_shard_is_refused_before_training_sees_it(tmp_path):
    """The ids stay inside the vocabulary, so only the manifest's sha256 can tell."""
    write_shards(tmp_path, [100, 100])
    _flip(tmp_path / "train/shard-00001.bin", 20)
    with pytest.raises(ValueError) as raised:
        TokenWindows(tmp_path, "train", block_size=8)
    assert str(raised.value) == (
        f"{tmp_path}/train/shard-00001.bin: sha256 differs from the token manifest (the file changed after "
        "`webtext tokenize` wrote it): the shard is corrupt; delete it and rerun `webtext tokenize` with the "
        "same --shards, --tokenizer and --out to rebuild it")


@pytest.mark.parametrize("recorded", ["sha256 of the bad bytes", "no sha256"])
def test_a_token_id_past_the_vocabulary_is_named_with_its_shard_and_offset(tmp_path, caplog, recorded):
    """Caught whether or not the manifest can vouch for the bytes (a manifest with the wrong
    vocab_size, a token folder from before checksums): never a bare IndexError mid-run."""
    write_shards(tmp_path, [100, 5_000_000])  # the bad id sits past the first read chunk
    shard = tmp_path / "train/shard-00001.bin"
    data = np.fromfile(shard, dtype="<u2")
    data[3_000_123] = 61234
    shard.write_bytes(data.tobytes())
    sha256 = hashlib.sha256(data.tobytes()).hexdigest() if recorded.startswith("sha256") else None
    _edit(tmp_path, lambda m: m["splits"]["train"]["shards"][1].update(sha256=sha256))
    with caplog.at_level(logging.WARNING, logger="training.data"), pytest.raises(ValueError) as raised:
        TokenWindows(tmp_path, "train", block_size=8)
    assert str(raised.value).startswith(f"{shard}: token id 61234 at token offset 3000123 is not below the "
                                        "vocabulary size 60000: the shard is corrupt; delete it and rerun")
    unverified = [r.getMessage() for r in caplog.records if "unverified" in r.getMessage()]
    assert unverified == ([] if sha256 else [
        f"{tmp_path}/manifest.json records no sha256 for its token shards (an older `webtext tokenize`): "
        "they are unverified, only token ids < vocab_size are checked"])


def test_a_manifest_without_checksums_still_loads_with_one_warning(tmp_path, caplog):
    write_shards(tmp_path, [41, 25])
    _edit(tmp_path, lambda m: [shard.pop("sha256") for shard in m["splits"]["train"]["shards"]])
    with caplog.at_level(logging.WARNING, logger="training.data"):
        windows = TokenWindows(tmp_path, "train", block_size=8)
    assert windows.window(5).tolist() == list(range(41, 50))
    assert [r.getMessage().count("unverified") for r in caplog.records] == [1]


def test_train_and_eval_refuse_a_corrupted_token_shard_in_one_line(corpus, tmp_path, capsys):
    """A damaged val shard: `train` stops before its first step (no checkpoint, no log; not a
    run without validation) and `eval --shards` before scoring, each with one line naming the
    shard. test_tokenize.py shows that the fix the line gives works."""
    tokens, tokenizer = corpus
    _, overrides = tiny_config(max_steps=1, eval_interval=0)
    settings = [item for override in overrides for item in ("--set", override)]
    run = tmp_path / "run"
    assert main(["train", "--tokens", str(tokens), "--out", str(run), "--tokenizer", str(tokenizer), *settings]) == 0
    damaged = tmp_path / "tokens"
    shutil.copytree(tokens, damaged)
    shard = damaged / "val" / "shard-00000.bin"
    _flip(shard, 5)
    capsys.readouterr()

    expected = f"{shard}: sha256 differs from the token manifest"
    assert main(["train", "--tokens", str(damaged), "--out", str(tmp_path / "run2"), *settings]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"webtext train: error: {expected}") and "\n" not in err
    assert not list((tmp_path / "run2").glob("ckpt-*.pt")) and not (tmp_path / "run2" / "log.jsonl").exists()
    assert main(["eval", "--checkpoint", str(run), "--shards", str(damaged), "--split", "val"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"webtext eval: error: {expected}") and "\n" not in err
