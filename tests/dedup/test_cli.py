"""`webtext dedup` on Parquet input, through the same parser and handler as the real CLI."""

import argparse
import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dedup import cli
from dedup.parquet import STATS_FILE, input_schema
from webtext.config import load_config


def _parse(argv):
    common = argparse.ArgumentParser(add_help=False)
    parser = argparse.ArgumentParser(prog="webtext")
    cli.register(parser.add_subparsers(dest="command"), common)
    args = parser.parse_args(argv)
    args.beam_args = []
    return args


def _write(path, rows, schema=None):
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def _row(doc_id, text, score=1, when=0):
    return {"id": doc_id, "text": text, "score": score, "created_utc": when, "url": f"http://x.example/{doc_id}",
            "post_ids": [doc_id], "crawl_time": dt.datetime(2019, 1, 1, tzinfo=dt.timezone.utc)}


SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("score", pa.int64()), ("created_utc", pa.int64()),
                    ("url", pa.string()), ("post_ids", pa.list_(pa.string())),
                    ("crawl_time", pa.timestamp("us", tz="UTC"))])


def test_dedup_across_two_inputs(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    _write(tmp_path / "a" / "one.parquet", [_row("a1", "The same story, told once."), _row("a2", "Another text.")],
           SCHEMA)
    _write(tmp_path / "two.parquet", [_row("b1", "the same story told once", score=9)], SCHEMA)
    (tmp_path / "a" / "manifest.json").write_text("{}")  # non-Parquet files in input folders are skipped
    out = tmp_path / "out"
    args = _parse(["dedup", "--input", str(tmp_path / "a"), str(tmp_path / "two.parquet"), "--out", str(out)])
    assert args.func(args, load_config(overrides=["dedup.cc_rounds=2"])) == 0
    table = pa.concat_tables(pq.read_table(f) for f in sorted(out.glob("dedup-*.parquet"))).sort_by("id")
    assert table.column("id").to_pylist() == ["a2", "b1"]
    assert table.column("dup_cluster").to_pylist() == ["a2", "b1"]
    assert table.column("dup_count").to_pylist() == [0, 1]  # b1 absorbed a1
    assert table.column("post_ids").to_pylist() == [["a2"], ["b1"]]  # other columns pass through
    assert table.schema.field("crawl_time").type == pa.timestamp("us", tz="UTC")
    stats = json.loads((out / STATS_FILE).read_text())
    assert stats["stages"]["dedup_exact"]["dropped"] == {"exact_duplicate": 1}
    assert stats["stages"]["dedup_near"]["in"] == 2
    assert "dedup_exact" in capsys.readouterr().out


def test_broken_inputs_are_named(tmp_path):
    _write(tmp_path / "no_score.parquet", [{"id": "x", "text": "t", "created_utc": 0, "url": "u"}])
    with pytest.raises(ValueError, match=r"no_score\.parquet: missing column 'score'"):
        input_schema([str(tmp_path / "no_score.parquet")])
    _write(tmp_path / "str_score.parquet", [{"id": "x", "text": "t", "score": "9", "created_utc": 0, "url": "u"}])
    with pytest.raises(ValueError, match=r"column 'score' is string, expected int64"):
        input_schema([str(tmp_path / "str_score.parquet")])
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match=r"junk\.parquet: not a readable Parquet file"):
        input_schema([str(tmp_path / "junk.parquet")])
    _write(tmp_path / "ok.parquet", [_row("a", "t")], SCHEMA)
    _write(tmp_path / "other.parquet", [{"id": "x", "text": "t", "score": 1, "created_utc": 0, "url": "u"}])
    with pytest.raises(ValueError, match=r"other\.parquet: schema differs"):
        input_schema([str(tmp_path / "ok.parquet"), str(tmp_path / "other.parquet")])
    with pytest.raises(ValueError, match=r"no \*\.parquet files"):
        input_schema([])


def test_output_folder_must_not_hold_the_inputs(tmp_path):
    _write(tmp_path / "docs.parquet", [_row("a", "t")], SCHEMA)
    args = _parse(["dedup", "--input", str(tmp_path), "--out", str(tmp_path)])
    with pytest.raises(ValueError, match=r"contains input .*docs\.parquet"):
        args.func(args, load_config())
    assert (tmp_path / "docs.parquet").exists()
