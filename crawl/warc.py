"""WARC/1.1 output: one gzip member per record, request + response per fetched page.

Files are rotated by size and never appended to by a later run. After a crash, the records
that no crawl-log row refers to are cut off (`truncate_after`), which also removes an
unterminated last gzip member, so every WARC file is valid again and nothing is duplicated.

Records are built here directly (a few header lines, two SHA-1 digests, one deflate call per
record): the writer runs once per page inside the crawler, where a general-purpose record
builder cost more CPU than the rest of our per-page work together. warcio reads them back.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus

from warcio.archiveiterator import ArchiveIterator
from zlib_ng import zlib_ng

from core import __version__

# Response headers that describe the transfer, not the stored (decoded) body.
_TRANSFER_HEADERS = {"content-encoding", "transfer-encoding", "content-length"}


@dataclass
class FetchedPage:
    """What the spider hands to the WARC writer for one successful fetch."""

    source_url: str
    final_url: str
    status: int
    response_headers: list[tuple[str, str]]
    body: bytes
    request_method: str
    request_headers: list[tuple[str, str]]
    fetch_time: str  # WARC-Date, ISO 8601 UTC with microseconds
    ip_address: str | None
    redirects: list[str]
    post_ids: list[str]
    subreddits: list[str]
    score: int
    first_created_utc: int
    # Where the page came from: "live", or "archive" with the archive's name ("wayback",
    # "commoncrawl"), the capture's time (ISO 8601 UTC) and the URL it was fetched from.
    source: str = "live"
    archive: str | None = None
    capture_time: str | None = None
    capture_url: str | None = None


def webtext_headers(page: FetchedPage) -> list[tuple[str, str]]:
    """The WebText-* WARC headers (docs/contracts.md) that carry the Reddit metadata."""
    return [
        ("WebText-Source-URL", page.source_url),
        ("WebText-Post-Ids", ",".join(page.post_ids)),
        ("WebText-Subreddits", ",".join(page.subreddits)),
        ("WebText-Score", str(int(page.score))),
        ("WebText-First-Created-UTC", str(int(page.first_created_utc))),
        ("WebText-Redirect-Chain", " ".join(page.redirects)),
    ]


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _digest(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def _record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def _header_lines(headers: list[tuple[str, str]], encoding: str) -> bytes:
    text = "".join(f"{name}: {value}\r\n" for name, value in headers)
    if text.count("\n") != len(headers) or text.count("\r") != len(headers):
        # A CR or LF inside a value would end the header early and corrupt the record.
        text = "".join(f"{name}: {value}\r\n" for name, value in _one_line(headers))
    return text.encode(encoding, "replace")


def _one_line(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name.replace("\r", " ").replace("\n", " "), value.replace("\r", " ").replace("\n", " "))
            for name, value in headers]


def warc_record(warc_type: str, headers: list[tuple[str, str]], block: bytes, payload: bytes | None = None) -> bytes:
    """One WARC/1.1 record: WARC-Type, `headers`, digests, Content-Length, then the block
    (`payload`: the HTTP body inside the block, digested on its own as WARC-Payload-Digest)."""
    named = [("WARC-Type", warc_type), *headers]
    if payload is not None:
        named.append(("WARC-Payload-Digest", _digest(payload)))
    named.append(("WARC-Block-Digest", _digest(block)))
    named.append(("Content-Length", str(len(block))))
    return b"WARC/1.1\r\n" + _header_lines(named, "utf-8") + b"\r\n" + block + b"\r\n\r\n"


def http_block(first_line: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """An HTTP message as stored in a request/response record (headers in latin-1, as sent)."""
    return (first_line.encode("latin-1", "replace") + b"\r\n" + _header_lines(headers, "latin-1")
            + b"\r\n" + body)


class WarcWriter:
    """Writes request/response pairs to `<directory>/<prefix>-NNNNN.warc.gz`, rotating by size."""

    def __init__(self, directory: str, prefix: str, max_bytes: int, software_info: dict[str, str],
                 gzip_level: int = 6):
        self.directory = directory
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.software_info = software_info
        self.gzip_level = gzip_level
        self.files: list[str] = []
        self._fh = None
        self._size = 0
        os.makedirs(directory, exist_ok=True)

    def _gzip(self, record: bytes) -> bytes:
        """A complete gzip member, so each record can be read (and cut off) on its own.

        zlib-ng (standard deflate output, ~3x faster than zlib at level 1 here). The window is
        no larger than the record (same output, far less memory to set up: for a typical page
        that setup cost more than compressing it)."""
        window_bits = max(9, min(zlib_ng.MAX_WBITS, len(record).bit_length()))
        member = zlib_ng.compressobj(self.gzip_level, zlib_ng.DEFLATED, 16 + window_bits)
        return member.compress(record) + member.flush()

    def _open_next(self) -> None:
        self.close()
        name = f"{self.prefix}-{len(self.files):05d}.warc.gz"
        self._fh = open(os.path.join(self.directory, name), "xb")
        self._size = 0
        info = {"software": f"webtext/{__version__}", "format": "WARC File Format 1.1", **self.software_info}
        fields = "".join(f"{name}: {value}\r\n" for name, value in info.items()).encode("utf-8")
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self._append(self._gzip(warc_record("warcinfo", [
            ("WARC-Record-ID", _record_id()), ("WARC-Filename", name), ("WARC-Date", now),
            ("Content-Type", "application/warc-fields"),
        ], fields)))
        self.files.append(name)

    def _append(self, data: bytes) -> None:
        self._fh.write(data)
        self._size += len(data)

    def write(self, page: FetchedPage) -> tuple[str, int]:
        """Write the pair; returns (file name, offset of the response record)."""
        if self._fh is None or self._size >= self.max_bytes:
            self._open_next()
        parts = page.final_url.split("/", 3)
        path = "/" + (parts[3] if len(parts) > 3 else "")
        host = parts[2] if len(parts) > 2 else ""
        response_id = _record_id()
        request = warc_record("request", [
            ("WARC-Record-ID", _record_id()), ("WARC-Date", page.fetch_time),
            ("WARC-Target-URI", page.final_url), ("WARC-Concurrent-To", response_id),
            ("Content-Type", "application/http; msgtype=request"),
        ], http_block(f"{page.request_method} {path} HTTP/1.1", [("Host", host), *page.request_headers]))
        headers = [(name, value) for name, value in page.response_headers if name.lower() not in _TRANSFER_HEADERS]
        headers.append(("Content-Length", str(len(page.body))))
        block = http_block(f"HTTP/1.1 {_status_line(page.status)}", headers, page.body)
        warc_headers = [("WARC-Record-ID", response_id), ("WARC-Date", page.fetch_time),
                        ("WARC-Target-URI", page.final_url)]
        if page.ip_address:
            warc_headers.append(("WARC-IP-Address", page.ip_address))
        warc_headers += [("Content-Type", "application/http; msgtype=response"), *webtext_headers(page)]
        response = warc_record("response", warc_headers, block, payload=page.body)
        self._append(self._gzip(request))
        offset = self._size
        self._append(self._gzip(response))
        return self.files[-1], offset

    def sync(self) -> None:
        """Make everything written so far durable (before the crawl log refers to it)."""
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
            self._fh.close()
            self._fh = None


def record_end(path: str, offset: int) -> int:
    """File position just past the (gzip-member) record that starts at `offset`."""
    with open(path, "rb") as warc_file:
        warc_file.seek(offset)
        records = ArchiveIterator(warc_file)
        record = next(records)
        record.content_stream().read()
        records.read_to_end(record)
        return offset + records.get_record_length()


def truncate_after(path: str, last_offset: int | None) -> str:
    """Cut a WARC file after its last logged response record (delete it if none is logged).

    Returns what happened: "kept", "truncated" or "deleted".
    """
    if last_offset is None:
        os.unlink(path)
        return "deleted"
    end = record_end(path, last_offset)
    if end == os.path.getsize(path):
        return "kept"
    with open(path, "r+b") as warc_file:
        warc_file.truncate(end)
        warc_file.flush()
        os.fsync(warc_file.fileno())
    return "truncated"
