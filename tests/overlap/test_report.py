"""`overlap build` + `overlap report` against brute-force set computations, and their errors."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from overlap.bloom import BloomFilter
from overlap.sources import read_documents
from tests.overlap.conftest import brute_ngrams
from webtext.cli import main
from webtext.config import ConfigError, load_config


@pytest.fixture(scope="module")
def train_filter(corpus, tmp_path_factory):
    root, _, _ = corpus
    path = str(tmp_path_factory.mktemp("filter") / "train.bloom")
    assert main(["overlap", "build", "--shards", str(root / "data"), "--out", path, "--set", "overlap.workers=1"]) == 0
    return path


def test_build_counts_documents_and_parallel_build_is_identical(corpus, train_filter, tmp_path):
    root, train_docs, _ = corpus
    stats = json.loads(open(train_filter + ".stats.json").read())
    assert stats["stages"]["overlap_build"]["in"] == 30
    assert stats["stages"]["overlap_build"]["dropped"] == {"fewer_than_n_words": 1}  # "too short"
    assert stats["ngrams"] == sum(len(brute_ngrams(d, 8)) for d in train_docs)
    # 2 shards x 4 row groups, spread over 3 worker processes, merged by OR: the same bits
    parallel = str(tmp_path / "parallel.bloom")
    assert main(["overlap", "build", "--shards", str(root / "data"), "--out", parallel, "--set", "overlap.workers=3"]) == 0
    one, three = BloomFilter.load(train_filter), BloomFilter.load(parallel)
    assert (one.m, one.k, one.items) == (three.m, three.k, three.items)
    assert np.array_equal(one.bits, three.bits)


def test_report_matches_brute_force(corpus, train_filter, tmp_path, capsys):
    root, train_docs, eval_docs = corpus
    out = tmp_path / "rep"
    assert main(["overlap", "report", "--filter", train_filter, "--against", str(root / "eval"),
                 "--text-field", "question", "--out", str(out)]) == 0
    assert "report:" in capsys.readouterr().out
    report = json.loads((out / "overlap.json").read_text())
    assert report["filter"]["n"] == 8 and report["filter"]["k"] == 27 and report["filter"]["split"] == "train"
    train_set = {g for doc in train_docs for g in brute_ngrams(doc, 8)}
    expected_files = {"a.txt": eval_docs[:2], "b.jsonl": eval_docs[2:4], "c.parquet": eval_docs[4:]}
    by_file = {r["file"].rsplit("/", 1)[-1]: r for r in report["files"]}
    assert set(by_file) == set(expected_files)
    for name, docs in expected_files.items():
        grams = [g for doc in docs for g in brute_ngrams(doc, 8)]
        found = sum(g in train_set for g in grams)
        r = by_file[name]
        assert (r["documents"], r["ngrams"], r["found"]) == (len(docs), len(grams), found)
        assert r["percent"] == pytest.approx(100 * found / len(grams))
    txt = by_file["a.txt"]
    assert txt["found"] == 33 + 8  # eval 0 whole (40 words: 33 8-grams, upper-cased in train), 15 words of eval 1
    assert [t["index"] for t in txt["top_documents"]] == [0, 1] and txt["top_documents"][0]["fraction"] == 1.0
    assert txt["per_document"]["buckets"]["100%"] == 1 and txt["per_document"]["buckets"]["(10, 50%]"] == 1
    assert txt["per_document"]["median"] == pytest.approx((1 + 8 / 33) / 2)
    assert by_file["b.jsonl"]["found"] == 0 and by_file["b.jsonl"]["top_documents"] == []  # 7 words: no 8-gram
    assert report["mean_percent"] == pytest.approx(sum(r["percent"] for r in by_file.values()) / 3)
    markdown = (out / "overlap.md").read_text()
    assert "| eval set |" in markdown and "Most overlapping documents" in markdown and "a.txt" in markdown


def test_report_of_own_val_split_against_train(corpus, train_filter, tmp_path):
    """The paper's "overlap with own training split" column: val shards measured against train."""
    root, train_docs, _ = corpus
    assert main(["overlap", "report", "--filter", train_filter, "--against", str(root / "data" / "val"),
                 "--text-field", "question", "--out", str(tmp_path / "val")]) == 0  # the field is for eval files
    report = json.loads((tmp_path / "val" / "overlap.json").read_text())
    [val] = report["files"]  # the split folder is one eval set, read from both of its shards
    assert val["file"] == str(root / "data" / "val") and len(val["files"]) == 2
    val_docs = [t for f in val["files"] for t in read_documents(f)]
    train_set = {g for doc in train_docs for g in brute_ngrams(doc, 8)}
    grams = [g for doc in val_docs for g in brute_ngrams(doc, 8)]
    assert (val["documents"], val["ngrams"], val["found"]) == (6, len(grams), sum(g in train_set for g in grams))
    assert report["mean_percent"] == val["percent"]


def test_report_errors(corpus, train_filter, tmp_path, capsys):
    root, _, _ = corpus
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "short.txt").write_text("just seven words in this one line\n")
    cases = [
        (["--against", str(tmp_path / "empty.txt")], "empty.txt: no documents"),
        (["--against", str(tmp_path / "short.txt")], "no document has 8 or more words"),
        (["--against", str(tmp_path / "missing.txt")], "no files match"),
        (["--against", str(root / "eval" / "b.jsonl")], "b.jsonl:1: no string field 'text'"),
        (["--against", str(root / "eval" / "a.txt"), "--set", "overlap.n=13"], "holds 8-grams but overlap.n is 13"),
    ]
    for extra, message in cases:
        assert main(["overlap", "report", "--filter", train_filter, "--out", str(tmp_path / "r"), *extra]) == 1
        assert message in capsys.readouterr().err
    assert main(["overlap", "report", "--filter", str(root / "eval" / "a.txt"), "--against", str(root / "eval" / "a.txt"),
                 "--out", str(tmp_path / "r")]) == 1
    assert "not a webtext Bloom filter" in capsys.readouterr().err


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


def test_build_errors(corpus, tmp_path, capsys):
    root, _, _ = corpus
    assert main(["overlap", "build", "--shards", str(tmp_path), "--out", str(tmp_path / "f")]) == 1
    assert "no .parquet shards" in capsys.readouterr().err
    (tmp_path / "bad" / "train").mkdir(parents=True)
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "bad" / "train" / "s.parquet")
    assert main(["overlap", "build", "--shards", str(tmp_path / "bad"), "--out", str(tmp_path / "f")]) == 1
    assert "s.parquet: no column 'text'" in capsys.readouterr().err
    assert main(["overlap", "build", "--shards", str(tmp_path), "--out", "f", "--set", "overlap.fp_rate=2"]) == 2
    assert "overlap.fp_rate" in capsys.readouterr().err
    for bad in ["overlap.n=0", "overlap.decontaminate_mode=trim", "overlap.workers=-1", "overlap.nn=8"]:
        with pytest.raises(ConfigError, match="overlap"):
            load_config(None, [bad])
    assert not (tmp_path / "f").exists()
