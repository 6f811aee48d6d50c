"""Read pages out of any WARC files (ours, Common Crawl, Heritrix, wget, browsertrix, pywb).

Three Beam steps, so that one big WARC is read by many workers (`ReadWarc`):
  1. `IndexWarcFile` (one worker per file): a cheap scan (shards/warc_reader.py) that finds
     every record's byte offset and length (per-record gzip members, or plain records) and cuts
     the file into ranges of whole fetch groups (~64 records / ~16 MB; a range starts only at a
     `response` or `revisit` record, so a response and the `metadata` record after it are never
     separated). Unreadable bytes become `warc_bad_record` drops here (see below).
  2. Reshuffle of the ranges.
  3. `ReadWarcRange`: seek to each record of the range, parse it with warcio -> page dicts.

Stage `read` counts `response` and `revisit` records (warcinfo / request / metadata / resource
records are not inputs). Drop reasons: `redirect` (3xx), `http_not_200` (other statuses),
`not_http`, `bad_url`, `bad_provenance`, `warc_bad_record` (one per unreadable region: junk
between records, a corrupt gzip member, a record cut off at the end of the file; reading
resynchronises at the next gzip member / `WARC/1.x` line that parses), `warc_read_error` (a file
that cannot be opened at all). Each drop goes to the `DROPPED` output with `warc_file` and
`warc_offset` (and the record's URL when known).

Page dict (main output, `core.beam.KEPT`), one per HTTP 200 `response` and per `revisit`:
  id            doc_id(url_key(url)), 16 hex chars
  url           Reddit source URL (WebText-Source-URL) when provenance is known, else
                WARC-Target-URI
  final_url     WARC-Target-URI of the response (after redirects)
  domain        domain(final_url)
  body_at       where the HTTP payload is: (path, gzip-member/record offset, its length,
                record offset), None for a revisit. Pages travel without their bodies (a few
                hundred bytes instead of ~145 KB of HTML) through the captures stage's shuffles;
                `ReadBodies` reads the body of each kept page just before extraction.
  content_type  HTTP Content-Type ("" when absent)
  post_ids, subreddits   sorted lists, or None without Reddit provenance
  score, created_utc     int, or None without Reddit provenance
  crawl_time    WARC-Date as ISO 8601 UTC with microseconds
  warc_file     file name relative to the folder it was found under (see `list_warc_inputs`)
  warc_offset   byte offset of the response/revisit record in that file
  source        "live" | "archive" (metadata WebText-Source; "live" when not stated)
  capture_time  archive capture time (metadata WebText-Capture-Time) or None
  payload_digest  WARC-Payload-Digest or None
  record_type   "response" | "revisit"
  refers_to_uri, refers_to_date   WARC-Refers-To-Target-URI / -Date of a revisit, else None
Provenance sources, first found wins: the `metadata` record whose WARC-Concurrent-To is the
response's WARC-Record-ID (fields named like the old headers: WebText-Source-URL,
WebText-Post-Ids, WebText-Subreddits, WebText-Score, WebText-First-Created-UTC, WebText-Source,
WebText-Capture-Time), else WebText-* headers on the response (older crawl outputs), else none.

`REDIRECTS` output (tag "redirects"), one per 3xx response with a Location header (the 3xx is
also counted as the drop `redirect`): {from_url (WARC-Target-URI), to_url (Location resolved
against from_url), warc_file, warc_offset, crawl_time}.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
from typing import Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import TaggedOutput

from core import fsio
from core.beam import DROPPED, KEPT, StageCounter
from crawl.urls import url_key
from extract.pipeline import BODY_ERROR
from shards.split import doc_id
from shards.warc_reader import (DROP, PAGE, REDIRECT, BadRegion, id_or_none, is_gzip, plan_ranges, read_body_at,
                                 read_range, scan)

log = logging.getLogger(__name__)

WARC_SUFFIXES = (".warc.gz", ".warc")
REDIRECTS = "redirects"  # tagged output of `ReadWarc`: one dict per 3xx response with a Location
_GLOB = re.compile(r"[*?[]")


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
    """The WARC file's name as recorded in the dataset: relative to the folder it was found under."""
    prefix = root.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else path


def _glob_base(pattern: str) -> str:
    """The folder part of a glob before its first wildcard: what its matches are named against."""
    parts = pattern.split("/")
    fixed = next(i for i, part in enumerate(parts) if _GLOB.search(part))
    return "/".join(parts[:fixed])


def _files_of(given: str) -> list[tuple[str, str]]:
    """(path, name relative to the folder it was found under) of each WARC file one `--warc`
    value names: a WARC file, a crawl output dir or its warc/ folder, or a glob of either."""
    if _GLOB.search(given):
        base = _glob_base(given)
        if fsio.is_local(given):
            matches = sorted(glob.glob(given, recursive=True))
        else:
            matches = [m.path for m in FileSystems.match([given])[0].metadata_list]
        files = []
        for match in matches:
            if fsio.is_local(match) and os.path.isdir(match):
                files.extend(path for path in fsio.expand([match]) if path.endswith(WARC_SUFFIXES))
            elif match.endswith(WARC_SUFFIXES):
                files.append(match)
        if not files:
            raise FileNotFoundError(f"no *.warc.gz files match {given!r}")
        return [(path, relative_name(path, base)) for path in sorted(set(files))]
    if given.endswith(WARC_SUFFIXES) and FileSystems.exists(given) and not (
            fsio.is_local(given) and os.path.isdir(given)):
        return [(given, given.rstrip("/").rsplit("/", 1)[-1])]
    root = warc_root(given)
    return [(path, relative_name(path, root)) for path in find_warc_files(root)]


def list_warc_inputs(inputs: list[str]) -> list[tuple[str, str]]:
    """(path, warc_file name) of every WARC file the `--warc` values name, in the order given
    (each value's files sorted). Names are relative to the folder a file was found under (a
    glob: the folder before its first wildcard); with more than one value each name is
    prefixed by the value's position, `0/...`, `1/...`, so that two crawl folders holding the
    same file names never collide. A file named twice is read once."""
    seen: set[str] = set()
    listed = []
    for position, given in enumerate(inputs):
        for path, name in _files_of(given):
            if path in seen:
                log.warning("%s is named by more than one --warc value; reading it once", path)
                continue
            seen.add(path)
            listed.append((path, f"{position}/{name}" if len(inputs) > 1 else name))
    return listed


def crawl_folder(inputs: list[str]) -> str | None:
    """The WARC folder when the `--warc` values are one crawl folder (its crawl report lies
    beside it), else None."""
    if len(inputs) != 1 or _GLOB.search(inputs[0]) or inputs[0].endswith(WARC_SUFFIXES):
        return None
    return warc_root(inputs[0])


def page_id(url: str) -> str:
    """The document id of a page's URL; ValueError for an unusable URL."""
    return doc_id(url_key(url))


def _open(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


class IndexWarcFile(beam.DoFn):
    """(path, name) -> ranges (path, name, [(offset, length), ...]) of whole fetch groups.
    Each damaged region is counted in stage `read` as one `warc_bad_record`; a file that cannot
    be opened or read at all is one `warc_read_error` (ranges found before a read failure stay)."""

    def __init__(self):
        self.counter = StageCounter("read")

    def process(self, element: tuple[str, str]) -> Iterator:
        path, name = element
        ranges = regions = 0
        try:
            with _open(path) as stream:
                for item in plan_ranges(scan(stream, is_gzip(stream, name))):
                    if isinstance(item, BadRegion):
                        log.warning("warc_bad_record: %s @%d: %d unreadable bytes skipped", path, item.offset,
                                    item.length)
                        regions += 1
                        self.counter.seen()
                        yield self.counter.drop("warc_bad_record", {
                            "id": id_or_none(item.url, page_id), "url": item.url, "final_url": None,
                            "warc_file": name, "warc_offset": item.offset})
                        continue
                    ranges += 1
                    yield path, name, [(unit.offset, unit.length) for unit in item]
        except Exception as exc:  # the filesystem raises many types for a file it cannot read
            log.error("warc_read_error: %s: %s: %s", path, type(exc).__name__, exc)
            self.counter.seen()
            yield self.counter.drop("warc_read_error", {"id": None, "url": None, "final_url": None,
                                                        "warc_file": name, "warc_offset": None})
            return
        log.info("indexed %s: %d range(s), %d damaged region(s)", name, ranges, regions)


class ReadWarcRange(beam.DoFn):
    """A range from `IndexWarcFile` -> page dicts (main), drops (`DROPPED`), redirects
    (`REDIRECTS`). Stage `read` counts each response/revisit record once."""

    def __init__(self):
        self.counter = StageCounter("read")

    def process(self, element: tuple[str, str, list[tuple[int, int]]]) -> Iterator:
        path, name, units = element
        with _open(path) as stream:
            for kind, value in read_range(stream, units, path, name, page_id):
                if kind == PAGE:
                    self.counter.seen()
                    self.counter.kept()
                    yield value
                elif kind == DROP:
                    reason, record = value
                    self.counter.seen()
                    yield self.counter.drop(reason, record)
                elif kind == REDIRECT:
                    yield TaggedOutput(REDIRECTS, value)


WARC_REREAD_ERROR = "warc_reread_error"  # extract stage drop: the body is no longer where it was read


class ReadBodies(beam.DoFn):
    """Page with `body_at` -> the page with `body` (its HTTP payload bytes), read again from its
    WARC record; fused with extraction, so bodies never cross a shuffle. A body that cannot be
    read (the file changed or vanished since the read stage) leaves `body` None and
    `BODY_ERROR` = `warc_reread_error`, the extract stage's drop reason for it. The last few
    files stay open: one big WARC is seeked, not reopened, for each page."""

    OPEN_FILES = 8

    def setup(self):
        self._files: dict[str, object] = {}  # path -> open stream, least recently used first

    def process(self, page: dict) -> Iterator[dict]:
        where = page.get("body_at")
        if where is None:  # a revisit without original body: extraction drops it as decode_error
            yield page
            return
        path, unit_offset, unit_length, record_offset = where
        try:
            # unbuffered where the filesystem allows: a buffered object-store stream would fetch
            # its whole read buffer (Beam's S3 reader: 16 MB) for each few-KB record
            stream = self._stream(path)
            body = read_body_at(getattr(stream, "raw", stream), unit_offset, unit_length, record_offset)
        except Exception as exc:  # the filesystem and warcio raise many types
            log.warning("%s: %s @%d: %s: %s", WARC_REREAD_ERROR, path, record_offset, type(exc).__name__, exc)
            self._close(path)
            yield {**page, "body": None, BODY_ERROR: WARC_REREAD_ERROR}
            return
        yield {**page, "body": body}

    def _stream(self, path: str):
        stream = self._files.pop(path, None) or _open(path)
        self._files[path] = stream
        if len(self._files) > self.OPEN_FILES:
            self._close(next(iter(self._files)))
        return stream

    def _close(self, path: str) -> None:
        stream = self._files.pop(path, None)
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.close()

    def teardown(self):
        for path in list(self._files):
            self._close(path)


class ReadWarc(beam.PTransform):
    """(path, warc_file name) pairs -> {KEPT: pages, DROPPED: drops, REDIRECTS: redirects}.
    Apply to the pipeline: index each file (one worker per file), spread the ranges over the
    workers, read them."""

    def __init__(self, files: list[tuple[str, str]]):
        super().__init__()
        self.files = files

    def expand(self, pbegin):
        indexed = (pbegin
                   | "WarcFiles" >> beam.Create(self.files)
                   | "SpreadFiles" >> beam.Reshuffle()
                   | "IndexWarc" >> beam.ParDo(IndexWarcFile()).with_outputs(DROPPED, main=KEPT))
        read = (indexed[KEPT]
                | "SpreadRanges" >> beam.Reshuffle()
                | "ReadRanges" >> beam.ParDo(ReadWarcRange()).with_outputs(DROPPED, REDIRECTS, main=KEPT))
        dropped = (indexed[DROPPED], read[DROPPED]) | "ReadDropped" >> beam.Flatten()
        return {KEPT: read[KEPT], DROPPED: dropped, REDIRECTS: read[REDIRECTS]}
