"""WARC files without Beam: find the records, cut a file into ranges, read a range into pages.

Why an index pass: a WARC file is one stream, but its records are independent. Scanning it once
for record boundaries (decompressing each gzip member only to find where it ends; plain records
by their Content-Length) is cheap next to extraction, and lets many workers each read a range.

The scan is also where damage is found. Anything that is not a whole record (junk between
records, a gzip member that does not decompress or whose CRC fails, a record cut off by the end
of the file, a plain record whose Content-Length runs past the next record) becomes one
`BadRegion`, and the scan resynchronises at the next gzip member that decompresses to a
`WARC/1.x` header (gzip files) or the next `WARC/1.0` / `WARC/1.1` line whose header parses
(plain files). A region is one counted drop, however many records it swallowed.

A WARC compressed as one gzip stream (not per record, which the WARC standard asks for and
every crawler writes) is one unit that warcio refuses to read: one `warc_bad_record` (the log
names `warcio recompress`, which turns it into a per-record gzip WARC).
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator
from urllib.parse import urljoin

from warcio.archiveiterator import ArchiveIterator
from zlib_ng import zlib_ng

from crawl.urls import domain

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b\x08"
RECORD_START = b"WARC/1."
_VERSION_LINE = re.compile(rb"WARC/1\.[01]\r?\n")
HEADER_LIMIT = 64 * 1024  # a WARC header longer than this is treated as damage
READ_CHUNK = 1 << 20
INFLATE_CHUNK = 64 * 1024  # bounds the output of one decompress call (~64 MB at worst)
# A range ends at the first response/revisit record after it holds this many records or bytes:
# enough work per range to amortise the seek, small enough for many ranges per big file.
RANGE_RECORDS = 64
RANGE_BYTES = 16 << 20
PAGE_TYPES = ("response", "revisit")
PAGE, DROP, REDIRECT = "page", "drop", "redirect"  # the kinds of events `read_range` yields


@dataclass(frozen=True)
class Unit:
    """Bytes holding whole records: one gzip member or one plain record (rarely several)."""

    offset: int
    length: int
    warc_type: str


@dataclass(frozen=True)
class BadRegion:
    """Bytes that hold no readable record; `url` of the record it broke in, when its header read."""

    offset: int
    length: int
    url: str | None


class ProvenanceError(Exception):
    """A page whose WebText-* fields or WARC-Date cannot be parsed."""


class TruncatedRecord(IOError):
    """The bytes ended inside a record (the file changed after the scan)."""


class _Bytes:
    """Random access over a seekable binary stream through a read-ahead buffer (sequential
    reads, the common case, never seek)."""

    def __init__(self, stream):
        self.stream = stream
        self.buffer = b""
        self.start = 0  # file offset of buffer[0]; the stream is positioned at its end

    def read_at(self, pos: int, n: int) -> bytes:
        end = self.start + len(self.buffer)
        if not (self.start <= pos and pos + n <= end):
            if self.start <= pos <= end:
                kept = self.buffer[pos - self.start:]
            else:
                self.stream.seek(pos)
                kept = b""
            parts = [kept]
            missing = max(n - len(kept), READ_CHUNK)
            while missing > 0:
                data = self.stream.read(missing)
                if not data:
                    break
                parts.append(data)
                missing -= len(data)
            self.buffer, self.start = b"".join(parts), pos
        return self.buffer[pos - self.start:pos - self.start + n]

    def find(self, pattern: bytes, pos: int) -> int | None:
        """Offset of the first `pattern` at or after `pos`, None if there is none."""
        while True:
            chunk = self.read_at(pos, READ_CHUNK)
            found = chunk.find(pattern)
            if found >= 0:
                return pos + found
            if len(chunk) < READ_CHUNK:
                return None
            pos += len(chunk) - len(pattern) + 1


def parse_header(data: bytes) -> tuple[dict[str, str], int] | None:
    """(lower-cased WARC header fields, header length incl. the blank line) of the record at the
    start of `data`, or None if it does not start with a complete WARC/1.0 or 1.1 header."""
    if not _VERSION_LINE.match(data):
        return None
    end = data.find(b"\r\n\r\n")
    size = 4
    if end < 0:
        end, size = data.find(b"\n\n"), 2
        if end < 0:
            return None
    fields = {}
    for line in data[:end].decode("utf-8", "replace").splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip().lower(), value.strip())
    if "warc-type" not in fields:
        return None
    return fields, end + size


def _header_url(data: bytes) -> str | None:
    """The URL a damaged record's header names (its complete lines), for the audit table."""
    if not _VERSION_LINE.match(data):
        return None
    end = data.find(b"\r\n\r\n")
    complete = data[:end] if end >= 0 else data[:data.rfind(b"\n")]
    fields = {}
    for line in complete.decode("utf-8", "replace").splitlines()[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip().lower(), value.strip())
    return fields.get("webtext-source-url") or fields.get("warc-target-uri")


def _inflate_member(source: _Bytes, pos: int) -> tuple[int | None, bytes]:
    """(length of the gzip member at `pos`, or None if it is damaged, cut off or not a WARC
    record; the first HEADER_LIMIT bytes it decompressed to)."""
    inflater = zlib_ng.decompressobj(31)
    prefix = b""
    fed = pos
    size = 1024  # small first pieces: a member that breaks later still yields its header
    while not inflater.eof:
        chunk = source.read_at(fed, size)
        size = min(2 * size, INFLATE_CHUNK)
        if not chunk:
            return None, prefix
        try:
            out = inflater.decompress(chunk)
        except zlib_ng.error:
            return None, prefix
        if len(prefix) < HEADER_LIMIT:
            prefix += out[:HEADER_LIMIT - len(prefix)]
        if prefix[:len(RECORD_START)] != RECORD_START[:len(prefix)]:
            return None, prefix  # decompresses, but not to a WARC record
        fed += len(chunk)
    return fed - len(inflater.unused_data) - pos, prefix


def _gzip_units(source: _Bytes) -> Iterator[tuple[int, Unit | None, str | None]]:
    """(offset, the unit there or None, URL of a damaged record) for each place tried."""
    pos = 0
    while source.read_at(pos, 1):
        length, prefix = _inflate_member(source, pos)
        header = parse_header(prefix)
        if length is not None and header is not None:
            yield pos, Unit(pos, length, header[0]["warc-type"]), None
            pos += length
        elif length is not None and not prefix:
            pos += length  # an empty gzip member holds no record: nothing to read or count
        else:
            yield pos, None, _header_url(prefix)
            following = source.find(GZIP_MAGIC, pos + 1)
            if following is None:
                return
            pos = following


def _skip_blank_lines(source: _Bytes, pos: int) -> int:
    while source.read_at(pos, 1) in (b"\r", b"\n"):
        pos += 1
    return pos


def _plain_units(source: _Bytes) -> Iterator[tuple[int, Unit | None, str | None]]:
    pos = _skip_blank_lines(source, 0)
    while source.read_at(pos, 1):
        head = source.read_at(pos, HEADER_LIMIT)
        header = parse_header(head)
        length = None
        if header is not None:
            length = _plain_record_length(source, pos, header)
        if length is not None:
            yield pos, Unit(pos, length, header[0]["warc-type"]), None
            pos = _skip_blank_lines(source, pos + length)
        else:
            yield pos, None, _header_url(head)
            following = source.find(RECORD_START, pos + 1)
            if following is None:
                return
            pos = following


def _plain_record_length(source: _Bytes, pos: int, header: tuple[dict[str, str], int]) -> int | None:
    """Bytes of the plain record at `pos` with `header`, or None where its Content-Length does
    not end the record (cut off, or junk inside it)."""
    fields, header_length = header
    try:
        block = int(fields.get("content-length", ""))
    except ValueError:
        return None
    end = pos + header_length + block
    if block < 0 or (block and len(source.read_at(end - 1, 1)) != 1):  # cut off by the end of the file
        return None
    if source.read_at(end, 4) == b"\r\n\r\n":
        return end + 4 - pos
    following = _skip_blank_lines(source, end)
    if not source.read_at(following, 1) or source.read_at(following, len(RECORD_START)) == RECORD_START:
        return following - pos
    return None


def is_gzip(stream, name: str) -> bool:
    """Per-record gzip or plain WARC: by the first bytes, by the name if they say neither."""
    start = stream.read(2)
    stream.seek(0)
    if start == GZIP_MAGIC[:2]:
        return True
    if start == RECORD_START[:2]:
        return False
    return name.endswith(".gz")


def scan(stream, gzipped: bool) -> Iterator[Unit | BadRegion]:
    """Every record unit of the file, in order, with the damaged regions between them."""
    source = _Bytes(stream)
    tries = _gzip_units(source) if gzipped else _plain_units(source)
    bad_start, bad_url = None, None
    for pos, unit, url in tries:
        if unit is None:
            if bad_start is None:
                bad_start, bad_url = pos, url
            continue
        if bad_start is not None:
            yield BadRegion(bad_start, pos - bad_start, bad_url)
            bad_start = None
        yield unit
    if bad_start is not None:
        yield BadRegion(bad_start, _end_of(source) - bad_start, bad_url)


def _end_of(source: _Bytes) -> int:
    source.stream.seek(0, 2)
    size = source.stream.tell()
    source.buffer, source.start = b"", size
    return size


def plan_ranges(items: Iterator[Unit | BadRegion], max_records: int = RANGE_RECORDS,
                max_bytes: int = RANGE_BYTES) -> Iterator[list[Unit] | BadRegion]:
    """Group units into ranges of contiguous, whole fetch groups; bad regions pass through
    (and end the range before them). A range only ever starts at a response/revisit record."""
    current: list[Unit] = []
    size = 0
    for item in items:
        if isinstance(item, BadRegion):
            if current:
                yield current
                current, size = [], 0
            yield item
            continue
        if current and (len(current) >= max_records or size >= max_bytes) and item.warc_type in PAGE_TYPES:
            yield current
            current, size = [], 0
        current.append(item)
        size += item.length
    if current:
        yield current


class _Window:
    """`length` bytes of `stream` from `offset`, as a stream of its own."""

    def __init__(self, stream, offset: int, length: int):
        stream.seek(offset)
        self.stream = stream
        self.left = length

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.stream.read(n) if n else b""
        self.left -= len(data)
        return data


# ---------------------------------------------------------------------------- records -> pages


def split_list(value: str | None) -> list[str]:
    return sorted({v.strip() for v in (value or "").split(",") if v.strip()})


def iso_utc(value: str | None) -> str:
    """WARC-Date (W3C-ISO 8601, optionally fractional) normalised to microsecond UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ProvenanceError(f"bad date {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _int_field(fields: Callable[[str], str | None], name: str) -> int:
    raw = fields(name)
    try:
        return int(raw)
    except (TypeError, ValueError) as exc:
        raise ProvenanceError(f"bad {name} {raw!r}") from exc


def read_body(record) -> bytes:
    body = record.content_stream().read()
    if record.raw_stream.limit:  # bytes the record header promised but the file lacks
        raise TruncatedRecord(f"record ends {record.raw_stream.limit} bytes early")
    return body


def warc_fields(body: bytes) -> dict[str, str]:
    """An application/warc-fields block (`Name: value` lines) as a dict; first value wins."""
    fields: dict[str, str] = {}
    for line in body.decode("utf-8", "replace").splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip():
            fields.setdefault(name.strip(), value.strip())
    return fields


@dataclass
class _Pending:
    """A response/revisit record read up to its end, waiting for a metadata record."""

    record_id: str | None
    warc_type: str
    headers: object  # warcio StatusAndHeaders of the WARC record
    http_headers: object | None
    body_at: tuple | None  # where the body is: (unit offset, unit length, record offset), or None
    offset: int
    metadata: dict[str, str] = field(default_factory=dict)

    def provenance(self) -> Callable[[str], str | None] | None:
        """Where the Reddit provenance is: the concurrent metadata record, else WebText-*
        headers on the record itself (older crawl outputs), else nowhere (None)."""
        if self.metadata.get("WebText-Source-URL"):
            return self.metadata.get
        if self.headers.get_header("WebText-Source-URL"):
            return self.headers.get_header
        return None


def _status(pending: _Pending) -> str | None:
    return pending.http_headers.get_statuscode() if pending.http_headers is not None else None


def _is_redirect(status: str | None) -> bool:
    return status is not None and len(status) == 3 and status.startswith("3") and status != "304"


def identity(pending: _Pending, name: str, page_id: Callable[[str], str]) -> dict:
    """What the audit table can say about a record that did not become a page."""
    provenance = pending.provenance()
    target = pending.headers.get_header("WARC-Target-URI")
    url = (provenance("WebText-Source-URL") if provenance else None) or target
    return {"id": id_or_none(url, page_id), "url": url, "final_url": target,
            "warc_file": name, "warc_offset": pending.offset}


def id_or_none(url: str | None, page_id: Callable[[str], str]) -> str | None:
    """The id of `url`, None where there is no URL or it is unusable."""
    try:
        return page_id(url) if url else None
    except ValueError:
        return None


def _redirect(pending: _Pending, name: str) -> dict | None:
    location = pending.http_headers.get_header("Location")
    from_url = pending.headers.get_header("WARC-Target-URI")
    if not location or not from_url:
        return None
    try:
        crawl_time = iso_utc(pending.headers.get_header("WARC-Date"))
    except ProvenanceError:
        crawl_time = None
    return {"from_url": from_url, "to_url": urljoin(from_url, location), "warc_file": name,
            "warc_offset": pending.offset, "crawl_time": crawl_time}


def page_dict(pending: _Pending, path: str, name: str, page_id: Callable[[str], str]) -> dict:
    """The page of a 200 response or a revisit. ValueError: no usable URL; ProvenanceError:
    provenance fields or dates that do not parse."""
    headers = pending.headers
    provenance = pending.provenance()
    target = headers.get_header("WARC-Target-URI")
    url = provenance("WebText-Source-URL") if provenance else target
    if not url:
        raise ValueError("no WARC-Target-URI")
    final_url = target or url
    source = (provenance("WebText-Source") if provenance else None) or "live"
    if source not in ("live", "archive"):
        raise ProvenanceError(f"bad WebText-Source {source!r}")
    capture_time = pending.metadata.get("WebText-Capture-Time")
    revisit = pending.warc_type == "revisit"
    refers_to_date = headers.get_header("WARC-Refers-To-Date") if revisit else None
    return {
        "id": page_id(url),  # ValueError for an unusable URL
        "url": url,
        "final_url": final_url,
        "domain": domain(final_url),
        "body_at": (path, *pending.body_at) if pending.body_at else None,
        "content_type": (pending.http_headers.get_header("Content-Type") if pending.http_headers else None) or "",
        "post_ids": split_list(provenance("WebText-Post-Ids")) if provenance else None,
        "subreddits": split_list(provenance("WebText-Subreddits")) if provenance else None,
        "score": _int_field(provenance, "WebText-Score") if provenance else None,
        "created_utc": _int_field(provenance, "WebText-First-Created-UTC") if provenance else None,
        "crawl_time": iso_utc(headers.get_header("WARC-Date")),
        "warc_file": name,
        "warc_offset": pending.offset,
        "source": source,
        "capture_time": iso_utc(capture_time) if capture_time else None,
        "payload_digest": headers.get_header("WARC-Payload-Digest"),
        "record_type": pending.warc_type,
        "refers_to_uri": headers.get_header("WARC-Refers-To-Target-URI") if revisit else None,
        "refers_to_date": iso_utc(refers_to_date) if refers_to_date else None,
    }


def _outcome(pending: _Pending, path: str, name: str,
             page_id: Callable[[str], str]) -> Iterator[tuple[str, object]]:
    """The events of one response/revisit: a page, or a drop (plus a redirect for a 3xx)."""
    status = _status(pending)
    if _is_redirect(status):
        redirect = _redirect(pending, name)
        if redirect is not None:
            yield REDIRECT, redirect
        yield DROP, ("redirect", identity(pending, name, page_id))
        return
    if pending.warc_type == "response" and pending.http_headers is None:
        yield DROP, ("not_http", identity(pending, name, page_id))
        return
    if status not in (None, "200") and not (pending.warc_type == "revisit" and status == "304"):
        yield DROP, ("http_not_200", identity(pending, name, page_id))
        return
    try:
        yield PAGE, page_dict(pending, path, name, page_id)
    except ProvenanceError as exc:
        log.warning("%s @%d: %s", name, pending.offset, exc)
        yield DROP, ("bad_provenance", identity(pending, name, page_id))
    except ValueError as exc:
        log.warning("%s @%d: %s", name, pending.offset, exc)
        yield DROP, ("bad_url", identity(pending, name, page_id))


def _concurrent_to(record) -> list[str]:
    return [value for key, value in record.rec_headers.headers if key.lower() == "warc-concurrent-to"]


def _pending(record, unit: tuple[int, int], offset: int) -> _Pending:
    """A response/revisit record; a 200 response's body is read through (a record cut short is
    damage found now, not at extraction) and remembered by where it is, not held."""
    status = record.http_headers.get_statuscode() if record.http_headers is not None else None
    has_body = record.rec_type == "response" and status == "200"
    if has_body:
        read_body(record)
    return _Pending(record_id=record.rec_headers.get_header("WARC-Record-ID"), warc_type=record.rec_type,
                    headers=record.rec_headers, http_headers=record.http_headers,
                    body_at=(*unit, offset) if has_body else None, offset=offset)


def read_range(stream, units: list[tuple[int, int]], path: str, name: str,
               page_id: Callable[[str], str]) -> Iterator[tuple[str, object]]:
    """(kind, value) events of the records in `units` ((offset, length) pairs from `scan`) of
    the file at `path`: (PAGE, page dict), (DROP, (reason, identity)), (REDIRECT, redirect dict).
    One PAGE or DROP per response/revisit record; a unit that fails to parse is one
    `warc_bad_record` DROP. A page holds no body, only `body_at` (`read_body_at` reads it)."""
    pending: _Pending | None = None
    for offset, length in units:
        current = None  # the record being parsed, for the drop if it breaks
        try:
            records = ArchiveIterator(_Window(stream, offset, length))
            for record in records:
                current = record
                if record.format != "warc":  # warcio falls back to ARC parsing on garbage
                    raise ValueError(f"not a WARC record (parsed as {record.format})")
                if record.rec_type in PAGE_TYPES:
                    parsed = _pending(record, (offset, length), offset + records.offset)
                    if pending is not None:
                        yield from _outcome(pending, path, name, page_id)
                    pending, current = parsed, None
                elif (record.rec_type == "metadata" and pending is not None
                      and pending.record_id in _concurrent_to(record)):
                    pending.metadata = warc_fields(read_body(record))
                current = None
        except Exception as exc:  # warcio and zlib raise many types for a damaged record
            log.warning("warc_bad_record: %s @%d: %s: %s", name, offset, type(exc).__name__, exc)
            url = None
            if current is not None:
                url = (current.rec_headers.get_header("WebText-Source-URL")
                       or current.rec_headers.get_header("WARC-Target-URI"))
            yield DROP, ("warc_bad_record", {"id": id_or_none(url, page_id), "url": url, "final_url": None,
                                             "warc_file": name, "warc_offset": offset})
    if pending is not None:
        yield from _outcome(pending, path, name, page_id)


def read_body_at(stream, unit_offset: int, unit_length: int, record_offset: int) -> bytes:
    """The HTTP payload of the response record at `record_offset`, inside the unit (`scan`) at
    `unit_offset`: a page's `body_at` without its path. The unit is read with one ranged read of
    exactly its bytes (on an object store, one GET of a few tens of KB). IOError if the record is
    not there (the file changed since it was read)."""
    stream.seek(unit_offset)
    chunks, left = [], unit_length
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise TruncatedRecord(f"the file ends {left} bytes into the unit at offset {unit_offset}")
        chunks.append(chunk)
        left -= len(chunk)
    records = ArchiveIterator(io.BytesIO(b"".join(chunks)))
    for record in records:
        if unit_offset + records.offset == record_offset:
            if record.rec_type != "response":
                break
            return read_body(record)
    raise IOError(f"no response record at offset {record_offset}")
