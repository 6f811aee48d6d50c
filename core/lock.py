"""One writer per output folder: a second run into the same place is refused, not interleaved.

Each command that writes a folder (harvest, crawl per shard, build, train) holds an advisory `flock` on
a lock file inside it for its whole run. The lock dies with the process (kill -9 included), so a
stale lock never blocks a rerun; the file is removed when the run ends normally.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from typing import Iterator


class FolderBusyError(RuntimeError):
    """Another process holds the folder's lock."""


@contextlib.contextmanager
def exclusive_folder(folder: str, command: str, lock_name: str | None = None) -> Iterator[None]:
    """Hold `folder`'s lock for the block, or raise FolderBusyError naming `command` and the folder.

    `lock_name` lets several independent writers share a folder (e.g. one crawl shard each).
    """
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, lock_name or f".{command.replace(' ', '-')}.lock")
    while True:
        lock_file = open(path, "w")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise FolderBusyError(
                f"another `webtext {command}` is writing {folder} (lock {path}); wait for it or use another folder"
            ) from None
        try:
            if os.stat(path).st_ino == os.fstat(lock_file.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        lock_file.close()  # the holder finished and removed this file while we opened it: take a fresh one
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # while still holding the lock, so nobody can take the removed file
        lock_file.close()
