"""Streaming readers for Pushshift submission dumps: .zst, .xz, .bz2, .gz and plain NDJSON.

Files are opened through Beam's FileSystems (local paths, gs://, s3://, ...) with
compression_type UNCOMPRESSED and decompressed here, because Beam's own codecs know neither
zstd frames with a 2 GiB window (every Pushshift .zst since 2019 needs `--long=31`) nor xz.
The decompressed stream is read in fixed-size chunks and split on the newline byte: a newline
byte never occurs inside a multi-byte UTF-8 character, so characters split across chunk edges
are reassembled with their line and nothing is decoded until a whole line exists.

A file that cannot be opened or decompressed to its end (a truncated download, corrupt bytes,
a zstd window over the configured limit) raises DumpError, one line naming the file and the
fix: the records lost with its tail cannot be counted, so it is not a countable skip.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
from collections.abc import Iterator
from typing import IO

import zstandard
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from core import fsio

PLAIN_SUFFIXES = (".ndjson", ".jsonl", "")  # "" = `zstd -d RS_2019-01.zst` output
COMPRESSED_SUFFIXES = (".zst", ".xz", ".bz2", ".gz")


class DumpError(ValueError):
    """A dump that cannot be read to its end (truncated, corrupt or not a dump)."""


def dump_suffix(path: str) -> str | None:
    """The suffix that decides how `path` is decoded, or None if it is not a dump file."""
    name = path.rstrip("/").rsplit("/", 1)[-1]
    suffix = os.path.splitext(name)[1].lower()
    if suffix in COMPRESSED_SUFFIXES or suffix in PLAIN_SUFFIXES:
        return suffix
    return None


def resolve_dumps(patterns: list[str]) -> list[str]:
    """Expand paths, directories and globs into the sorted dump files they name.

    Files that are not dumps (README.md, *.json ground truths) are skipped inside directories
    and globs; a pattern that names no dump at all is an error.
    """
    if not patterns:
        raise ValueError("no dump paths given")
    found: set[str] = set()
    for pattern in patterns:
        matches = [m for m in fsio.expand([pattern]) if dump_suffix(m) is not None]
        if not matches:
            raise FileNotFoundError(
                f"{pattern!r} names no dump file (expected {', '.join(COMPRESSED_SUFFIXES)}, "
                ".ndjson, .jsonl or no suffix)"
            )
        found.update(matches)
    return sorted(found)


class _CheckedZstd:
    """zstandard's stream reader returns EOF quietly on a truncated frame; this notices."""

    def __init__(self, raw: IO[bytes], window_log_max: int):
        self._decompressor = zstandard.ZstdDecompressor(max_window_size=2**window_log_max).decompressobj()
        self._raw = raw
        self._window_log_max = window_log_max
        self._pending = b""
        self._in_frame = False

    def read(self, size: int) -> bytes:
        while True:
            chunk = self._raw.read(max(1, size // 16))  # zstd output is ~10x its input
            if not chunk:
                if self._in_frame:
                    raise EOFError("zstd stream ended inside a frame")
                return b""
            out = []
            while chunk:
                out.append(self._decompressor.decompress(chunk))
                self._in_frame = not self._decompressor.eof
                chunk = self._decompressor.unused_data if self._decompressor.eof else b""
                if self._decompressor.eof:  # concatenated frames: start a new decoder on the rest
                    self._decompressor = zstandard.ZstdDecompressor(
                        max_window_size=2**self._window_log_max
                    ).decompressobj()
            data = b"".join(out)
            if data:
                return data


def open_dump(path: str, zstd_window_log_max: int) -> tuple[IO[bytes], IO[bytes]]:
    """(decompressed stream, raw stream) of one dump; the raw one tells read progress."""
    suffix = dump_suffix(path)
    if suffix is None:
        raise DumpError(f"{path}: not a dump file (unknown suffix)")
    try:
        raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    except OSError as exc:  # Beam's BeamIOError is one too
        raise DumpError(f"{path}: cannot open ({exc}); check the path and its permissions") from exc
    if suffix == ".zst":
        return _CheckedZstd(raw, zstd_window_log_max), raw
    if suffix == ".xz":
        return lzma.LZMAFile(raw), raw
    if suffix == ".bz2":
        return bz2.BZ2File(raw), raw
    if suffix == ".gz":
        return gzip.GzipFile(fileobj=raw), raw
    return raw, raw


def _decompression_error(path: str, exc: Exception, zstd_window_log_max: int) -> DumpError:
    if "too much memory" in str(exc):  # zstd: the frame's window is larger than we allow
        return DumpError(
            f"{path}: its zstd window is larger than 2**{zstd_window_log_max} bytes; raise "
            f"harvest.zstd_window_log_max (e.g. --set harvest.zstd_window_log_max=31, 2 GiB)"
        )
    return DumpError(
        f"{path}: cannot decompress to the end ({exc}); the file is truncated or corrupt: "
        "download it again, or leave it out of --dumps"
    )


def iter_line_batches(
    path: str, chunk_bytes: int, max_line_bytes: int, zstd_window_log_max: int, progress=None,
) -> Iterator[list[bytes]]:
    """Yield the lines of a dump in batches (one per decompressed chunk of `chunk_bytes`),
    newline removed (the sizes are harvest.read_chunk_bytes, max_line_bytes and
    zstd_window_log_max in pipelines.yaml).

    Lines longer than `max_line_bytes` are yielded as `None` (the caller counts the drop) so
    that memory stays bounded by the chunk size plus one line. `progress(raw_bytes_read)` is
    called after every chunk. A final line without a newline is still a line; a 0-byte file
    has none, whatever its format (the harvest warns about it).
    """
    stream, raw = open_dump(path, zstd_window_log_max)
    partial: list[bytes] = []  # pieces of the current unfinished line
    partial_len = 0
    oversized = False
    try:
        while True:
            try:
                chunk = stream.read(chunk_bytes)
            except (EOFError, OSError, lzma.LZMAError, zstandard.ZstdError) as exc:
                if raw.tell() == 0:  # a 0-byte file (xz and bz2 call it truncated): no lines, as for the others
                    break
                raise _decompression_error(path, exc, zstd_window_log_max) from exc
            if progress is not None:
                progress(raw.tell())
            if not chunk:
                break
            lines = chunk.split(b"\n")
            tail = lines.pop()
            if lines:
                if oversized:
                    lines[0] = None
                elif partial:
                    first = b"".join(partial) + lines[0]
                    lines[0] = None if len(first) > max_line_bytes else first
                if len(chunk) > max_line_bytes:  # otherwise no line of this chunk can be too long
                    lines = [line if line is None or len(line) <= max_line_bytes else None for line in lines]
                partial, partial_len, oversized = [], 0, False
                yield lines
            if tail and not oversized:
                partial.append(tail)
                partial_len += len(tail)
                if partial_len > max_line_bytes:
                    partial, partial_len, oversized = [], 0, True
        if oversized:
            yield [None]
        elif partial:
            yield [b"".join(partial)]
    finally:
        raw.close()
