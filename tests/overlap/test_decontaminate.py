"""`overlap decontaminate`: drop or cut contaminated training documents, a dataset `verify` accepts."""

import json
import shutil

import pyarrow.parquet as pq
import pytest

import overlap.decontaminate as dc
from tests.overlap.conftest import brute_ngrams
from webtext.cli import main
from webtext.config import load_config


def texts(out, split="train") -> list[str]:
    return [t for p in sorted((out / split).glob("*.parquet")) for t in pq.read_table(p).column("text").to_pylist()]


def decon(corpus, out, *settings, against=None):
    root, _, _ = corpus
    return main(["overlap", "decontaminate", "--shards", str(root / "data"), "--against", *(against or [str(root / "eval")]),
                 "--text-field", "question", "--out", str(out), "--set", "overlap.workers=1", *[a for s in settings for a in ("--set", s)]])


def test_drop_matches_brute_force_and_verifies(corpus, tmp_path, capsys):
    root, train_docs, eval_docs = corpus
    out = tmp_path / "clean"
    assert decon(corpus, out) == 0
    assert "decontaminated dataset" in capsys.readouterr().out
    eval_set = {g for doc in eval_docs for g in brute_ngrams(doc, 13)}
    dirty = [i for i, doc in enumerate(train_docs) if any(g in eval_set for g in brute_ngrams(doc, 13))]
    assert dirty == [3, 7]
    assert texts(out) == [d for i, d in enumerate(train_docs) if i not in dirty]
    for split in ("val", "test"):  # not filtered: byte-identical copies (val holds eval doc 5)
        for p in (root / "data" / split).glob("*.parquet"):
            assert (out / split / p.name).read_bytes() == p.read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stages"]["decontaminate"]["in"] == 30
    assert manifest["stages"]["decontaminate"]["dropped"] == {"eval_overlap": 2}
    assert manifest["stages"]["write"]["out"] == manifest["rows"] == 28 + 6 + 4
    assert manifest["decontamination"]["n"] == 13 and manifest["decontamination"]["eval_documents"] == 6
    assert (out / "README.md").exists() and not (out / ".staging").exists()
    assert main(["verify", str(out)]) == 0


def test_threshold_and_splits(corpus, tmp_path):
    root, _, _ = corpus
    # doc 7 shares 3 of its 23 13-grams (13%), doc 3 (a whole copy) 28 of 34: only doc 3 goes at 50%
    assert decon(corpus, tmp_path / "c1", "overlap.decontaminate_threshold=0.5", "overlap.decontaminate_splits=[train,val]") == 0
    manifest = json.loads((tmp_path / "c1" / "manifest.json").read_text())
    assert manifest["stages"]["decontaminate"]["in"] == 36
    assert manifest["stages"]["decontaminate"]["dropped"] == {"eval_overlap": 2}  # train doc 3, val doc 5
    assert len(texts(tmp_path / "c1", "val")) == 5


def test_cut_removes_exactly_the_shared_words(corpus, tmp_path):
    root, train_docs, eval_docs = corpus
    out = tmp_path / "cut"
    assert decon(corpus, out, "overlap.decontaminate_mode=cut") == 0
    kept = texts(out)
    assert len(kept) == 30
    assert kept[3] == "Intro text here.  and then more."  # the copied 40 words, cut from first to last char
    assert kept[7] == " ".join(train_docs[7].split()[:20]) + " "  # the 15 copied words at its end
    assert [t for i, t in enumerate(kept) if i not in (3, 7)] == [t for i, t in enumerate(train_docs) if i not in (3, 7)]
    table = pq.read_table(sorted((out / "train").glob("*.parquet"))[0])
    rows = table.to_pylist()
    assert rows[3]["n_chars"] == len(kept[3]) and rows[3]["n_words"] == 6
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["decontamination"]["documents_cut"] == 2
    assert manifest["stages"]["decontaminate"]["dropped"] == {}
    assert main(["verify", str(out)]) == 0


def test_cut_to_nothing_is_dropped(corpus, tmp_path):
    root, train_docs, _ = corpus
    (tmp_path / "train_copy.txt").write_text(train_docs[5] + "\n")
    assert decon(corpus, tmp_path / "out", "overlap.decontaminate_mode=cut", against=[str(tmp_path / "train_copy.txt")]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["stages"]["decontaminate"]["dropped"] == {"cut_to_nothing": 1}
    assert train_docs[5] not in texts(tmp_path / "out")


class Killed(Exception):
    """Stands for the process being killed while a shard is in progress."""


def test_killed_run_resumes_without_redoing_finished_shards(corpus, tmp_path, monkeypatch):
    out = tmp_path / "resume"
    real = dc.process_shard
    calls, kill_at = [], [2]

    def crash_on_second(*args, **kwargs):
        calls.append(args[2]["path"])
        if len(calls) in kill_at:
            kill_at.clear()
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(dc, "process_shard", crash_on_second)
    config = load_config()
    overlap_config = config.overlap.model_copy(update={"text_field": "question", "workers": 1})
    root, _, _ = corpus
    with pytest.raises(Killed):
        dc.decontaminate(str(root / "data"), [str(root / "eval")], str(out), overlap_config, config.build)
    assert not (out / "manifest.json").exists()
    calls.clear()
    manifest = dc.decontaminate(str(root / "data"), [str(root / "eval")], str(out), overlap_config, config.build)
    assert len(calls) == len(manifest["shards"]) - 1  # the first shard was finished before the kill
    assert main(["verify", str(out)]) == 0
    # other settings do not reuse what an unfinished run of different settings staged
    calls.clear()
    overlap_config = overlap_config.model_copy(update={"decontaminate_mode": "cut"})
    dc.decontaminate(str(root / "data"), [str(root / "eval")], str(out), overlap_config, config.build)
    assert len(calls) == len(manifest["shards"])


def test_decontaminate_errors(corpus, tmp_path, capsys):
    root, _, _ = corpus
    (tmp_path / "short.txt").write_text("a few words only\n")
    assert decon(corpus, tmp_path / "o", against=[str(tmp_path / "short.txt")]) == 1
    assert "no eval document has 13 or more words" in capsys.readouterr().err
    assert main(["overlap", "decontaminate", "--shards", str(root / "eval"), "--against", str(root / "eval" / "a.txt"),
                 "--out", str(tmp_path / "o")]) == 1
    assert "not a finished build" in capsys.readouterr().err
    assert decon(corpus, str(root / "data") + "/./") == 1
    assert "--out must differ" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    damaged = tmp_path / "damaged"
    shutil.copytree(root / "data", damaged)
    shard = damaged / "train" / "shard-00001-of-00002.parquet"
    shard.write_bytes(shard.read_bytes()[:-1] + b"X")
    assert main(["overlap", "decontaminate", "--shards", str(damaged), "--against", str(root / "eval" / "a.txt"),
                 "--out", str(tmp_path / "o2"), "--set", "overlap.workers=1"]) == 1
    assert "shard-00001-of-00002.parquet: sha256 differs from the source manifest" in capsys.readouterr().err
    assert not (tmp_path / "o2" / "manifest.json").exists()
