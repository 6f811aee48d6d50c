import gzip
import json
import subprocess
import sys

import pytest

from extract.extractors import extract_page
from webtext.cli import main
from webtext.config import load_config


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "pipelines.yaml"
    path.write_text("extract:\n  timeout_seconds: 20\n")
    return str(path)


def _records(out: str) -> dict[str, dict]:
    return {r["path"]: r for r in map(json.loads, out.splitlines())}


def test_extract_html_and_gz_and_bad_inputs(tmp_path, pages, config_file, capsys):
    plain = tmp_path / "otters page.html"
    plain.write_bytes(pages["article_en"])
    packed = tmp_path / "straße.html.gz"
    packed.write_bytes(gzip.compress(pages["article_de"]))
    empty = tmp_path / "empty.html"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.html.gz"
    corrupt.write_bytes(gzip.compress(pages["article_en"])[:40])
    missing = tmp_path / "missing.html"

    paths = [plain, packed, missing, empty, corrupt]
    exit_code = main(["extract", "--config", config_file, "--url", "https://news.example/a", *map(str, paths)])
    captured = capsys.readouterr()
    assert exit_code == 1
    records = _records(captured.out)
    assert set(records) == {str(plain), str(packed), str(empty)}
    assert records[str(plain)]["lang"] == "en" and "river otters" in records[str(plain)]["text"]
    assert records[str(plain)]["title"] == "River otters return to the Millbrook valley"
    assert records[str(plain)]["extractor"] == "trafilatura"
    assert records[str(packed)]["lang"] == "de" and "Radwege" in records[str(packed)]["text"]
    assert records[str(empty)]["text"] is None and records[str(empty)]["status"] == "decode_error"
    assert f"cannot read {missing}" in captured.err
    assert f"cannot read {corrupt}" in captured.err and "gzip" in captured.err


def test_extractor_flag(tmp_path, pages, config_file, capsys):
    page = tmp_path / "a.html"
    page.write_bytes(pages["article_en"])
    assert main(["extract", "--config", config_file, "--extractor", "newspaper", str(page)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["extractor"] == "newspaper" and "river otters" in record["text"]


def test_extract_command_prints_the_pipelines_cleaned_text(tmp_path, pages, config_file, capsys):
    """Same line rules as the build: the byline is gone, and the text equals extract_page's."""
    page = tmp_path / "harbour.html"
    page.write_bytes(pages["article_furniture"])
    assert main(["extract", "--config", config_file, str(page)]) == 0
    record = json.loads(capsys.readouterr().out)
    expected = extract_page(pages["article_furniture"], None, None, load_config(config_file).extract)
    assert record["text"] == expected.extraction.text and expected.lines_removed
    assert "Posted 2017-06-20 by Tom Becker" not in record["text"] and "Posted notices" in record["text"]


def test_unknown_extractor_is_rejected(tmp_path, config_file, capsys):
    with pytest.raises(SystemExit):
        main(["extract", "--config", config_file, "--extractor", "dragnet", str(tmp_path / "a.html")])
    assert "invalid choice" in capsys.readouterr().err


def test_registering_the_command_imports_no_extractor_or_beam():
    """`webtext --help` and every other command load extract.cli; the extractors load on use."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, extract.cli; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    heavy = {"apache_beam", "trafilatura", "newspaper", "charset_normalizer", "py3langid", "tqdm"}
    assert heavy.isdisjoint(loaded)
    assert "extract.cli" in loaded
