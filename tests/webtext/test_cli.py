"""The `webtext` command: one-line errors, tracebacks only on request."""

from webtext.cli import main


def test_a_user_facing_error_is_one_line_naming_the_path(tmp_path, capsys):
    missing = tmp_path / "no-such.parquet"
    assert main(["dedup", "--input", str(missing), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("webtext dedup: error:") and "no-such.parquet" in err[0]


def test_verbose_adds_the_traceback(tmp_path, capsys):
    assert main(["dedup", "--input", str(tmp_path / "no-such.parquet"), "--out", str(tmp_path / "out"), "-v"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("webtext dedup: error:")
