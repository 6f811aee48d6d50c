import os
import stat

import pytest

from core.fsio import atomic_open, atomic_write_text, expand


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_open(str(target), "w") as fh:
            fh.write("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_and_uses_umask(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic_write_text(str(target), "one")
    atomic_write_text(str(target), "two")
    assert target.read_text() == "two"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


def test_expand_dirs_and_globs(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    (tmp_path / "a" / ".hidden").write_text("h")
    (tmp_path / "y.txt").write_text("y")
    assert expand([str(tmp_path / "a"), str(tmp_path / "*.txt")]) == [
        str(tmp_path / "a" / "x.txt"), str(tmp_path / "y.txt")]
    with pytest.raises(FileNotFoundError, match="no files match"):
        expand([str(tmp_path / "nope*.zst")])
