"""The demo's own logic: its output folder, the counts table it reads, its overrides.
(The chain itself runs in tests/test_end_to_end.py.)"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from webtext import demo
from webtext.cli import build_parser
from webtext.config import load_config
from core.stats import StageCounts, write_stats_json
from sample.bundled import Sample


def _write(out, folder, name, counts):
    (out / folder).mkdir(parents=True, exist_ok=True)
    write_stats_json(out / folder / name, {c.stage: c for c in counts})


def test_counts_table_reads_every_stats_file_in_pipeline_order(tmp_path):
    _write(tmp_path, "tokens", "tokenize_stats.json", [StageCounts("tokenize", 3, 3)])
    _write(tmp_path, "dataset", "build_stats.json", [
        StageCounts("write", 3, 3), StageCounts("captures", 5, 5), StageCounts("read", 5, 5),
        StageCounts("filter", 5, 3, {"too_short": 2})])
    _write(tmp_path, "crawl", "crawl_stats.json", [StageCounts("crawl", 6, 5, {"dns": 1})])
    _write(tmp_path, "urls", "_harvest_stats.json", [StageCounts("harvest", 9, 6, {"low_score": 3})])
    counts = demo.read_stage_counts(tmp_path)
    assert list(counts) == ["harvest", "crawl", "read", "captures", "filter", "write", "tokenize"]
    assert counts["filter"].dropped == {"too_short": 2}
    assert counts["crawl"].records_in == 6 and counts["crawl"].records_out == 5


def test_counts_table_reads_the_stats_file_names_of_earlier_versions(tmp_path):
    """An output folder written before harvest_stats.json became _harvest_stats.json."""
    _write(tmp_path, "urls", "harvest_stats.json", [StageCounts("harvest", 9, 6, {"low_score": 3})])
    assert demo.read_stage_counts(tmp_path)["harvest"].dropped == {"low_score": 3}
    _write(tmp_path, "urls", "_harvest_stats.json", [StageCounts("harvest", 4, 4)])
    assert demo.read_stage_counts(tmp_path)["harvest"].records_in == 4  # the current name wins


def test_stats_file_names_are_the_stages_own():
    from crawl.url_table import LEGACY_STATS_FILE, STATS_FILE
    from shards.build import STATS_FILE as BUILD_STATS_FILE
    from training.tokenize import STATS as TOKENIZE_STATS_FILE

    names = {folder: (name, legacy_name) for folder, name, legacy_name in demo.STATS_FILES}
    assert names["urls"] == (STATS_FILE, LEGACY_STATS_FILE)
    assert names["dataset"] == (BUILD_STATS_FILE, None)
    assert names["tokens"] == (TOKENIZE_STATS_FILE, None)


def test_counts_table_skips_missing_files_and_rejects_broken_ones(tmp_path):
    assert demo.read_stage_counts(tmp_path) == {}
    (tmp_path / "crawl").mkdir()
    (tmp_path / "crawl" / "crawl_stats.json").write_text("{not json")
    with pytest.raises(json.JSONDecodeError):
        demo.read_stage_counts(tmp_path)
    (tmp_path / "crawl" / "crawl_stats.json").write_text(json.dumps({"urls": 3}))
    with pytest.raises(KeyError):
        demo.read_stage_counts(tmp_path)


def test_validation_losses_come_from_val_records_only(tmp_path):
    log = tmp_path / "log.jsonl"
    assert demo.validation_losses(log) == []
    records = [
        {"kind": "config", "step": 0, "train": {"val_split": "val", "eval_batches": 4}},
        {"kind": "train", "step": 50, "loss": 6.0},
        {"kind": "val", "step": 50, "loss": 5.5, "perplexity": 245.0},
        {"kind": "val", "step": 100, "loss": 4.25, "perplexity": 70.1},
        {"kind": "end", "step": 100},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert demo.validation_losses(log) == [(50, 5.5), (100, 4.25)]


def test_out_must_be_empty_or_made_by_the_demo(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        demo.prepare_out(a_file)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    with pytest.raises(ValueError, match="not made by `webtext demo`"):
        demo.prepare_out(foreign)
    assert (foreign / "keep.txt").read_text() == "precious"
    ours = tmp_path / "ours"
    demo.prepare_out(ours)
    (ours / "urls").mkdir()
    demo.prepare_out(ours)  # a rerun clears what the earlier demo left
    assert [p.name for p in ours.iterdir()] == [demo.DEMO_MARKER]


def test_bad_out_is_a_clear_cli_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    proc = subprocess.run([sys.executable, "-m", "webtext", "demo", "--out", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "not made by `webtext demo`" in proc.stderr and "Traceback" not in proc.stderr


def test_the_demo_config_is_partial_and_names_real_keys():
    cfg = load_config(demo.DEMO_CONFIG)
    assert cfg.model.preset == "tiny" and cfg.train.max_steps > cfg.train.eval_interval > 0
    assert cfg.train.batch_tokens % cfg.train.micro_batch_size == 0
    assert cfg.crawl.user_agent == load_config().crawl.user_agent  # what it does not set stays default
    listed = demo.demo_settings().splitlines()
    assert "  model.preset: tiny  (0.7M parameters)" in listed and len(listed) == 23
    assert "  crawl.archive.requests_per_second: 20  (a local archive; keep the default 1.0 for public ones)" in listed
    assert demo.local_archive_port() == 8095 and demo.local_archive_port(overrides=["crawl.source=live"]) is None


def test_every_command_carries_the_demo_config_and_the_users_settings():
    """The demo prints and runs the same argument lists: a copied command gets the demo's settings."""
    steps = demo.demo_steps(Path("out"), Sample(Path("sample")), ["mine.yaml"], ["train.max_steps=5"])
    shown = demo._shown_path(demo.DEMO_CONFIG)
    for _, args in steps:
        assert args[-6:] == ["--config", shown, "--config", "mine.yaml", "--set", "train.max_steps=5"]
    train = next(args for _, args in steps if args[0] == "train")
    parsed = build_parser("train").parse_args(train[:-4] + ["--set", "train.max_steps=5"])
    assert load_config(parsed.config, parsed.overrides) == load_config(demo.DEMO_CONFIG, ["train.max_steps=5"])


def test_a_bad_user_override_stops_the_demo_before_any_stage(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "webtext", "demo", "--out", str(out),
                           "--set", "train.no_such_key=1"], capture_output=True, text=True)
    assert proc.returncode == 2 and "train.no_such_key: unknown key" in proc.stderr
    assert not out.exists()


def test_every_demo_stage_is_a_real_command():
    from webtext.cli import STAGE_CLIS

    commands = {c for cmds in STAGE_CLIS.values() for c in cmds}
    steps = demo.demo_steps(Path("out"), Sample(Path("sample")))
    assert [args[0] for _, args in steps] == [
        "harvest", "crawl", "build", "tokenizer", "tokenize", "train", "sample"]
    assert all(args[0] in commands for _, args in steps)
    assert steps[0][1][2] == str(Path("sample/reddit/RS_sample.zst"))
    assert steps[1][1][steps[1][1].index("--replay") + 1] == str(Path("sample/web"))
