"""Read crawled pages out of WARC files, one record at a time, with their provenance.

The crawl writes a request + response record per page (docs/contracts.md); the response
record carries the final URL as WARC-Target-URI and the Reddit provenance in WebText-*
headers. Only HTTP 200 responses are pages. Files are read in parallel (one file per
element after a Reshuffle) and streamed, so a file is never held in memory at once.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from typing import Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from warcio.archiveiterator import ArchiveIterator

from crawl.urls import domain, url_key
from shards.split import doc_id
from core import fsio
from core.beam import StageCounter

log = logging.getLogger(__name__)

WARC_SUFFIXES = (".warc.gz", ".warc")


class ProvenanceError(Exception):
    """A response record whose WebText-* headers or WARC-Date cannot be parsed."""


def warc_root(path: str) -> str:
    """`--warc` may name the crawl output dir or its `warc/` folder; both mean the folder."""
    inner = fsio.join(path, "warc")
    if fsio.is_local(path):
        has_inner = os.path.isdir(inner)
    else:
        has_inner = bool(FileSystems.match([fsio.join(inner, "*")])[0].metadata_list)
    return inner if has_inner else path.rstrip("/")


def find_warc_files(root: str) -> list[str]:
    """All WARC files under `root`, recursively, sorted for determinism."""
    pattern = root if fsio.is_local(root) else fsio.join(root, "**")  # object stores: recursive glob
    files = [f for f in fsio.expand([pattern]) if f.endswith(WARC_SUFFIXES)]
    if not files:
        raise FileNotFoundError(f"no *.warc.gz files under {root!r}")
    return files


def relative_name(path: str, root: str) -> str:
    """The WARC file's name as recorded in the dataset: relative to the WARC folder."""
    prefix = root.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def _split_list(value: str | None) -> list[str]:
    return sorted({v.strip() for v in (value or "").split(",") if v.strip()})


def _iso_utc(value: str) -> str:
    """WARC-Date (W3C-ISO 8601, optionally fractional) normalised to microsecond UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise ProvenanceError(f"bad WARC-Date {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _int_header(headers, name: str) -> int:
    raw = headers.get_header(name)
    try:
        return int(raw)
    except (TypeError, ValueError) as exc:
        raise ProvenanceError(f"bad {name} {raw!r}") from exc


class TruncatedRecord(IOError):
    """The file ended inside a record (a crawl killed mid-write, a partial copy)."""


def read_body(record) -> bytes:
    body = record.content_stream().read()
    if record.raw_stream.limit:  # bytes the record header promised but the file lacks
        raise TruncatedRecord(f"record ends {record.raw_stream.limit} bytes early")
    return body


def page_from_record(record, body: bytes, warc_file: str, offset: int) -> dict:
    """The page dict of one HTTP 200 response record: body, provenance, stable id."""
    headers = record.rec_headers
    source_url = headers.get_header("WebText-Source-URL")
    if not source_url:
        raise LookupError("no WebText-Source-URL header")
    final_url = headers.get_header("WARC-Target-URI") or source_url
    return {
        "id": doc_id(url_key(source_url)),  # ValueError for an unusable URL
        "url": source_url,
        "final_url": final_url,
        "domain": domain(final_url),
        "body": body,
        "content_type": record.http_headers.get_header("Content-Type") or "",
        "post_ids": _split_list(headers.get_header("WebText-Post-Ids")),
        "subreddits": _split_list(headers.get_header("WebText-Subreddits")),
        "score": _int_header(headers, "WebText-Score"),
        "created_utc": _int_header(headers, "WebText-First-Created-UTC"),
        "crawl_time": _iso_utc(headers.get_header("WARC-Date")),
        "warc_file": warc_file,
        "warc_offset": offset,
    }


def record_identity(record, warc_file: str, offset: int | None) -> dict:
    """What the audit table can say about a response record that did not become a page."""
    url = record.rec_headers.get_header("WebText-Source-URL") if record is not None else None
    try:
        record_id = doc_id(url_key(url)) if url else None
    except ValueError:
        record_id = None
    return {"id": record_id, "url": url,
            "final_url": record.rec_headers.get_header("WARC-Target-URI") if record is not None else None,
            "warc_file": warc_file, "warc_offset": offset}


class ReadWarcPages(beam.DoFn):
    """WARC path -> page dicts. Stage `read` counts response records: pages out, the rest
    dropped by reason (each on the `DROPPED` output with its URL headers and offset); a file
    that breaks off (truncated, not a WARC) is one `warc_read_error` (naming the record it broke
    in, if any) and whatever was read before the break is kept."""

    def __init__(self, root: str):
        self.root = root
        self.counter = StageCounter("read")

    def process(self, path: str) -> Iterator[dict]:
        name = relative_name(path, self.root)
        pages = 0
        pending, offset = None, None  # a response record counted in, not yet counted out
        try:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as stream:
                records = ArchiveIterator(stream)
                for record in records:
                    if record.format != "warc":  # warcio falls back to ARC parsing on garbage
                        raise ValueError(f"not a WARC record (parsed as {record.format})")
                    if record.rec_type != "response":
                        continue  # request/metadata/warcinfo records are not pages
                    self.counter.seen()
                    pending, offset = record, records.offset  # where this record starts
                    page = self.page_or_drop_reason(record, records, name)
                    pending = None
                    if isinstance(page, str):
                        yield self.counter.drop(page, record_identity(record, name, offset))
                        continue
                    pages += 1
                    self.counter.kept()
                    yield page
        except Exception as exc:  # warcio, zlib and the filesystem raise many types for a broken file
            log.error("warc_read_error: %s: %s: %s (kept the %d pages before it)",
                      path, type(exc).__name__, exc, pages)
            if pending is None:
                self.counter.seen()
                offset = None
            yield self.counter.drop("warc_read_error", record_identity(pending, name, offset))
            return
        log.info("read %s: %d pages", name, pages)

    @staticmethod
    def page_or_drop_reason(record, records: ArchiveIterator, name: str) -> dict | str:
        if record.http_headers is None:
            return "not_http"
        if record.http_headers.get_statuscode() != "200":
            return "http_not_200"
        body = read_body(record)  # before get_record_offset(), which skips the rest of the record
        try:
            return page_from_record(record, body, name, records.get_record_offset())
        except LookupError:
            return "no_provenance"
        except ValueError as exc:
            log.warning("%s @%d: %s", name, records.get_record_offset(), exc)
            return "bad_url"
        except ProvenanceError as exc:
            log.warning("%s @%d: %s", name, records.get_record_offset(), exc)
            return "bad_provenance"
