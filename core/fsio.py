"""Atomic writes and path handling that also work for Beam filesystems (gs://, s3://).

Local files are written to a temporary sibling, fsynced and renamed into place, so a killed
process never leaves a half-written file under the final name. Object stores (gs://, s3://)
only make an object visible when its upload completes, which gives the same guarantee.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator


def _filesystems():
    """Beam's FileSystems, imported only for a remote path: local I/O never loads Beam."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def is_local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _local(path: str) -> str:
    return path[len("file://"):] if path.startswith("file://") else path


@contextlib.contextmanager
def atomic_open(path: str, mode: str = "wb") -> Iterator[IO]:
    """Open `path` for writing so that it appears complete or not at all."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open supports 'wb' and 'w', not {mode!r}")
    if not is_local(path):
        with _filesystems().create(path) as raw:
            if mode == "w":
                import io

                with io.TextIOWrapper(raw, encoding="utf-8") as text:
                    yield text
            else:
                yield raw
        return
    path = _local(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def join(base: str, *parts: str) -> str:
    return _filesystems().join(base, *parts) if not is_local(base) else os.path.join(_local(base), *parts)


def makedirs(path: str) -> None:
    if is_local(path):
        os.makedirs(_local(path), exist_ok=True)


def expand(patterns: list[str]) -> list[str]:
    """Expand paths, directories and globs (local or Beam filesystems) into sorted file paths."""
    files: list[str] = []
    for pattern in patterns:
        if is_local(pattern) and os.path.isdir(_local(pattern)):
            for root, _dirs, names in os.walk(_local(pattern)):
                files.extend(os.path.join(root, n) for n in names if not n.startswith("."))
            continue
        matches = _filesystems().match([pattern])[0].metadata_list
        if not matches:
            raise FileNotFoundError(f"no files match {pattern!r}")
        files.extend(m.path for m in matches)
    return sorted(set(files))
