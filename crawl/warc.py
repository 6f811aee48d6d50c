"""WARC/1.1 output: one gzip member per record, request + response per fetched page.

Files are rotated by size and never appended to by a later run. After a crash, the records
that no crawl-log row refers to are cut off (`truncate_after`), which also removes an
unterminated last gzip member, so every WARC file is valid again and nothing is duplicated.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from http import HTTPStatus

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from webtext import __version__

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


def webtext_headers(page: FetchedPage) -> dict[str, str]:
    """The WebText-* WARC headers (docs/contracts.md) that carry the Reddit metadata."""
    return {
        "WebText-Source-URL": page.source_url,
        "WebText-Post-Ids": ",".join(page.post_ids),
        "WebText-Subreddits": ",".join(page.subreddits),
        "WebText-Score": str(int(page.score)),
        "WebText-First-Created-UTC": str(int(page.first_created_utc)),
        "WebText-Redirect-Chain": " ".join(page.redirects),
    }


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


class WarcWriter:
    """Writes request/response pairs to `<directory>/<prefix>-NNNNN.warc.gz`, rotating by size."""

    def __init__(self, directory: str, prefix: str, max_bytes: int, software_info: dict[str, str]):
        self.directory = directory
        self.prefix = prefix
        self.max_bytes = max_bytes
        self.software_info = software_info
        self.files: list[str] = []
        self._fh: io.BufferedWriter | None = None
        self._writer: WARCWriter | None = None
        os.makedirs(directory, exist_ok=True)

    def _open_next(self) -> None:
        self.close()
        name = f"{self.prefix}-{len(self.files):05d}.warc.gz"
        self._fh = open(os.path.join(self.directory, name), "xb")
        self._writer = WARCWriter(self._fh, gzip=True, warc_version="1.1")
        info = {"software": f"webtext/{__version__} (warcio)", "format": "WARC File Format 1.1",
                **self.software_info}
        self._writer.write_record(self._writer.create_warcinfo_record(name, info))
        self.files.append(name)

    def write(self, page: FetchedPage) -> tuple[str, int]:
        """Write the pair; returns (file name, offset of the response record)."""
        if self._fh is None or self._fh.tell() >= self.max_bytes:
            self._open_next()
        writer = self._writer
        parts = page.final_url.split("/", 3)
        path = "/" + (parts[3] if len(parts) > 3 else "")
        request_headers = [("Host", parts[2] if len(parts) > 2 else "")] + page.request_headers
        request = writer.create_warc_record(
            page.final_url, "request",
            http_headers=StatusAndHeaders(f"{page.request_method} {path} HTTP/1.1", request_headers,
                                          is_http_request=True),
            warc_headers_dict={"WARC-Date": page.fetch_time},
        )
        headers = [(k, v) for k, v in page.response_headers if k.lower() not in _TRANSFER_HEADERS]
        headers.append(("Content-Length", str(len(page.body))))
        warc_headers = {"WARC-Date": page.fetch_time, **webtext_headers(page)}
        if page.ip_address:
            warc_headers["WARC-IP-Address"] = page.ip_address
        response = writer.create_warc_record(
            page.final_url, "response", payload=io.BytesIO(page.body), length=len(page.body),
            http_headers=StatusAndHeaders(_status_line(page.status), headers, protocol="HTTP/1.1"),
            warc_headers_dict=warc_headers,
        )
        request.rec_headers.add_header("WARC-Concurrent-To", response.rec_headers.get_header("WARC-Record-ID"))
        writer.write_record(request)
        offset = self._fh.tell()
        writer.write_record(response)
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
            self._fh = self._writer = None


def record_end(path: str, offset: int) -> int:
    """File position just past the (gzip-member) record that starts at `offset`."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        records = ArchiveIterator(fh)
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
    with open(path, "r+b") as fh:
        fh.truncate(end)
        fh.flush()
        os.fsync(fh.fileno())
    return "truncated"
