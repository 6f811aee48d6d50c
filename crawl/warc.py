"""WARC/1.1 output, shaped like Common Crawl's: one gzip member per record, and per fetched page
one group of records, in this order (docs/contracts.md):

    request + response          for each redirect hop (the 3xx as received, Location included;
                                its body cut at crawl.warc_max_redirect_body_bytes, if longer)
    request + response          of the final answer (the body decoded)
    metadata                    WARC-Concurrent-To the final response: fetch outcome and the
                                Reddit provenance as `WebText-*` fields (application/warc-fields)

Each file starts with a `warcinfo` record, and every other record names it in WARC-Warcinfo-ID;
request and response records carry WARC-IP-Address when the peer's address is known. A group
never spans two files (they rotate by size between groups).

Files are never appended to by a later run. After a crash, the records that no crawl-log row
refers to are cut off (`truncate_after`: everything after the metadata record of the last logged
response), which also removes an unterminated last gzip member, so every WARC file is valid
again and nothing is duplicated.

Records are built here directly (a few header lines, two SHA-1 digests, one deflate call per
record): the writer runs once per page inside the crawler, where a general-purpose record
builder cost more CPU than the rest of our per-page work together. warcio reads them back.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus

from zlib_ng import zlib_ng

from core import __version__

# Response headers that describe the transfer, not the stored body: a redirect hop's body is
# stored as received (its Content-Encoding stays), the final answer's decoded.
_TRANSFER_HEADERS = {"transfer-encoding", "content-length"}
_DECODED_BODY_HEADERS = {"content-encoding", *_TRANSFER_HEADERS}
# The RFC 9562 variant bits (10xx) set in a UUID's 17th hex digit.
_UUID_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


@dataclass
class RedirectHop:
    """One redirect answer on the way to a fetched page (ChainRedirectMiddleware collects them)."""

    url: str
    status: int
    response_headers: list[tuple[str, str]]
    body: bytes  # as received (still content-encoded)
    request_method: str
    request_headers: list[tuple[str, str]]
    fetch_time: str  # WARC-Date, as FetchedPage.fetch_time
    ip_address: str | None
    body_truncated: bool = False  # `body` is the start of a longer one (WARC-Truncated: length)


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
    # The redirect answers before the final one, in the order they were received.
    hops: list[RedirectHop] = field(default_factory=list)


def warc_now() -> str:
    """The current time as a WARC-Date (ISO 8601 UTC with microseconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def header_pairs(headers) -> list[tuple[str, str]]:
    """(name, value) pairs of a Scrapy-style header mapping (bytes name -> list of bytes values)."""
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, values in headers.items() for value in values]


def metadata_fields(page: FetchedPage) -> list[tuple[str, str]]:
    """The fields of the page's metadata record (docs/contracts.md): outcome and provenance."""
    fields = [
        ("WebText-Source-URL", page.source_url),
        ("WebText-Post-Ids", ",".join(page.post_ids)),
        ("WebText-Subreddits", ",".join(page.subreddits)),
        ("WebText-Score", str(int(page.score))),
        ("WebText-First-Created-UTC", str(int(page.first_created_utc))),
        ("WebText-Redirect-Chain", " ".join(page.redirects)),
        ("WebText-Fetch-Outcome", "ok"),
        ("WebText-Source", page.source),
    ]
    if page.source == "archive":
        fields += [(name, value) for name, value in (
            ("WebText-Archive", page.archive), ("WebText-Capture-Time", page.capture_time),
            ("WebText-Capture-URL", page.capture_url)) if value is not None]
    return fields


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def _digest(data: bytes) -> str:
    return "sha1:" + base64.b32encode(hashlib.sha1(data).digest()).decode("ascii")


def _record_id() -> str:
    """A random (version 4) UUID URN, formatted directly: uuid.uuid4() costs ~2.5x as much, and
    a page's group has at least three records."""
    hexits = os.urandom(16).hex()
    return (f"<urn:uuid:{hexits[:8]}-{hexits[8:12]}-4{hexits[13:16]}-{_UUID_VARIANT[hexits[16]]}{hexits[17:20]}"
            f"-{hexits[20:]}>")


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
    """Writes each page's record group to `<directory>/<prefix>-NNNNN.warc.gz`, rotating by size."""

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
        self._warcinfo_id = ""
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
        self._warcinfo_id = _record_id()
        info = {"software": f"webtext/{__version__}", "format": "WARC File Format 1.1", **self.software_info}
        fields = "".join(f"{name}: {value}\r\n" for name, value in info.items()).encode("utf-8")
        self._append(self._gzip(warc_record("warcinfo", [
            ("WARC-Record-ID", self._warcinfo_id), ("WARC-Filename", name), ("WARC-Date", warc_now()),
            ("Content-Type", "application/warc-fields"),
        ], fields)))
        self.files.append(name)

    def _append(self, data: bytes) -> None:
        self._fh.write(data)
        self._size += len(data)

    def _exchange(self, url: str, method: str, request_headers: list[tuple[str, str]], status: int,
                  response_headers: list[tuple[str, str]], body: bytes, fetch_time: str,
                  ip_address: str | None, dropped_headers: set[str],
                  body_truncated: bool = False) -> tuple[bytes, bytes, str]:
        """The request and response records of one HTTP exchange, and the response's record id.
        `dropped_headers`: response headers that no longer describe the stored body."""
        parts = url.split("/", 3)
        path = "/" + (parts[3] if len(parts) > 3 else "")
        host = parts[2] if len(parts) > 2 else ""
        response_id = _record_id()
        common = [("WARC-Date", fetch_time), ("WARC-Target-URI", url), ("WARC-Warcinfo-ID", self._warcinfo_id)]
        if ip_address:
            common.append(("WARC-IP-Address", ip_address))
        request = warc_record("request", [
            ("WARC-Record-ID", _record_id()), *common, ("WARC-Concurrent-To", response_id),
            ("Content-Type", "application/http; msgtype=request"),
        ], http_block(f"{method} {path} HTTP/1.1", [("Host", host), *request_headers]))
        headers = [(name, value) for name, value in response_headers if name.lower() not in dropped_headers]
        headers.append(("Content-Length", str(len(body))))
        truncated = [("WARC-Truncated", "length")] if body_truncated else []
        response = warc_record("response", [
            ("WARC-Record-ID", response_id), *common, ("Content-Type", "application/http; msgtype=response"),
            *truncated,
        ], http_block(f"HTTP/1.1 {_status_line(status)}", headers, body), payload=body)
        return request, response, response_id

    def write(self, page: FetchedPage) -> tuple[str, int]:
        """Write the page's record group; returns (file name, offset of the final response record)."""
        if self._fh is None or self._size >= self.max_bytes:
            self._open_next()
        for hop in page.hops:
            request, response, _ = self._exchange(
                hop.url, hop.request_method, hop.request_headers, hop.status, hop.response_headers, hop.body,
                hop.fetch_time, hop.ip_address, _TRANSFER_HEADERS, hop.body_truncated)
            self._append(self._gzip(request))
            self._append(self._gzip(response))
        request, response, response_id = self._exchange(
            page.final_url, page.request_method, page.request_headers, page.status, page.response_headers,
            page.body, page.fetch_time, page.ip_address, _DECODED_BODY_HEADERS)
        metadata = warc_record("metadata", [
            ("WARC-Record-ID", _record_id()), ("WARC-Date", page.fetch_time), ("WARC-Target-URI", page.final_url),
            ("WARC-Warcinfo-ID", self._warcinfo_id), ("WARC-Concurrent-To", response_id),
            ("Content-Type", "application/warc-fields"),
        ], _header_lines(metadata_fields(page), "utf-8"))
        self._append(self._gzip(request))
        offset = self._size
        self._append(self._gzip(response))
        self._append(self._gzip(metadata))
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


def _gzip_member(warc_file, offset: int) -> tuple[bytes, int] | None:
    """The record in the gzip member at `offset`, and the file position just past it; None if
    the member is torn (ends with the file) or is not gzip."""
    warc_file.seek(offset)
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parts, position = [], offset
    while not inflater.eof:
        chunk = warc_file.read(1 << 16)
        if not chunk:
            return None
        try:
            parts.append(inflater.decompress(chunk))
        except zlib.error:
            return None
        position += len(chunk)
    return b"".join(parts), position - len(inflater.unused_data)


def _warc_header(record: bytes, name: bytes) -> bytes | None:
    """The value of WARC header `name` in a record's header block (None if absent)."""
    prefix = name.lower() + b":"
    for line in record[:record.find(b"\r\n\r\n")].split(b"\r\n")[1:]:
        if line.lower().startswith(prefix):
            return line[len(prefix):].strip()
    return None


def record_end(path: str, offset: int) -> int:
    """File position just past the record group that ends with the response record at `offset`:
    the response, and the metadata record that follows it (files of earlier versions have
    none). Raises ValueError if the response record itself is torn or not gzip."""
    with open(path, "rb") as warc_file:
        response = _gzip_member(warc_file, offset)
        if response is None or _warc_header(response[0], b"WARC-Type") != b"response":
            raise ValueError(f"{path}: no complete response record at offset {offset}")
        record, end = response
        following = _gzip_member(warc_file, end)
        if following is not None and _warc_header(following[0], b"WARC-Type") == b"metadata" \
                and _warc_header(following[0], b"WARC-Concurrent-To") == _warc_header(record, b"WARC-Record-ID"):
            return following[1]
        return end


def truncate_after(path: str, last_offset: int | None) -> str:
    """Cut a WARC file after the record group of its last logged response record (delete it if
    none is logged).

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
