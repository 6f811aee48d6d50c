"""n-gram overlap (overlap/): normalisation, Bloom filter, report and decontamination."""

import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from overlap.bloom import BloomError, BloomFilter
from overlap.config import OverlapConfig
from overlap.decontaminate import decontaminate
from overlap.ngrams import ngram_hashes, normalize_text, normalize_words
from overlap.report import read_documents
from webtext.cli import main
from webtext.config import ConfigError, load_config

WORDS = [f"w{i}" for i in range(5000)]


def random_text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def brute_ngrams(text: str, n: int) -> list[tuple]:
    words = normalize_words(text)
    return [tuple(words[i: i + n]) for i in range(len(words) - n + 1)]


@pytest.mark.parametrize("text, expected", [
    ("Hello, World!", "hello world"),
    ("  It's   2019—OK?\n\tYes.", "it s 2019 ok yes"),
    ("Straße ÜBER café", "straße über café"),
    ("snake_case and-dash", "snake case and dash"),
    ("", ""),
    ("!!! ...", ""),
])
def test_normalisation(text, expected):
    assert normalize_text(text) == expected


def test_ngram_hashes_identify_word_sequences():
    a = ngram_hashes(normalize_words("The cat sat on the mat, the cat sat on the MAT"), 3)
    assert len(a) == 10
    assert a[0] == a[6] and a[1] == a[7]  # "the cat sat", "cat sat on" repeat
    assert len(set(a.tolist())) == 6
    assert len(ngram_hashes(["only", "two"], 3)) == 0
    assert ngram_hashes(["a", "b"], 2)[0] != ngram_hashes(["b", "a"], 2)[0]


def test_filter_size_follows_the_formula():
    bloom = BloomFilter.for_items(1000, 1e-8, 8)
    assert bloom.k == 27 and 38_000 < bloom.m < 38_500  # -N ln p / ln(2)^2 = 38,341
    with pytest.raises(ValueError, match="fp_rate"):
        BloomFilter.for_items(10, 1.5, 8)


def test_no_false_negatives_and_no_false_positives_in_a_million_random_ngrams():
    rng = np.random.default_rng(8)
    vocab = [f"v{i}" for i in range(50_000)]
    train = ngram_hashes([vocab[i] for i in rng.integers(0, len(vocab), 200_007)], 8)
    bloom = BloomFilter.for_items(len(train), 1e-8, 8)
    bloom.add(train)
    assert bloom.contains(train).all()
    queries = ngram_hashes([vocab[i] for i in rng.integers(0, len(vocab), 1_000_007)], 8)
    assert len(queries) == 1_000_000
    assert int(bloom.contains(queries).sum()) == 0  # expected 0.01 at p = 1e-8


def test_filter_file_round_trip_and_corruption(tmp_path):
    bloom = BloomFilter.for_items(100, 1e-8, 8, {"split": "train"})
    hashes = ngram_hashes([f"x{i}" for i in range(107)], 8)
    bloom.add(hashes)
    path = str(tmp_path / "f.bloom")
    bloom.save(path)
    loaded = BloomFilter.load(path)
    assert (loaded.m, loaded.k, loaded.n, loaded.items) == (bloom.m, bloom.k, 8, 100)
    assert loaded.header()["split"] == "train" and loaded.contains(hashes).all()
    data = bytearray((tmp_path / "f.bloom").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "bad.bloom").write_bytes(bytes(data))
    with pytest.raises(BloomError, match="checksum"):
        BloomFilter.load(str(tmp_path / "bad.bloom"))
    (tmp_path / "cut.bloom").write_bytes(bytes(data[:-10]))
    with pytest.raises(BloomError, match="bytes of bits"):
        BloomFilter.load(str(tmp_path / "cut.bloom"))
    (tmp_path / "other.bloom").write_bytes(b"PK\x03\x04 not a filter")
    with pytest.raises(BloomError, match="not a webtext Bloom filter"):
        BloomFilter.load(str(tmp_path / "other.bloom"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A dataset (train/val shards) and eval files in three formats, with known overlap."""
    rng = random.Random(5)
    root = tmp_path_factory.mktemp("overlap")
    eval_docs = [random_text(rng, 40) for _ in range(6)]
    train_docs = [random_text(rng, 60) for _ in range(30)]
    train_docs[3] = "Intro text here. " + eval_docs[0] + " and then more."  # a full copy
    train_docs[7] = random_text(rng, 20) + " " + " ".join(eval_docs[1].split()[:15])  # 15 words of eval 1
    train_docs[9] = " ".join(eval_docs[2].split()[:7]) + " " + random_text(rng, 30)  # 7 words: no 8-gram
    for split, docs in [("train", train_docs), ("val", [random_text(rng, 50) for _ in range(5)])]:
        (root / "data" / split).mkdir(parents=True)
        half = len(docs) // 2
        for i, chunk in enumerate([docs[:half], docs[half:]]):
            pq.write_table(pa.table({"id": [f"{split}{i}-{j}" for j in range(len(chunk))], "text": chunk}),
                           root / "data" / split / f"{split}-{i:05d}.parquet")
    (root / "eval.txt").write_text("\n".join(eval_docs[:2]) + "\n\n", encoding="utf-8")
    (root / "eval.jsonl").write_text("\n".join(json.dumps({"text": t, "label": 1}) for t in eval_docs[2:4]) + "\n")
    pq.write_table(pa.table({"text": eval_docs[4:]}), root / "eval.parquet")
    return root, train_docs, eval_docs


def test_report_matches_brute_force(corpus, tmp_path, capsys):
    root, train_docs, eval_docs = corpus
    bloom_path = str(tmp_path / "train.bloom")
    assert main(["overlap", "build", "--shards", str(root / "data"), "--out", bloom_path]) == 0
    assert main(["overlap", "report", "--filter", bloom_path, "--eval", str(root / "eval.txt"),
                 str(root / "eval.jsonl"), str(root / "eval.parquet"), "--out", str(tmp_path / "rep")]) == 0
    assert "report:" in capsys.readouterr().out
    report = json.loads((tmp_path / "rep" / "overlap.json").read_text())
    assert report["filter"]["n"] == 8 and report["filter"]["k"] == 27
    train_set = {g for doc in train_docs for g in brute_ngrams(doc, 8)}
    expected_files = {"eval.txt": eval_docs[:2], "eval.jsonl": eval_docs[2:4], "eval.parquet": eval_docs[4:]}
    by_file = {r["file"].rsplit("/", 1)[-1]: r for r in report["files"]}
    for name, docs in expected_files.items():
        grams = [g for doc in docs for g in brute_ngrams(doc, 8)]
        found = sum(g in train_set for g in grams)
        r = by_file[name]
        assert (r["documents"], r["ngrams"], r["found"]) == (len(docs), len(grams), found)
    txt = by_file["eval.txt"]
    assert txt["found"] == 33 + 8  # eval 0 whole (40 words: 33 8-grams), 15 words of eval 1: 8 8-grams
    assert txt["top_documents"][0]["index"] == 0 and txt["top_documents"][0]["fraction"] == 1.0
    assert txt["per_document"]["buckets"]["100%"] == 1 and txt["per_document"]["buckets"]["(10, 50%]"] == 1
    assert by_file["eval.jsonl"]["found"] == 0  # 7 shared words make no 8-gram
    markdown = (tmp_path / "rep" / "overlap.md").read_text()
    assert "| eval file |" in markdown and "Most overlapping documents" in markdown


def test_decontaminate_drops_overlapping_training_docs(corpus, tmp_path):
    root, train_docs, eval_docs = corpus
    out = tmp_path / "clean"
    counts = decontaminate(str(root / "data"), [str(root / "eval.*")], str(out), OverlapConfig())["decontaminate"]
    eval_set = {g for doc in eval_docs for g in brute_ngrams(doc, 13)}
    dirty = [i for i, doc in enumerate(train_docs) if any(g in eval_set for g in brute_ngrams(doc, 13))]
    assert dirty == [3, 7]
    assert (counts.records_in, counts.records_out, counts.dropped) == (30, 28, {"eval_overlap": 2})
    kept = [t for p in sorted((out / "train").glob("*.parquet")) for t in pq.read_table(p).column("text").to_pylist()]
    assert kept == [d for i, d in enumerate(train_docs) if i not in dirty]
    for p in (root / "data" / "val").glob("*.parquet"):
        assert pq.read_table(out / "val" / p.name).equals(pq.read_table(p))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["decontaminate"]["dropped"] == {"eval_overlap": 2}
    assert sum(s["rows"] for s in manifest["shards"]) == 28 + 5 and manifest["n"] == 13
    # a lenient threshold keeps the partial copy (doc 7: 3 of its 22 13-grams shared) but not doc 3
    lenient = OverlapConfig(decontaminate_threshold=0.5)
    counts = decontaminate(str(root / "data"), [str(root / "eval.txt")], str(tmp_path / "c2"), lenient)
    assert counts["decontaminate"].dropped == {"eval_overlap": 1}


def test_malformed_eval_files_name_file_and_line(tmp_path):
    bad_json = tmp_path / "e.jsonl"
    bad_json.write_text('{"text": "fine"}\n{"text": broken\n')
    with pytest.raises(ValueError, match=r"e\.jsonl:2: not a JSON object"):
        list(read_documents(str(bad_json)))
    no_field = tmp_path / "f.jsonl"
    no_field.write_text('{"body": "x"}\n')
    with pytest.raises(ValueError, match=r"f\.jsonl:1: no string field 'text'"):
        list(read_documents(str(no_field)))
    latin = tmp_path / "g.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(ValueError, match=r"g\.txt: not UTF-8"):
        list(read_documents(str(latin)))
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "h.parquet")
    with pytest.raises(ValueError, match=r"h\.parquet: no column 'text'"):
        list(read_documents(str(tmp_path / "h.parquet")))
    (tmp_path / "i.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match=r"i\.parquet: not a readable Parquet"):
        list(read_documents(str(tmp_path / "i.parquet")))
    (tmp_path / "j.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="unknown eval file type"):
        list(read_documents(str(tmp_path / "j.csv")))
    assert list(read_documents(str(no_field), "body")) == ["x"]


def test_cli_errors(tmp_path, capsys):
    assert main(["overlap", "build", "--shards", str(tmp_path), "--out", str(tmp_path / "f")]) == 1
    assert "no .parquet shards" in capsys.readouterr().err
    assert main(["overlap", "build", "--shards", str(tmp_path), "--out", "f", "--set", "overlap.fp_rate=2"]) == 2
    assert "overlap.fp_rate" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="overlap.n"):
        load_config(None, ["overlap.n=zero"])
    assert load_config().overlap == OverlapConfig()
