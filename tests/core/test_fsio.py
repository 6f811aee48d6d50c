import os
import stat
import subprocess
import sys

import pytest

from core.fsio import atomic_open, atomic_write_text, expand, remote_paths


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


def test_remote_paths_are_found_among_command_line_words():
    words = ["build", "--warc", "s3://b/crawl", "--out=gs://c/data", "--set", "x=s3://not-a-path", "local/dir",
             "http://example.com/"]
    assert remote_paths(words) == ["s3://b/crawl", "gs://c/data"]


def test_object_store_options_never_load_beam_for_local_paths(tmp_path):
    """`use_options` only records the options: a command on local paths stays Beam-free."""
    script = (
        "import sys\n"
        "from core import fsio\n"
        "fsio.use_options(['--s3_region_name=us-east-1'])\n"
        f"fsio.atomic_write_text({str(tmp_path / 'a.txt')!r}, 'x')\n"
        f"assert fsio.exists({str(tmp_path / 'a.txt')!r}) and fsio.isdir({str(tmp_path)!r})\n"
        "print(fsio.options(), 'apache_beam' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.split("\n")[0] == "['--s3_region_name=us-east-1'] False", done.stderr
