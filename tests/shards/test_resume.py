"""A killed build leaves nothing that passes for a dataset, and its rerun equals a clean build."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from shards.build import run_build
from shards.verify import verify_dataset
from tests.shards.conftest import REPO, SMALL_SHARDS, run_cli
from webtext.config import load_config



def _same_dataset(a: str, b: str) -> None:
    files_a = sorted(os.path.relpath(p, a) for p in glob.glob(os.path.join(a, "*", "*.parquet")))
    files_b = sorted(os.path.relpath(p, b) for p in glob.glob(os.path.join(b, "*", "*.parquet")))
    assert files_a == files_b
    for name in files_a:
        pd.testing.assert_frame_equal(pd.read_parquet(os.path.join(a, name)), pd.read_parquet(os.path.join(b, name)))


@pytest.mark.slow
def test_killed_build_then_rerun_equals_clean_build(built, crawl, tmp_path):
    killed = str(tmp_path / "killed")
    overrides = [arg for kv in SMALL_SHARDS for arg in ("--set", kv)]
    proc = subprocess.Popen([sys.executable, "-m", "webtext", "build", "--warc", crawl.root, "--out", killed, *overrides],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not glob.glob(os.path.join(killed, ".staging", "*", "*.parquet")):
        assert proc.poll() is None, "the build finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    assert not os.path.exists(os.path.join(killed, "manifest.json"))
    assert "not a finished build" in verify_dataset(killed)[0]
    result = run_cli("build", "--warc", crawl.root, "--out", killed, *overrides)
    assert result.returncode == 0, result.stderr
    assert "write" in result.stdout and f"{killed}/" in result.stdout  # counts table, where the shards are
    assert not os.path.exists(os.path.join(killed, ".staging"))
    assert verify_dataset(killed) == []
    _same_dataset(built[0], killed)


def test_rerun_repairs_a_half_published_dataset(built, crawl, tmp_path):
    """Killed while moving shards into place: no manifest, a stale shard, a missing one."""
    out, manifest = built
    target = str(tmp_path / "dataset")
    shutil.copytree(out, target)
    os.unlink(os.path.join(target, "manifest.json"))
    os.unlink(os.path.join(target, manifest["shards"][0]["path"]))
    stale = os.path.join(target, "train", "shard-00000-of-00009.parquet")
    shutil.copy(os.path.join(target, manifest["shards"][-1]["path"]), stale)
    os.makedirs(os.path.join(target, ".staging", "train"))

    rebuilt = run_build(load_config(overrides=SMALL_SHARDS), crawl.root, target)
    assert not os.path.exists(stale)
    assert [s["sha256"] for s in rebuilt["shards"]] == [s["sha256"] for s in manifest["shards"]]
    assert verify_dataset(target) == []
    _same_dataset(out, target)
