"""The output-folder lock: a second writer is refused, a finished or killed one never blocks."""

import os
import signal
import subprocess
import sys

import pytest

from core.lock import FolderBusyError, exclusive_folder

HOLD = """
import sys, time
from core.lock import exclusive_folder
with exclusive_folder(sys.argv[1], "build"):
    print("locked", flush=True)
    time.sleep(600)
"""


def _holder(folder):
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


def test_a_second_writer_is_refused_with_the_command_and_folder(tmp_path):
    holder = _holder(tmp_path)
    try:
        with pytest.raises(FolderBusyError, match=r"another `webtext build` is writing .*" + tmp_path.name):
            with exclusive_folder(str(tmp_path), "build"):
                pass
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_writer_leaves_no_blocking_lock(tmp_path):
    holder = _holder(tmp_path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert (tmp_path / ".build.lock").exists()  # the file stays, the lock died with the process
    with exclusive_folder(str(tmp_path), "build"):
        pass


def test_a_clean_run_removes_its_lock_file_and_frees_the_folder(tmp_path):
    with exclusive_folder(str(tmp_path), "train"):
        assert (tmp_path / ".train.lock").exists()
    assert not (tmp_path / ".train.lock").exists()
    with exclusive_folder(str(tmp_path), "train"):
        pass


def test_different_lock_names_share_a_folder(tmp_path):
    with exclusive_folder(str(tmp_path), "crawl", ".crawl-0-of-2.lock"):
        with exclusive_folder(str(tmp_path), "crawl", ".crawl-1-of-2.lock"):
            pass
        with pytest.raises(FolderBusyError):
            with exclusive_folder(str(tmp_path), "crawl", ".crawl-0-of-2.lock"):
                pass
