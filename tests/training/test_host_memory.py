"""glibc malloc settings for CPU training: what they change in the heap, and the huge-page restart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from training import host_memory

REPO = Path(__file__).resolve().parents[2]
glibc_only = pytest.mark.skipif(not host_memory._glibc(), reason="glibc malloc settings")

# What the settings change, read from glibc's own accounting (mallinfo2, glibc >= 2.33) rather
# than from page-fault counts, which depend on the kernel and the machine's load (those are
# measured in bench/bench_host_memory.py): with glibc's defaults a 64 MB block is its own
# mapping (hblks 1) and is unmapped on free; kept, it comes from the heap (hblks 0) and its
# bytes stay in the heap's free list after free.
MALLINFO_SCRIPT = """
import ctypes, json, sys
from training import host_memory
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
applied = host_memory.keep_freed_memory() if sys.argv[1] == "tuned" else False
before = libc.mallinfo2()
block = libc.malloc(64 * 2**20)
ctypes.memset(block, 1, 64 * 2**20)
held = libc.mallinfo2()
libc.free(block)
freed = libc.mallinfo2()
print(json.dumps({"applied": applied, "mapped_blocks": held.hblks - before.hblks,
                  "free_in_heap_after": freed.fordblks - before.fordblks}))
"""


def mallinfo(mode: str, **env) -> dict:
    out = subprocess.run([sys.executable, "-c", MALLINFO_SCRIPT, mode], cwd=REPO, capture_output=True, text=True,
                         check=True, env={"PATH": "/usr/bin:/bin", **env})
    return json.loads(out.stdout)


@glibc_only
def test_kept_memory_comes_from_the_heap_and_stays_there_after_free():
    default, tuned = mallinfo("default"), mallinfo("tuned")
    assert not default["applied"] and default["mapped_blocks"] == 1  # glibc: its own mapping
    assert default["free_in_heap_after"] < 64 * 2**20  # ... unmapped on free
    assert tuned["applied"] and tuned["mapped_blocks"] == 0  # from the heap
    assert tuned["free_in_heap_after"] >= 64 * 2**20  # kept for the next step
    opted_out = mallinfo("tuned", WEBTEXT_MALLOC_TUNING="0")
    assert not opted_out["applied"] and opted_out["mapped_blocks"] == 1


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
