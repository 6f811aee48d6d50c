"""The one-WARC speedup benchmark's settings: runs it cannot make fail before any build starts."""

import subprocess
import sys
from pathlib import Path

import pytest

from bench.scale_build import check_settings, setting_name

REPO = Path(__file__).resolve().parents[2]


def test_settings_that_fit_pass():
    check_settings((1, 2), (0, 1), cores=2)
    check_settings((1, 2), (0, 2), cores=4)


@pytest.mark.parametrize("workers, per_worker, cores, message", [
    ((1, 2), (1,), 1, "needs 2 cores; this process may use 1"),
    ((1, 2), (0, 2), 2, "--cores-per-worker 2 with 2 workers needs 4 cores"),
    ((1, 2), (-1,), 8, "--cores-per-worker must be >= 0"),
    ((0, 2), (0,), 8, "--workers must be counts >= 1"),
])
def test_impossible_settings_name_the_flag(workers, per_worker, cores, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        check_settings(workers, per_worker, cores)


def test_setting_names():
    assert setting_name(0) == "shared cores"
    assert setting_name(1) == "1 core(s) per worker"


def test_cli_rejects_a_bad_setting_in_one_line_before_building():
    done = subprocess.run([sys.executable, "-m", "bench.scale_build", "--cores-per-worker", "-1"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--cores-per-worker must be >= 0 (0 = shared cores), got -1" in done.stderr
    assert done.stdout == ""
