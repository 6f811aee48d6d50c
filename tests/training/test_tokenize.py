"""`webtext tokenize`: token-shard layout, determinism, resume, uint32 vocabularies, bad input."""

import hashlib
import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.training.dataset_fixtures import corrupt_text_pages, write_dataset
from training.config import TokenizerConfig
from training.data import TokenManifest
from training.tokenize import MANIFEST, PARTIAL, STATS, iter_split_texts, split_files, tokenize_shards
from training.tokenizer import EOT, bytes_to_unicode, load_tokenizer, train_tokenizer
from webtext.cli import main
from webtext.config import ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]
WORDS = ("the a cat dog sat ran on over mat house 42 1999 it's don't , . ! ? "
         "東京 café 😀 naïve \n").split(" ")


def documents(n: int, seed: int) -> list:
    rng = random.Random(seed)
    docs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40))) for _ in range(n)]
    docs[2], docs[7], docs[-1] = "", None, ""  # skipped and counted, one at the very end
    docs[4] = f"a document that quotes {EOT} in its text"
    return docs


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    splits = {"train": [documents(50, 1), documents(45, 2)], "val": [documents(12, 3)]}
    write_dataset(root, splits)
    tok = train_tokenizer((t for f in splits["train"] for t in f if t), TokenizerConfig(vocab_size=300))
    tok_dir = tmp_path_factory.mktemp("tok")
    tok.save(tok_dir)
    return root, tok_dir, splits


def cfg(**overrides) -> TokenizerConfig:
    return TokenizerConfig(**{"shard_tokens": 400, "workers": 1, **overrides})


def read_shards(out, manifest, split):
    dtype = {"uint16": "<u2", "uint32": "<u4"}[manifest["dtype"]]
    return [np.fromfile(out / s["file"], dtype=dtype) for s in manifest["splits"][split]["shards"]]


@pytest.fixture(scope="session")
def tokenized(dataset, tmp_path_factory):
    root, tok_dir, _ = dataset
    out = tmp_path_factory.mktemp("tokens")
    return out, tokenize_shards(root, tok_dir, out, cfg(), progress=False)


def test_shards_hold_every_document_in_order_followed_by_eot(dataset, tokenized):
    _, tok_dir, splits = dataset
    out, manifest = tokenized
    tok = load_tokenizer(tok_dir)
    assert (manifest["dtype"], manifest["vocab_size"], manifest["eot_id"]) == ("uint16", 300, 299)
    assert manifest["tokenizer_sha256"] == tok.sha256()
    assert load_tokenizer(manifest["tokenizer_dir"]).sha256() == tok.sha256()
    assert not (out / PARTIAL).exists()
    for split, files in splits.items():
        expected = [tok.encode(t) for f in files for t in f if t]
        st = manifest["splits"][split]
        shards = read_shards(out, manifest, split)
        assert len(shards) == len(st["shards"]) and (split != "train" or len(shards) > 3)
        for arr, rec in zip(shards, st["shards"]):
            assert rec["file"].startswith(f"{split}/shard-") and rec["file"].endswith(".bin")
            assert len(arr) == rec["tokens"] and (out / rec["file"]).stat().st_size == 2 * rec["tokens"]
            assert hashlib.sha256(arr.tobytes()).hexdigest() == rec["sha256"]
            assert arr[-1] == tok.eot_id and int((arr == tok.eot_id).sum()) == rec["documents"]
        for rec in st["shards"][:-1]:  # closed at the first document end past shard_tokens
            assert rec["tokens"] >= 400
        flat = np.concatenate(shards).tolist()
        docs, start = [], 0
        for i, t in enumerate(flat):
            if t == tok.eot_id:
                docs.append(flat[start:i])
                start = i + 1
        assert docs == expected  # the EOT text in document 4 stayed text
        rows = [rec["rows"] for rec in st["shards"]]
        assert rows[0][0] == 0 and rows[-1][1] == st["rows"] == sum(len(f) for f in files)
        assert all(a[1] == b[0] for a, b in zip(rows, rows[1:]))
        assert st["documents"] == len(expected) and st["tokens"] == len(flat)
        assert st["dropped"] == {"empty_text": 2 * len(files), "null_text": len(files)}
    stats = json.loads((out / STATS).read_text())["stages"]["tokenize"]
    assert stats["reconciles"] and stats["in"] == 107 and stats["out"] == 107 - 9
    assert stats["dropped"] == {"empty_text": 6, "null_text": 3}


def test_output_does_not_depend_on_the_number_of_workers(dataset, tokenized, tmp_path):
    root, tok_dir, _ = dataset
    out, manifest = tokenized
    parallel = tokenize_shards(root, tok_dir, tmp_path, cfg(workers=2), progress=False)
    assert parallel["splits"] == manifest["splits"]


def test_a_deleted_shard_is_rebuilt_and_the_others_are_not_redone(dataset, tokenized, tmp_path):
    root, tok_dir, _ = dataset
    out = tmp_path / "tokens"
    shutil.copytree(tokenized[0], out)
    before = {p.name: p.stat().st_mtime_ns for p in (out / "train").iterdir()}
    (out / "train" / "shard-00001.bin").unlink()
    (out / "val" / "shard-00000.bin").write_bytes(b"\0\0")  # truncated
    (out / "train" / ".shard-00009.bin.x1.tmp").write_bytes(b"half")  # a killed atomic write
    again = tokenize_shards(root, tok_dir, out, cfg(), progress=False)
    assert not list(out.glob("*/.*.tmp"))
    assert again["splits"] == tokenized[1]["splits"]
    after = {p.name: p.stat().st_mtime_ns for p in (out / "train").iterdir()}
    assert {n for n in before if before[n] != after[n]} == {"shard-00001.bin"}
    for split in ("train", "val"):
        for rec in again["splits"][split]["shards"]:
            assert hashlib.sha256((out / rec["file"]).read_bytes()).hexdigest() == rec["sha256"]


def test_the_fix_for_a_corrupted_token_shard_works(dataset, tokenized, tmp_path):
    """What the loader's error says to do: delete the shard, rerun `tokenize`; it is rebuilt
    from its recorded rows and the folder verifies again."""
    root, tok_dir, _ = dataset
    out = tmp_path / "tokens"
    shutil.copytree(tokenized[0], out)
    shard = out / "train" / "shard-00002.bin"
    intact = shard.read_bytes()
    shard.write_bytes(intact[:100] + bytes([intact[100] ^ 0x01]) + intact[101:])  # token 50 off by one
    with pytest.raises(ValueError, match=f"{shard}: sha256 differs .* delete it and rerun `webtext tokenize`"):
        TokenManifest.load(out)
    shard.unlink()
    tokenize_shards(root, tok_dir, out, cfg(), progress=False)
    assert shard.read_bytes() == intact
    TokenManifest.load(out)


def test_an_interrupted_run_resumes_after_its_last_finished_shard(dataset, tokenized, tmp_path, monkeypatch):
    import training.tokenize as stage

    root, tok_dir, _ = dataset
    real_write, written = stage._write_shard, []

    def write_then_die(*args):
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(args[1:3])
        return real_write(*args)

    monkeypatch.setattr(stage, "_write_shard", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        tokenize_shards(root, tok_dir, tmp_path, cfg(), progress=False)
    assert (tmp_path / PARTIAL).exists() and not (tmp_path / MANIFEST).exists()
    monkeypatch.setattr(stage, "_write_shard", lambda *a: written.append(a[1:3]) or real_write(*a))
    resumed = tokenize_shards(root, tok_dir, tmp_path, cfg(), progress=False)
    train_written = [index for split, index in written if split == "train"]
    assert train_written == list(range(len(resumed["splits"]["train"]["shards"])))  # nothing redone
    assert resumed["splits"] == tokenized[1]["splits"]
    assert json.loads((tmp_path / STATS).read_text())["stages"]["tokenize"]["reconciles"]


def test_vocabularies_over_65536_tokens_use_uint32(dataset, tmp_path):
    root, _, splits = dataset
    byte_chars = list(bytes_to_unicode().values())
    tokens = byte_chars + [f"fake{i}" for i in range(70_000 - 257)] + [EOT]
    big = tmp_path / "big-tok"
    big.mkdir()
    (big / "encoder.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (big / "vocab.bpe").write_text("#version: 0.2\n", encoding="utf-8")
    manifest = tokenize_shards(root, big, tmp_path / "out", cfg(splits=["val"]), progress=False)
    assert (manifest["dtype"], manifest["eot_id"]) == ("uint32", 69_999)
    arr = np.concatenate(read_shards(tmp_path / "out", manifest, "val"))
    assert int((arr == 69_999).sum()) == manifest["splits"]["val"]["documents"] == 9
    assert arr.max() == 69_999 and arr.nbytes == 4 * manifest["splits"]["val"]["tokens"]
    first = next(t for t in splits["val"][0] if t)
    assert bytes(arr[:len(first.encode())].astype(np.uint8)) == first.encode()  # one token per byte


def test_bad_inputs_give_clear_errors(dataset, tmp_path):
    root, tok_dir, _ = dataset
    with pytest.raises(FileNotFoundError, match="dataset shard directory not found"):
        tokenize_shards(tmp_path / "missing", tok_dir, tmp_path / "o1", cfg())
    with pytest.raises(ValueError, match="none of the splits"):
        tokenize_shards(root, tok_dir, tmp_path / "o1", cfg(splits=["dev"]))
    with pytest.raises(FileNotFoundError, match="tokenizer not found"):
        tokenize_shards(root, tmp_path / "no-tok", tmp_path / "o1", cfg())
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match="no Parquet shards for split 'train'"):
        tokenize_shards(empty, tok_dir, tmp_path / "o2", cfg())
    write_dataset(empty, {"train": [["", None, ""]]})
    with pytest.raises(ValueError, match="has no non-empty documents"):
        tokenize_shards(empty, tok_dir, tmp_path / "o3", cfg(), progress=False)
    (empty / "train" / "part-00000.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        tokenize_shards(empty, tok_dir, tmp_path / "o4", cfg())
    pq.write_table(pa.table({"text": [1, 2]}), empty / "train" / "part-00000.parquet")
    with pytest.raises(ValueError, match="column 'text' is int64"):
        tokenize_shards(empty, tok_dir, tmp_path / "o5", cfg())


def test_an_output_made_with_another_tokenizer_is_not_mixed_in(dataset, tokenized, tmp_path):
    root, _, _ = dataset
    out = tmp_path / "tokens"
    shutil.copytree(tokenized[0], out)
    other = tmp_path / "other-tok"
    train_tokenizer(["something else entirely " * 40], TokenizerConfig(vocab_size=270)).save(other)
    with pytest.raises(ValueError, match="different tokenizer sha256"):
        tokenize_shards(root, other, out, cfg())
    with pytest.raises(ValueError, match="different shard tokens"):
        tokenize_shards(root, tokenized[1]["tokenizer_dir"], out, cfg(shard_tokens=999))
    (out / MANIFEST).write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match="not valid JSON"):
        tokenize_shards(root, other, out, cfg())


def test_cli(dataset, tmp_path, capsys):
    root, tok_dir, _ = dataset
    argv = ["tokenize", "--shards", str(root), "--tokenizer", str(tok_dir), "--out", str(tmp_path),
            "--set", "tokenizer.workers=1", "--set", "tokenizer.shard_tokens=1000"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "tokenize" in printed and "uint16 token shards" in printed and "train" in printed
    assert main(argv[:2] + [str(tmp_path / "nope")] + argv[3:]) == 1
    assert "dataset shard directory not found" in capsys.readouterr().err


def _error_line(capsys) -> str:
    """The error the user saw: stderr's last line, after any finished progress bar, and its only one."""
    lines = capsys.readouterr().err.rstrip("\n").split("\n")
    assert not any("error" in line for line in lines[:-1]), lines
    return lines[-1]


def test_cli_refuses_an_unfinished_dataset(dataset, tmp_path, capsys):
    """A build that was interrupted (no manifest.json) or a folder with Parquet files the manifest
    does not list is not a dataset: nothing is tokenized, and the fix is named."""
    root, tok_dir, _ = dataset
    unfinished = tmp_path / "unfinished"
    shutil.copytree(root, unfinished)
    (unfinished / "manifest.json").unlink()
    argv = ["tokenize", "--shards", str(unfinished), "--tokenizer", str(tok_dir), "--out", str(tmp_path / "tokens"),
            "--set", "tokenizer.workers=1"]
    assert main(argv) == 1
    assert _error_line(capsys) == (f"webtext tokenize: error: {unfinished}/manifest.json is missing: {unfinished} "
                                   "is not a finished build (rerun `webtext build`)")
    assert not (tmp_path / "tokens").exists()

    leftover = tmp_path / "leftover"
    shutil.copytree(root, leftover)
    shutil.copy(leftover / "train" / "part-00000.parquet", leftover / "train" / "part-00007.parquet")
    argv[2] = str(leftover)
    assert main(argv) == 1
    assert _error_line(capsys) == (f"webtext tokenize: error: {leftover}/train/part-00007.parquet: not in the "
                                   "manifest, so not part of the dataset (remove it)")
    assert not (tmp_path / "tokens").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_damaged_dataset_shard_is_named_in_one_line(dataset, tmp_path, workers):
    """Same-size damage inside a zstd page (the footer still reads): `webtext tokenize`, run as
    users run it, prints one error line naming the shard and `webtext verify`, with no traceback
    and no warning after it, from the worker processes too."""
    root, tok_dir, _ = dataset
    damaged = tmp_path / "dataset"
    shutil.copytree(root, damaged)
    shard = damaged / "train" / "part-00001.parquet"
    corrupt_text_pages(shard, row_group=1)
    done = subprocess.run([sys.executable, "-m", "webtext", "tokenize", "--shards", str(damaged), "--tokenizer",
                           str(tok_dir), "--out", str(tmp_path / "tokens"), "--set", f"tokenizer.workers={workers}",
                           "--set", "tokenizer.shard_tokens=400"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    lines = [line for line in done.stderr.splitlines() if line and not line.startswith("tokenizing:")]  # bar: \r...
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"webtext tokenize: error: {shard}: not a readable Parquet file (")
    assert lines[0].endswith(f"the dataset shard is damaged: `webtext verify {damaged}` checks the dataset, "
                             "`webtext build` rebuilds it")
    assert not (tmp_path / "tokens" / MANIFEST).exists()


@pytest.mark.parametrize("override", ["tokenizer.workers=0", "tokenizer.shard_tokens=0", "tokenizer.splits=train",
                                      "tokenizer.train_max_documents=-1", "tokenizer.min_frequency=-1",
                                      "tokenizer.vocab_size=257", "tokenizer.shard_size=5"])
def test_bad_config_values_are_refused_by_name(override):
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        load_config(None, [override])


def test_train_max_documents_caps_the_texts_read(dataset):
    root, _, splits = dataset
    texts, total = iter_split_texts(split_files(root, "train"), max_documents=10)
    assert total == 10 and list(texts) == [t for t in splits["train"][0][:10] if t]
