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


def test_an_unknown_opt_out_value_stops_train_with_a_clear_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "webtext", "train", "--tokens", str(tmp_path), "--out",
                           str(tmp_path / "run")], cwd=REPO, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "WEBTEXT_MALLOC_TUNING": "off"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("webtext: WEBTEXT_MALLOC_TUNING='off': use 0 to turn the CPU malloc settings "
                                   "off, or 1 (the default) to keep them")


# Runs `webtext ARGS...` the way the console script does (cli.run), or calls cli.main(ARGS) from
# a program started as something else (as pytest does); each start of the process appends its pid
# and GLIBC_TUNABLES to a log.
STARTS_SCRIPT = """
import json, os, sys
from webtext import cli
log, entry, args = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(log, "a") as f:
    f.write(json.dumps([os.getpid(), os.environ.get("GLIBC_TUNABLES", "")]) + "\\n")
if entry == "run":
    sys.argv = ["webtext", *args]
    cli.run()
sys.argv = ["a-program"]
sys.exit(cli.main(args))
"""


@glibc_only
@pytest.mark.parametrize("entry, command, restarts", [("run", "train", True), ("run", "sample", False),
                                                      ("main", "train", False)])
def test_train_restarts_itself_with_huge_pages(entry, command, restarts, tmp_path):
    """`webtext train` re-execs itself (same pid, same command line) with the tunable before it
    imports torch; other commands run as started, and so does a program that calls the CLI's
    main() in-process: restarting it would rerun that whole program."""
    starts = tmp_path / "starts.jsonl"
    missing = str(tmp_path / "missing")
    args = {"train": ["train", "--tokens", missing, "--out", str(tmp_path / "run"), "--set", "train.device=cpu"],
            "sample": ["sample", "--checkpoint", missing, "--set", "sample.device=cpu"]}[command]
    proc = subprocess.run([sys.executable, "-c", STARTS_SCRIPT, str(starts), entry, *args], cwd=REPO,
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1, proc.stderr  # after the restart, the command's own error: missing input
    assert proc.stderr.count(f"webtext {command}: error: ") == 1
    lines = [json.loads(line) for line in starts.read_text().splitlines()]
    if restarts:
        assert [tunables for _, tunables in lines] == ["", "glibc.malloc.hugetlb=1"]
        assert lines[0][0] == lines[1][0]  # the same process: torchrun and signals still see it
    else:
        assert lines == [[lines[0][0], ""]]
