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

from shards.verify import verify_dataset
from tests.shards.conftest import REPO, SMALL_SHARDS, run_cli



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
    # A shard left over from an earlier build of this folder, which the new build does not make.
    stale = os.path.join(killed, "train", "shard-00000-of-00009.parquet")
    os.makedirs(os.path.dirname(stale))
    shutil.copy(os.path.join(built[0], built[1]["shards"][0]["path"]), stale)

    proc = subprocess.Popen([sys.executable, "-m", "webtext", "build", "--warc", crawl.root, "--out", killed, *overrides],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not glob.glob(os.path.join(killed, ".staging", "*", "*.parquet")):
        assert proc.poll() is None, "the build finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL

    assert not os.path.exists(os.path.join(killed, "manifest.json"))
    assert "not a finished build" in verify_dataset(killed)[0]
    # rerun through the CLI, naming the warc/ folder this time and passing a Beam option through
    result = run_cli("build", "--warc", os.path.join(crawl.root, "warc"), "--out", killed, *overrides,
                     "--", "--direct_num_workers=1")
    assert result.returncode == 0, result.stderr
    assert "write" in result.stdout and f"{killed}/" in result.stdout  # counts table, where the shards are
    assert not os.path.exists(os.path.join(killed, ".staging"))
    assert not os.path.exists(stale)
    assert verify_dataset(killed) == []
    _same_dataset(built[0], killed)
