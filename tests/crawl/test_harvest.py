"""`webtext harvest` (crawl/harvest.py): accounting and the Beam pipeline end to end. The rules
on single records are tested in test_harvest_rules.py."""

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard

from core.lock import FolderBusyError, exclusive_folder
from crawl import dumps
from crawl.dumps import DumpError, iter_line_batches
from crawl.harvest import STAGING_DIR, STATS_FILE, URL_SCHEMA, cyclic_gc_paused, file_count_for, run_harvest, url_hash
from crawl.harvest_rules import HarvestRules, UrlRow, merge_posts, url_row
from crawl.url_table import read_url_table
from crawl.urls import url_key
from tests.crawl.submissions import dump_line, submission
from tests.sample.truth import BUNDLED, dump_truth
from webtext.cli import main
from webtext.config import ConfigError, load_config

STORY = "http://www.example.com/story?id=1&amp;utm_source=x"
FILE_A = [
    dump_line(submission("a1", STORY, 5, title="Grüße 🎉")),
    dump_line(submission("a2", "https://example.com/story?id=1#top", 12, created="1500000100", sub="Python")),
    dump_line(submission("zz", "https://blog.example.org/post", 3, created=1500000200.0, sub="blog")),
    dump_line(submission("b1", "http://blog.example.org/low", 2)),
    dump_line(submission("b2", "https://www.reddit.com/r/x/comments/b2/t/", 50, is_self=True)),
    dump_line(submission("b3", "http://nsfw.example/x", over_18=True)),
    dump_line({"promoted": True, "url": "http://ads.example/", "id": "b4", "created_utc": 1500000000}),
    dump_line(submission("b5", None, 9)),
    dump_line(submission("b6", ..., 9)),
    dump_line(submission("b7", "http://ok.example/", 9, created="yesterday")),
    dump_line(submission("b8", "http://ok.example/", "lots")),
    b'{"id": "b9", "score": 50, "url": "http://x.example/',
    b"\x00" * 32 + dump_line(submission("ba", "http://padded.example/")),
    b"[1, 2, 3]",
    b"",
    dump_line(submission("bb", "ftp://files.example/a.txt")),
    dump_line(submission("bc", "http://192.168.0.1/admin")),
    dump_line(submission("bd", "https://en.m.wikipedia.org/wiki/X")),
    dump_line(submission("be", "https://i.imgur.com/abc")),
    dump_line(submission("bf", "http://files.example/report.PDF")),
    dump_line(submission("bg", "http://exa mple.com/x")),
    dump_line(submission(..., "http://no-id.example/")),
    b'{"id": "c1", "title": "\xff\xfe", "url": "http://bad-utf8.example/", "score": 9}',
    dump_line(submission("100", "http://example.com/story?id=1", 7, created=1499999999)),
]
FILE_B = [
    dump_line(submission("a2", "https://example.com/story?id=1", 20, created="1500000100", sub="Python")),
    dump_line(submission("c2", "http://bücher.example/a", 4, sub="de", created=1500000300)),
    dump_line(submission("c3", "http://cross.example/a", 9, crosspost_parent_list=[
        {"score": 1, "is_self": True, "over_18": True, "url": "https://www.reddit.com/r/a/"}])),
    dump_line(submission("d1", "http://sum.example/a", 2)),
    dump_line(submission("d2", "http://sum.example/a", 1)),
]
STORY_ROW = {
    "url": "https://example.com/story?id=1", "url_key": "example.com/story?id=1", "domain": "example.com",
    "score": 20, "post_ids": ["a1", "a2", "100"], "subreddits": ["Python", "news"],
    "titles": ["Grüße 🎉", "A title", "A title"], "first_created_utc": 1499999999, "num_posts": 3,
}
MAX_POST_DROPS = {
    "low_score": 3, "self_post": 1, "nsfw": 1, "promoted": 1, "missing_url": 2, "bad_created_utc": 1,
    "bad_score": 1, "malformed_json": 4, "empty_line": 1, "bad_scheme": 1, "private_address": 1,
    "wikipedia": 1, "blocked_domain": 1, "blocked_extension": 1, "bad_url": 1, "missing_id": 1,
    "duplicate_post": 1,
}


def zstd_long(data: bytes) -> bytes:
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=31, enable_ldm=True)
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()
    return compressor.compress(data) + compressor.flush()


@pytest.fixture(scope="session")
def hand_dumps(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hand_dumps")
    (folder / "RS_hand.zst").write_bytes(zstd_long(b"\n".join(FILE_A) + b"\n"))
    (folder / "RS_hand2.ndjson").write_bytes(b"\n".join(FILE_B))  # no final newline
    return folder


def harvest(dumps, out, *overrides):
    config = load_config(None, list(overrides))
    return run_harvest([str(p) for p in dumps], str(out), config.harvest, config.beam)


def test_url_schema_columns_are_the_row_fields():
    assert URL_SCHEMA.names == list(UrlRow._fields)


def read_rows(out: Path) -> list[dict]:
    rows = []
    for path in sorted(out.glob("urls-*.parquet")):
        table = pq.read_table(path)
        assert table.schema.equals(URL_SCHEMA)
        rows += table.to_pylist()
    return rows


@pytest.fixture(scope="session")
def hand_run(hand_dumps, tmp_path_factory):
    out = tmp_path_factory.mktemp("hand_out")
    stats = harvest([hand_dumps], out)
    return out, stats


def test_hand_dump_rows(hand_run):
    out, _ = hand_run
    rows = read_rows(out)
    assert [r["url_key"] for r in rows] == [
        "blog.example.org/post", "cross.example/a", "example.com/story?id=1", "xn--bcher-kva.example/a"]
    assert rows[2] == STORY_ROW
    assert rows[0] == {
        "url": "https://blog.example.org/post", "url_key": "blog.example.org/post", "domain": "blog.example.org",
        "score": 3, "post_ids": ["zz"], "subreddits": ["blog"], "titles": ["A title"],
        "first_created_utc": 1500000200, "num_posts": 1,
    }
    assert rows[3]["url"] == "http://xn--bcher-kva.example/a"
    assert rows[1]["score"] == 9  # the nested crosspost's score 1 / is_self / over_18 are not its own


def test_hand_dump_accounting(hand_run):
    out, stats = hand_run
    on_disk = json.loads((out / STATS_FILE).read_text())
    counts = on_disk["stages"]["harvest"]
    assert counts["in"] == len(FILE_A) + len(FILE_B) == 29
    assert counts["dropped"] == MAX_POST_DROPS
    assert counts["out"] == 6
    assert counts["reconciles"] is True
    assert on_disk["urls"] == stats["urls"] == 4
    assert on_disk["duplicate_posts_merged"] == 2


def test_sum_per_url_rule(hand_dumps, tmp_path):
    stats = harvest([hand_dumps], tmp_path, "harvest.score_rule=sum_per_url")
    rows = {r["url_key"]: r for r in read_rows(tmp_path)}
    assert rows["sum.example/a"]["score"] == 3 and rows["sum.example/a"]["post_ids"] == ["d1", "d2"]
    assert rows["example.com/story?id=1"]["score"] == 5 + 20 + 7
    assert "blog.example.org/low" not in rows  # one post, 2 points: below 3 as a sum too
    counts = stats["counts"]["harvest"]
    assert counts.dropped["low_score"] == 1
    assert (counts.records_in, counts.records_out, stats["urls"]) == (29, 8, 5)
    counts.check()


def test_rerun_overwrites_and_output_files_are_each_sorted(hand_dumps, hand_run, tmp_path):
    harvest([hand_dumps], tmp_path, "harvest.output_files=3")
    files = sorted(p.name for p in tmp_path.glob("urls-*.parquet"))
    assert files == [f"urls-0000{i}-of-00003.parquet" for i in range(3)]  # empty ones too
    for path in tmp_path.glob("urls-*.parquet"):
        keys = pq.read_table(path, columns=["url_key"]).column(0).to_pylist()
        assert keys == sorted(keys)
    assert sorted(read_rows(tmp_path), key=lambda r: r["url_key"]) == read_rows(hand_run[0])
    harvest([hand_dumps], tmp_path)
    assert sorted(p.name for p in tmp_path.glob("urls-*.parquet")) == ["urls-00000-of-00001.parquet"]
    assert (tmp_path / "urls-00000-of-00001.parquet").read_bytes() == (
        hand_run[0] / "urls-00000-of-00001.parquet").read_bytes()


def test_file_count_follows_rows_per_file_and_a_rerun_with_another_count_replaces_the_files(
        hand_dumps, hand_run, tmp_path):
    """output_files null: ceil(urls / rows_per_file) files; a row's file is the range of its
    url hash (not its merge bucket); every rerun with another count leaves only its own files,
    which the crawl's completeness check accepts."""
    out, expected = tmp_path / "out", read_rows(hand_run[0])
    for rows_per_file, merge_buckets, files in ((3, 64, 2), (1, 1, 4), (1, 7, 4), (4, 2, 1)):
        stats = harvest([hand_dumps], out, f"harvest.rows_per_file={rows_per_file}",
                        f"harvest.merge_buckets={merge_buckets}")
        names = sorted(p.name for p in out.glob("urls-*.parquet"))
        assert names == [f"urls-{i:05d}-of-{files:05d}.parquet" for i in range(files)]
        assert sorted(p.name for p in out.iterdir()) == sorted([*names, STATS_FILE])  # no staging, no runs
        for index, name in enumerate(names):
            keys = pq.read_table(out / name, columns=["url_key"]).column(0).to_pylist()
            assert keys == sorted(keys)
            assert all(url_hash(key) * files // 2**64 == index for key in keys)
        assert sorted(read_rows(out), key=lambda r: r["url_key"]) == expected
        assert stats["urls"] == read_url_table(str(out)).num_rows == 4
    assert (out / "urls-00000-of-00001.parquet").read_bytes() == (hand_run[0] / "urls-00000-of-00001.parquet").read_bytes()


def test_file_count_rule():
    config = load_config(None, ["harvest.rows_per_file=10"]).harvest
    assert [file_count_for(urls, config) for urls in (0, 1, 10, 11, 20, 21)] == [1, 1, 1, 2, 2, 3]
    config = load_config(None, ["harvest.rows_per_file=10", "harvest.output_files=5"]).harvest
    assert [file_count_for(urls, config) for urls in (0, 1, 1000)] == [5, 5, 5]


def test_small_runs_and_row_groups_give_the_same_bytes(hand_dumps, hand_run, tmp_path, monkeypatch):
    """One post per spilled run, merged one url_key at a time, one row per run batch: the merge
    of many sorted runs gives the same file as the default sizes (the output does not depend on
    how the work was cut)."""
    import crawl.harvest

    monkeypatch.setattr(crawl.harvest, "ROW_RUN_BATCH_ROWS", 1)
    monkeypatch.setattr(crawl.harvest, "MERGE_SLICE_POSTS", 1)
    harvest([hand_dumps], tmp_path, "harvest.spill_posts=1", "harvest.merge_buckets=1")
    assert (tmp_path / "urls-00000-of-00001.parquet").read_bytes() == (
        hand_run[0] / "urls-00000-of-00001.parquet").read_bytes()


def independent_counts(dump_paths: list[Path], config) -> tuple[dict, int]:
    """The harvest's accounting computed from the dumps without Beam: the rules on every line,
    then the per-URL merge. What `_harvest_stats.json` must say, whatever the runner reports."""
    rules, drops, kept = HarvestRules(config), Counter(), []
    for path in dump_paths:
        for lines in iter_line_batches(str(path), config.read_chunk_bytes, config.max_line_bytes,
                                       config.zstd_window_log_max):
            kept += rules.judge_lines(lines, drops)
    tally = Counter()
    rows = [url_row(key, posts, config.score_rule, config.min_score, tally) for key, posts in merge_posts(kept).items()]
    records_in = sum(drops.values()) + len(kept)
    out = tally.pop("kept", 0)
    drops.update(tally)
    return {"in": records_in, "out": out, "dropped": dict(sorted(drops.items()))}, sum(row is not None for row in rows)


@pytest.mark.parametrize("rule", ["max_post", "sum_per_url"])
def test_counts_are_the_data_not_runner_metrics(hand_dumps, tmp_path, rule):
    """The stats equal the numbers derived from the dumps themselves (the pipeline writes its
    counts as data; Beam metrics are never read)."""
    config = load_config(None, [f"harvest.score_rule={rule}"]).harvest
    paths = dumps.resolve_dumps([str(hand_dumps)])
    expected, urls = independent_counts(paths, config)
    harvest([hand_dumps], tmp_path, f"harvest.score_rule={rule}")
    on_disk = json.loads((tmp_path / STATS_FILE).read_text())
    counts = on_disk["stages"]["harvest"]
    assert {k: counts[k] for k in ("in", "out", "dropped")} == expected
    assert on_disk["urls"] == urls == len(read_rows(tmp_path))


def truncated_copy(hand_dumps, folder: Path, name: str = "RS_cut.zst") -> Path:
    data = (hand_dumps / "RS_hand.zst").read_bytes()
    broken = folder / name
    broken.write_bytes(data[: len(data) // 2])
    return broken


def test_truncated_dump_fails_naming_the_file(hand_dumps, tmp_path):
    broken = truncated_copy(hand_dumps, tmp_path)
    with pytest.raises(DumpError, match=r"RS_cut\.zst: cannot decompress to the end .* download it again"):
        harvest([broken, hand_dumps / "RS_hand2.ndjson"], tmp_path / "out")
    assert not (tmp_path / "out" / STATS_FILE).exists()
    assert os.listdir(tmp_path / "out") == []  # no URL files, no staging folder, no lock left


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_failed_harvest_leaves_the_previous_output_complete(hand_dumps, hand_run, tmp_path):
    """A rerun into a finished --out that fails (a truncated dump, here) publishes nothing:
    the previous URL files and their stats stay, and the crawl can still read them."""
    out = tmp_path / "out"
    harvest([hand_dumps], out, "harvest.output_files=2")
    before = snapshot(out)
    broken = truncated_copy(hand_dumps, tmp_path)
    with pytest.raises(DumpError, match=f"RS_cut.zst.*{out} is left as it was"):
        harvest([broken, hand_dumps / "RS_hand2.ndjson"], out)  # would write 1 file, not 2
    assert snapshot(out) == before
    assert json.loads((out / STATS_FILE).read_text())["complete"] is True
    assert read_url_table(str(out)).num_rows == 4


def test_every_unreadable_dump_is_named_in_one_line(hand_dumps, tmp_path):
    first = truncated_copy(hand_dumps, tmp_path, "RS_cut1.zst")
    second = tmp_path / "RS_garbage.xz"
    second.write_bytes(b"not xz at all" * 10)
    with pytest.raises(DumpError) as error:
        harvest([first, second, hand_dumps / "RS_hand2.ndjson"], tmp_path / "out")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("2 dump files cannot be read") and "RS_cut1.zst" in message and "RS_garbage.xz" in message


def test_cli_decompression_error_is_one_line_without_traceback(hand_dumps, tmp_path, capsys):
    broken = truncated_copy(hand_dumps, tmp_path)
    assert main(["harvest", "--dumps", str(broken), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and " ERROR " not in err, err  # Beam logged the worker's traceback
    assert err.splitlines()[-1] == (
        f"webtext harvest: error: {broken}: cannot decompress to the end (zstd stream ended inside a frame); "
        f"the file is truncated or corrupt: download it again, or leave it out of --dumps "
        f"({tmp_path / 'out'} is left as it was)"), err


def test_out_of_range_numbers_are_counted_bad_values(tmp_path):
    """Values beyond the URL table's int64 columns used to end the run in a pyarrow OverflowError."""
    dump = tmp_path / "RS_big.ndjson"
    dump.write_bytes(b"\n".join([
        dump_line(submission("n1", "http://big.example/1", 2**63)),
        dump_line(submission("n2", "http://big.example/2", 2**64 + 1)),
        b'{"id": "n3", "url": "http://big.example/3", "score": 1e30, "created_utc": 1500000000}',
        dump_line(submission("n4", "http://big.example/4", created=1e20)),
        dump_line(submission("n5", "http://big.example/5", created=-2**63 - 1)),
        dump_line(submission("n6", "http://big.example/6", created="99999999999999999999")),
        dump_line(submission("k1", "http://big.example/kept", 2**31 - 1)),
        dump_line(submission("k2", "http://big.example/kept", 2**31 - 1, created=1500000001)),
    ]))
    for rule in ("max_post", "sum_per_url"):
        stats = harvest([dump], tmp_path / rule, f"harvest.score_rule={rule}")
        counts = stats["counts"]["harvest"]
        assert (counts.records_in, counts.records_out, counts.dropped) == (8, 2, {"bad_value": 6})
        (row,) = read_rows(tmp_path / rule)
        assert row["score"] == (2**31 - 1) * (2 if rule == "sum_per_url" else 1)


def test_empty_dump_gives_an_empty_table_and_a_warning(tmp_path, caplog):
    names = ["RS_empty.ndjson", "RS_empty.xz", "RS_empty.zst"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    with caplog.at_level("WARNING", logger="crawl.harvest"):
        stats = harvest([tmp_path / name for name in names], tmp_path / "out")
    assert (stats["urls"], stats["counts"]["harvest"].records_in) == (0, 0)
    assert read_rows(tmp_path / "out") == []
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"{tmp_path / name} is empty (0 bytes): it adds no records; download it again if it "
                        "should hold some" for name in names]


def test_a_second_harvest_into_the_same_folder_is_refused(hand_dumps, tmp_path):
    out = tmp_path / "out"
    with exclusive_folder(str(out), "harvest"):
        with pytest.raises(FolderBusyError, match="another `webtext harvest` is writing"):
            harvest([hand_dumps], out)
    harvest([hand_dumps], out)  # the lock went with its holder
    assert read_url_table(str(out)).num_rows == 4


def test_a_killed_runs_staging_folder_is_never_read_and_is_cleared(hand_dumps, hand_run, tmp_path):
    out = tmp_path / "out"
    (out / STAGING_DIR).mkdir(parents=True)
    (out / STAGING_DIR / "urls-00000-of-00001.parquet").write_bytes(b"half a file")
    (out / STAGING_DIR / ".urls-00000-of-00001.parquet.x.tmp").write_bytes(b"torn")
    harvest([hand_dumps], out)
    assert sorted(p.name for p in out.iterdir()) == [STATS_FILE, "urls-00000-of-00001.parquet"]
    assert read_rows(out) == read_rows(hand_run[0])


KILL_SCRIPT = """
import sys
from crawl.harvest import run_harvest
from webtext.config import load_config
config = load_config(None, [])
run_harvest([sys.argv[1]], sys.argv[2], config.harvest, config.beam)
"""


def test_kill_9_during_a_rerun_never_leaves_a_mix_that_looks_complete(hand_dumps, hand_run, tmp_path):
    """Killed while it runs: `--out` holds the previous output or the new one, each with its
    stats, or (killed while publishing) no stats file, which the crawl refuses; never old and
    new files under stats that say complete. The next run finishes normally."""
    out = tmp_path / "out"
    harvest([hand_dumps], out)
    old = read_url_table(str(out)).to_pylist()
    big = tmp_path / "RS_many.ndjson"
    big.write_bytes(b"\n".join(dump_line(submission(f"m{i}", f"http://many.example/{i}")) for i in range(20000)))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(big), str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None and not (out / STAGING_DIR).exists():
            time.sleep(0.01)  # kill as soon as the run has started writing
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    try:
        rows = read_url_table(str(out)).to_pylist()
    except ValueError as exc:
        assert f"rerun `webtext harvest --out {out}`" in str(exc)
    else:
        assert rows == old or len(rows) == 20000
    assert harvest([big], out)["urls"] == 20000
    assert sorted(p.name for p in out.iterdir()) == [STATS_FILE, "urls-00000-of-00001.parquet"]


def test_missing_dump_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        harvest([tmp_path / "nothing-here-*.zst"], tmp_path / "out")


def test_bad_config_values_name_the_key():
    with pytest.raises(ConfigError, match="harvest.min_score"):
        load_config(None, ["harvest.min_score=abc"])
    with pytest.raises(ConfigError, match="harvest.score_rule"):
        load_config(None, ["harvest.score_rule=median"])
    with pytest.raises(ConfigError, match="harvest.created_before"):
        load_config(None, ["harvest.created_before=soon"])
    with pytest.raises(ConfigError, match="harvest.output_files"):
        load_config(None, ["harvest.output_files=0"])
    with pytest.raises(ConfigError, match="harvest.rows_per_file"):
        load_config(None, ["harvest.rows_per_file=0"])
    assert load_config(None, ["harvest.output_files=65"]).harvest.output_files == 65  # more than merge_buckets: fine
    with pytest.raises(ConfigError, match="harvest.no_such_key"):
        load_config(None, ["harvest.no_such_key=1"])
    config = load_config(None, ["harvest.created_before=2017-12-01"])
    assert config.harvest.created_before.timestamp() == 1512086400


def test_cli_rejects_bad_config_naming_the_key(hand_dumps, tmp_path, capsys):
    argv = ["harvest", "--dumps", str(hand_dumps), "--out", str(tmp_path), "--set", "harvest.min_score=abc"]
    assert main(argv) == 2
    assert "harvest.min_score" in capsys.readouterr().err
    assert main(["harvest", "--dumps", str(tmp_path / "none.zst"), "--out", str(tmp_path)]) == 1
    assert "none.zst" in capsys.readouterr().err


# -- the real Pushshift dumps -----------------------------------------------------------------

@pytest.fixture(scope="session")
def real_dumps(shared_dir) -> Path:
    reddit = shared_dir / "data" / "reddit"
    if not (reddit / "RS_2005-06_07.long31.zst").exists():
        pytest.skip("real Pushshift sample dumps are absent")
    return reddit


@pytest.fixture(scope="session")
def real_zst_run(real_dumps, tmp_path_factory):
    out = tmp_path_factory.mktemp("real_zst")
    return out, harvest([real_dumps / "RS_2005-06_07.long31.zst"], out)


def test_real_zst_dump(real_zst_run):
    out, stats = real_zst_run
    counts = stats["counts"]["harvest"]
    assert counts.records_in == 1182
    assert counts.dropped["low_score"] == 1182 - 840  # 840 records have score >= 3
    # of the 840: 3 links to .jpg/.pdf files and one to wikimania.wikimedia.org
    assert counts.dropped == {"low_score": 342, "blocked_extension": 3, "wikipedia": 1}
    assert counts.records_out == 836 and stats["urls"] == 834
    rows = read_rows(out)
    by_key = {r["url_key"]: r for r in rows}
    assert by_key["downingstreetmemo.com/"]["score"] == 183
    assert by_key["paulgraham.com/nerds.html"]["domain"] == "paulgraham.com"
    assert not any("&amp;" in r["url"] for r in rows)
    assert all(r["domain"] != "wikimania.wikimedia.org" for r in rows)


def test_real_dump_counts_are_the_data(real_dumps, real_zst_run):
    expected, urls = independent_counts([real_dumps / "RS_2005-06_07.long31.zst"], load_config(None, []).harvest)
    counts = real_zst_run[1]["counts"]["harvest"]
    assert (counts.records_in, counts.records_out, dict(sorted(counts.dropped.items()))) == (
        expected["in"], expected["out"], expected["dropped"])
    assert real_zst_run[1]["urls"] == urls


def test_real_xz_dumps_give_the_same_output(real_dumps, real_zst_run, tmp_path):
    harvest([real_dumps / "RS_v2_2005-0*.xz"], tmp_path)
    assert (tmp_path / "urls-00000-of-00001.parquet").read_bytes() == (
        real_zst_run[0] / "urls-00000-of-00001.parquet").read_bytes()


def test_multiprocess_runner_gives_the_same_parquet(hand_dumps, hand_run, tmp_path):
    stats = harvest([hand_dumps], tmp_path, "beam.direct_running_mode=multi_processing",
                    "beam.direct_num_workers=2")
    assert (tmp_path / "urls-00000-of-00001.parquet").read_bytes() == (
        hand_run[0] / "urls-00000-of-00001.parquet").read_bytes()
    assert stats["counts"]["harvest"].dropped == MAX_POST_DROPS


# -- the bundled sample dump and its ground truth ----------------------------------------------

@pytest.fixture(scope="session")
def sample_cli_run(tmp_path_factory):
    """`webtext harvest` on the bundled sample, once: (output dir, printed text)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("sample_out")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["harvest", "--dumps", str(BUNDLED.dump), "--out", str(out),
                     "--", "--direct_num_workers=1"]) == 0  # Beam options pass through after --
    return out, printed.getvalue()


def test_cli_on_the_sample_dump(sample_cli_run):
    tmp_path, printed = sample_cli_run
    assert "harvest" in printed and "URLs written" in printed
    totals = dump_truth()["totals"]
    counts = json.loads((tmp_path / STATS_FILE).read_text())["stages"]["harvest"]
    assert counts["in"] == totals["lines"]
    assert counts["dropped"] == totals["dropped"]
    assert counts["out"] == totals["kept_posts"]
    assert json.loads((tmp_path / STATS_FILE).read_text())["urls"] == totals["urls"]


def test_sample_url_table_matches_the_ground_truth(sample_cli_run):
    truth = dump_truth()
    rows = {r["url_key"]: r for r in read_rows(sample_cli_run[0])}
    records = truth["records"]
    kept_categories = {c for c, v in truth["categories"].items() if v["kept"]}
    by_key: dict[str, list] = {}
    for r in records:
        if r["category"] in kept_categories:
            by_key.setdefault(url_key(r["url"]), []).append(r)
    assert set(rows) == set(by_key)
    for key, posts in by_key.items():
        row = rows[key]
        assert row["post_ids"] == sorted(p["id"] for p in posts)
        assert row["score"] == max(p["score"] for p in posts)
        assert row["subreddits"] == sorted({p["subreddit"] for p in posts})
        assert row["first_created_utc"] == min(p["created_utc"] for p in posts)
    assert set(rows) == set(truth["urls"])
    for key, entry in truth["urls"].items():
        row = rows[key]
        assert (row["url"], row["score"], row["num_posts"], row["post_ids"], row["subreddits"],
                row["first_created_utc"]) == (entry["url"], entry["score"], entry["num_posts"],
                                              entry["post_ids"], entry["subreddits"], entry["first_created_utc"])


def test_cyclic_gc_is_paused_only_while_filtering():
    import gc

    assert gc.isenabled()
    with pytest.raises(KeyError):
        with cyclic_gc_paused():
            assert not gc.isenabled()
            raise KeyError("a failing batch")
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # a caller's own choice is left alone
    finally:
        gc.enable()


def test_every_dumps_value_is_read_whether_repeated_or_listed(hand_dumps, tmp_path):
    """`--dumps A --dumps B` reads both (a repeated flag once silently kept only the last one)."""
    a, b = str(hand_dumps / "RS_hand.zst"), str(hand_dumps / "RS_hand2.ndjson")
    both = json.loads((_run_cli(["--dumps", a, b], tmp_path / "listed")).read_text())
    repeated = json.loads((_run_cli(["--dumps", a, "--dumps", b], tmp_path / "repeated")).read_text())
    only_b = json.loads((_run_cli(["--dumps", b], tmp_path / "one")).read_text())
    assert repeated["stages"] == both["stages"] and repeated["dump_files"] == both["dump_files"]
    assert repeated["stages"]["harvest"]["in"] > only_b["stages"]["harvest"]["in"]


def _run_cli(dump_args: list[str], out: Path) -> Path:
    assert main(["harvest", *dump_args, "--out", str(out)]) == 0
    return out / "_harvest_stats.json"
