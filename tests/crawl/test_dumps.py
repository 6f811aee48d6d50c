"""Streaming dump readers (crawl/dumps.py): every format, chunk edges, broken files."""

import bz2
import gzip
import json
import lzma

import pytest
import zstandard

from crawl.config import HarvestConfig
from crawl.dumps import DumpError, dump_suffix, iter_line_batches, resolve_dumps

LINES = [
    json.dumps({"id": f"a{i}", "title": "Grüße, 東京, emoji 🎉 " * (i % 3), "url": f"http://x.example/{i}"},
               ensure_ascii=False).encode("utf-8")
    for i in range(200)
]
DATA = b"\n".join(LINES) + b"\n"


def zstd_long(data: bytes) -> bytes:
    """A frame that declares a 2 GiB window, like Pushshift's 2019+ dumps (`zstd --long=31`)."""
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=31, enable_ldm=True)
    compressor = zstandard.ZstdCompressor(compression_params=params).compressobj()  # size unknown
    return compressor.compress(data) + compressor.flush()


def read_all(path, **harvest_overrides) -> list:
    """Every line of a dump, read with the harvest config's sizes (`harvest_overrides` changed)."""
    config = HarvestConfig(**harvest_overrides)
    batches = iter_line_batches(str(path), config.read_chunk_bytes, config.max_line_bytes, config.zstd_window_log_max)
    return [line for batch in batches for line in batch]


@pytest.fixture(scope="module")
def dump_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dumps")
    files = {
        "RS_a.zst": zstd_long(DATA),
        "RS_a.xz": lzma.compress(DATA),
        "RS_a.bz2": bz2.compress(DATA),
        "RS_a.gz": gzip.compress(DATA),
        "RS_a.ndjson": DATA,
        "RS_2019-01": DATA,  # what `zstd -d RS_2019-01.zst` leaves behind
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.parametrize("name", ["RS_a.zst", "RS_a.xz", "RS_a.bz2", "RS_a.gz", "RS_a.ndjson", "RS_2019-01"])
def test_every_format_reads_the_same_lines(dump_files, name):
    assert read_all(dump_files / name) == LINES


def test_long_window_zstd_needs_the_2gib_window(dump_files):
    with pytest.raises(DumpError, match=r"RS_a\.zst: its zstd window is larger than 2\*\*27 bytes; raise "
                                        r"harvest\.zstd_window_log_max"):
        read_all(dump_files / "RS_a.zst", zstd_window_log_max=27)  # zstd's default limit


@pytest.mark.parametrize("name", ["RS_a.zst", "RS_a.xz", "RS_a.ndjson"])
def test_multibyte_characters_split_across_chunks(dump_files, name):
    for chunk in (1, 3, 7, 64):
        lines = read_all(dump_files / name, read_chunk_bytes=chunk)
        assert lines == LINES
        assert all(json.loads(line) for line in lines)


def test_concatenated_zstd_frames(tmp_path):
    path = tmp_path / "RS_cat.zst"
    path.write_bytes(zstd_long(b"\n".join(LINES[:50]) + b"\n") + zstd_long(b"\n".join(LINES[50:]) + b"\n"))
    assert read_all(path) == LINES
    assert read_all(path, read_chunk_bytes=5) == LINES


def test_last_line_without_newline_and_blank_lines(tmp_path):
    path = tmp_path / "RS_x.ndjson"
    path.write_bytes(b'{"a":1}\n\n  \n{"b":2}')
    assert read_all(path) == [b'{"a":1}', b"", b"  ", b'{"b":2}']


def test_lines_over_the_limit_become_none_and_reading_goes_on(tmp_path):
    path = tmp_path / "RS_long.ndjson"
    path.write_bytes(b"short\n" + b"x" * 100 + b"\nok\n" + b"y" * 100)
    for chunk in (4, 1000):
        assert read_all(path, read_chunk_bytes=chunk, max_line_bytes=50) == [b"short", None, b"ok", None]


@pytest.mark.parametrize("name, cut", [("RS_a.zst", 0.6), ("RS_a.xz", 0.5), ("RS_a.bz2", 0.5), ("RS_a.gz", 0.5)])
def test_truncated_files_fail_naming_the_file(dump_files, tmp_path, name, cut):
    data = (dump_files / name).read_bytes()
    broken = tmp_path / ("cut_" + name)
    broken.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(DumpError, match="cut_" + name.replace(".", r"\.") + ".*truncated or corrupt: download it again"):
        read_all(broken)


def test_garbage_zstd_fails_naming_the_file(tmp_path):
    path = tmp_path / "RS_garbage.zst"
    path.write_bytes(b"this is not zstd at all" * 10)
    with pytest.raises(DumpError, match="RS_garbage.zst"):
        read_all(path)


@pytest.mark.parametrize("name", ["RS_0.zst", "RS_0.xz", "RS_0.bz2", "RS_0.gz", "RS_0.ndjson"])
def test_zero_byte_files_are_read_as_no_lines(tmp_path, name):
    """Not an error (crawl/harvest.py warns about them by name)."""
    (tmp_path / name).write_bytes(b"")
    assert read_all(tmp_path / name) == []


def test_a_dump_that_cannot_be_opened_is_a_dump_error(tmp_path):
    (tmp_path / "RS_folder.zst").mkdir()  # a folder under a dump's name
    with pytest.raises(DumpError, match=r"RS_folder\.zst: cannot open .*; check the path and its permissions"):
        read_all(tmp_path / "RS_folder.zst")


def test_resolve_dumps(dump_files, tmp_path):
    (dump_files / "README.md").write_text("not a dump")
    (dump_files / "RS_a.expected.json").write_text("{}")
    found = resolve_dumps([str(dump_files)])
    assert [p.rsplit("/", 1)[-1] for p in found] == sorted(
        ["RS_2019-01", "RS_a.bz2", "RS_a.gz", "RS_a.ndjson", "RS_a.xz", "RS_a.zst"])
    assert resolve_dumps([str(dump_files / "RS_a.*"), str(dump_files / "RS_a.xz")]) == [
        str(dump_files / n) for n in ["RS_a.bz2", "RS_a.gz", "RS_a.ndjson", "RS_a.xz", "RS_a.zst"]]
    with pytest.raises(FileNotFoundError, match="no files match"):
        resolve_dumps([str(tmp_path / "missing.zst")])
    with pytest.raises(FileNotFoundError, match="names no dump file"):
        resolve_dumps([str(dump_files / "README.md")])
    with pytest.raises(ValueError, match="no dump paths"):
        resolve_dumps([])
    assert dump_suffix("gs://bucket/RS_2019-01.zst") == ".zst"
    assert dump_suffix("RS.tar") is None


def test_real_pushshift_dumps(shared_dir):
    reddit = shared_dir / "data" / "reddit"
    if not (reddit / "RS_2005-06_07.long31.zst").exists():
        pytest.skip("real Pushshift sample dumps are absent")
    zst = read_all(reddit / "RS_2005-06_07.long31.zst")
    xz = read_all(reddit / "RS_v2_2005-06.xz") + read_all(reddit / "RS_v2_2005-07.xz")
    assert len(zst) == 1182
    assert zst == xz
    assert sum(1 for line in zst if json.loads(line)["score"] >= 3) == 840
