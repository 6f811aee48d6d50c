"""glibc malloc settings for CPU training: fewer page faults, and the huge-page restart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from training import host_memory

REPO = Path(__file__).resolve().parents[2]
glibc_only = pytest.mark.skipif(not host_memory._glibc(), reason="glibc malloc settings")

# Allocates, fills and frees a 64 MB tensor round after round, as a training step does with its
# logits, and prints the page faults of the last eight rounds. The tuned heap needs a few rounds
# to settle: glibc 2.36's posix_memalign (torch aligns to 64 bytes) cannot reuse a freed block of
# exactly the size asked for, so the heap grows until freed blocks have merged into ones that fit.
# It settled by round 8 in 40 runs of 40 rounds, but once, in a loaded CI run, a round after the
# 12th still mapped a fresh block: hence 24 rounds to settle and room for one late block below.
FAULTS_SCRIPT = """
import json, resource, sys
import torch
from training import host_memory
applied = host_memory.keep_freed_memory() if sys.argv[1] == "tuned" else False
for _ in range(24):
    torch.ones(16 * 2**20).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    torch.ones(16 * 2**20).sum()
print(json.dumps({"applied": applied, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""


def faults(mode: str, **env) -> dict:
    out = subprocess.run([sys.executable, "-c", FAULTS_SCRIPT, mode], cwd=REPO, capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin", **env})
    return json.loads(out.stdout)


@glibc_only
def test_kept_memory_is_reused_without_page_faults():
    default, tuned = faults("default"), faults("tuned")
    assert tuned["applied"] and not default["applied"]
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not thp.exists() or "[always]" not in thp.read_text():  # 4 KiB pages
        assert default["faults"] >= 0.9 * 8 * 16 * 2**20 * 4 / 4096  # every round maps 64 MB afresh
    assert tuned["faults"] * 4 < default["faults"]  # at most one round of eight maps a fresh block
    assert not faults("tuned", WEBTEXT_MALLOC_TUNING="0")["applied"]


@glibc_only
def test_huge_pages_environ_adds_the_tunable_once_and_respects_the_users_choice():
    assert host_memory.huge_pages_environ({"PATH": "/bin"}) == {
        "PATH": "/bin", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}
    assert host_memory.huge_pages_environ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) == {
        "GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"}
    assert host_memory.huge_pages_environ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}) is None  # theirs
    assert host_memory.huge_pages_environ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}) is None  # restarted
    assert host_memory.huge_pages_environ({"WEBTEXT_MALLOC_TUNING": "0"}) is None
    assert host_memory.huge_pages_environ({"WEBTEXT_MALLOC_TUNING": "1"}) == {
        "WEBTEXT_MALLOC_TUNING": "1", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}


@pytest.mark.parametrize("value", ["off", "false", "no", ""])
def test_an_unknown_opt_out_value_is_an_error_not_a_guess(value, monkeypatch):
    with pytest.raises(ValueError, match="WEBTEXT_MALLOC_TUNING"):
        host_memory.huge_pages_environ({"WEBTEXT_MALLOC_TUNING": value})
    monkeypatch.setenv("WEBTEXT_MALLOC_TUNING", value)
    with pytest.raises(ValueError, match="use 0 to turn"):
        host_memory.keep_freed_memory()


def test_an_unknown_opt_out_value_stops_train_with_a_clear_error():
    proc = subprocess.run([sys.executable, "-c", "from webtext import cli; cli.run()", "train", "--help"],
                          cwd=REPO, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "WEBTEXT_MALLOC_TUNING": "off"})
    assert proc.returncode == 2
    assert "WEBTEXT_MALLOC_TUNING='off': use 0 to turn the CPU malloc settings off" in proc.stderr
    assert "Traceback" not in proc.stderr


@glibc_only
@pytest.mark.parametrize("command, restarts", [("train", True), ("demo", True), ("sample", False)])
def test_training_commands_restart_with_huge_pages(command, restarts, tmp_path):
    """`webtext train`/`demo` re-exec themselves (same pid, same command line) with the tunable
    before any work; other commands run as started. Each start appends a line to a log."""
    starts = tmp_path / "starts.jsonl"
    script = ("import json, os, sys; from webtext import cli\n"
              f"with open({str(starts)!r}, 'a') as f: "
              "f.write(json.dumps([os.getpid(), os.environ.get('GLIBC_TUNABLES', '')]) + '\\n')\n"
              f"sys.argv = ['webtext', {command!r}, '--help']\n"
              "cli.run()")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert f"usage: webtext {command}" in proc.stdout
    lines = [json.loads(line) for line in starts.read_text().splitlines()]
    if restarts:
        assert [tunables for _, tunables in lines] == ["", "glibc.malloc.hugetlb=1"]
        assert lines[0][0] == lines[1][0]  # the same process: torchrun and signals still see it
    else:
        assert lines == [[lines[0][0], ""]]
