"""The spider: one request per input URL, and exactly one crawl-log row per input URL.

Every request ends in `parse` (any HTTP status: no HttpErrorMiddleware) or `failed` (any
exception), and both hand a single outcome to the `Recorder`, which writes the WARC record
group for `ok` pages (its redirect hops, request, response, metadata: crawl/warc.py) and the
crawl-log row for all of them.

With `crawl.source: archive` each URL is looked up in a web archive instead (crawl/archive.py:
the first CDX request is scheduled like a page, the rest of the lookup awaited in its
callback); with `live_then_archive` a live outcome in RECOVERABLE_OUTCOMES (a soft-404 or
parked page included, crawl/soft404.py) starts that lookup instead of being logged, and the
URL's one row is the archive's outcome, the live failure in its `error` column.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import Counter
from datetime import datetime, timezone
from urllib.parse import urlsplit

import scrapy
from scrapy import signals
from scrapy.utils.asyncio import sleep
from tqdm import tqdm

from crawl.archive import RECOVERABLE_OUTCOMES, ArchiveClient, ArchiveError, ArchiveMissing, Recovered, header_value
from crawl.config import ArchiveConfig
from crawl.crawl_log import CrawlLogWriter
from crawl.middlewares import ChainRedirectMiddleware, outcome_of_exception
from crawl.soft404 import soft_404_reason
from crawl.warc import FetchedPage, WarcWriter, header_pairs, warc_now

log = logging.getLogger(__name__)

# Signatures of non-HTML bodies that servers mislabel as text/html.
_BINARY_MAGIC = (
    b"%PDF-", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"\xff\xd8\xff", b"PK\x03\x04",
    b"\x1f\x8b", b"RIFF", b"OggS", b"ID3", b"\x00\x00\x01\x00", b"BM", b"\xd0\xcf\x11\xe0",
    b"wOFF", b"wOF2", b"\x7fELF", b"MZ",
)
# WHATWG MIME sniffing: tags that identify an HTML document when a body starts with them.
_HTML_OPENERS = (
    b"<!doctype html", b"<html", b"<head", b"<script", b"<iframe", b"<h1", b"<div", b"<font",
    b"<table", b"<a", b"<style", b"<title", b"<b", b"<body", b"<br", b"<p", b"<!--",
)
# WHATWG "binary data bytes": control characters that never occur in text.
_CONTROL_BYTE = re.compile(rb"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f]")


def looks_binary(body: bytes) -> bool:
    return body.startswith(_BINARY_MAGIC) or _CONTROL_BYTE.search(body, 0, 512) is not None


def looks_like_html(body: bytes) -> bool:
    """WHATWG-style sniff: after a BOM, whitespace and an XML declaration, an HTML tag."""
    head = body[:1024].lstrip(b"\xef\xbb\xbf").lstrip().lower()
    if head.startswith(b"<?xml"):
        head = head[head.find(b"?>") + 2:].lstrip() if b"?>" in head else b""
    for opener in _HTML_OPENERS:
        if head.startswith(opener) and head[len(opener):len(opener) + 1] in (b" ", b">", b"\t", b"\n", b"\r", b"-"):
            return True
    return False


def html_refusal(content_type: str, body: bytes, html_types: list[str], sniff_types: list[str]) -> str | None:
    """Why a 2xx response is not an HTML page (outcome `not_html`), or None if it is."""
    declared = content_type.split(";", 1)[0].strip().lower()
    if looks_binary(body):
        return f"binary body labelled {declared or 'without a type'}"
    if declared in html_types:
        return None
    if declared in sniff_types and looks_like_html(body):
        return None
    return f"content type {declared or '(none)'} is not HTML"


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Recorder:
    """Turns outcomes into WARC records and crawl-log rows; checkpoints; shows progress."""

    def __init__(self, warc: WarcWriter, crawl_log: CrawlLogWriter, total: int, flush_rows: int,
                 flush_seconds: float, progress: bool = True):
        self.warc = warc
        self.crawl_log = crawl_log
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.outcomes: Counter = Counter()
        self.bytes_ok = 0
        self.in_flight: set[str] = set()  # URLs started (`expect`) without an outcome yet: bounded by the backlog
        self._bar = tqdm(total=total, unit="url", desc="crawl", disable=not progress, mininterval=1.0, smoothing=0.1)
        self._last_postfix = 0.0

    def expect(self, url: str) -> None:
        """`url` is about to be crawled: `record` takes exactly one outcome for it."""
        self.in_flight.add(url)

    def record(self, row: dict, url: str, final_url: str, outcome: str, *, status: int | None = None,
               body_bytes: int = 0, started: float | None = None, redirects: list[str] = (),
               error: str | None = None, page: FetchedPage | None = None, source: str = "live",
               capture_time: datetime | None = None) -> None:
        if url not in self.in_flight:  # a second answer for one URL would break "exactly once"
            log.error("second outcome %s for %s ignored", outcome, url)
            return
        self.in_flight.remove(url)
        warc_file = warc_offset = None
        if page is not None:
            warc_file, warc_offset = self.warc.write(page)
            self.bytes_ok += len(page.body)
        self.crawl_log.append({
            "url": url, "final_url": final_url, "outcome": outcome, "http_status": status,
            "bytes": body_bytes, "fetch_seconds": time.time() - started if started else 0.0,
            "crawl_time": _now(), "redirects": list(redirects), "warc_file": warc_file,
            "warc_offset": warc_offset, "error": error, "source": source, "capture_time": capture_time,
            "first_created_utc": row.get("first_created_utc"),
        })
        self.outcomes[outcome] += 1
        self._bar.update(1)
        now = time.monotonic()
        if now - self._last_postfix > 1.0:
            self._last_postfix = now
            self._bar.set_postfix_str(" ".join(f"{outcome}={count}" for outcome, count in self.outcomes.most_common(6)), refresh=False)
        if len(self.crawl_log) >= self.flush_rows:
            self.checkpoint()

    def checkpoint(self) -> None:
        """WARC bytes first, then the log part that refers to them."""
        if len(self.crawl_log):
            self.warc.sync()
        self.crawl_log.flush()

    def checkpoint_if_due(self) -> None:
        if time.monotonic() - self.crawl_log.last_flush >= self.flush_seconds:
            self.checkpoint()

    def close(self) -> None:
        self.checkpoint()
        self.warc.close()
        self._bar.close()


class UrlTableSpider(scrapy.Spider):
    """Fetches each URL-table row once; no link following (WebText crawls only the linked pages)."""

    name = "webtext"

    def __init__(self, rows: list[dict], recorder: Recorder, html_types: list[str],
                 sniff_types: list[str], start_backlog: int, source: str = "live",
                 archive: ArchiveConfig | None = None, max_redirects: int = 0, archive_proxy: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.rows = rows
        self.recorder = recorder
        self.html_types = html_types
        self.sniff_types = sniff_types
        self.start_backlog = start_backlog
        self.source = source
        self.archive_config = archive
        self.max_redirects = max_redirects
        self.archive_proxy = archive_proxy
        self.archive: ArchiveClient | None = None  # set in from_crawler (it downloads through the engine)
        self.unfinished = 0  # requests yielded whose URL has no outcome yet

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        if spider.source != "live":
            spider.archive = ArchiveClient(spider.archive_config, spider.max_redirects,
                                           lambda request: crawler.engine.download_async(request), spider.archive_proxy)
        crawler.signals.connect(spider._opened, signal=signals.spider_opened)
        crawler.signals.connect(spider._closed, signal=signals.spider_closed)
        crawler.signals.connect(spider._reached_downloader, signal=signals.request_reached_downloader)
        return spider

    def _reached_downloader(self, request, spider=None):
        """fetch_seconds counts from the first attempt on the wire, not from queueing."""
        request.meta.setdefault("webtext_started", time.time())

    def _opened(self, spider):
        self._checkpoints = asyncio.get_running_loop().create_task(self._checkpoint_when_due())

    async def _checkpoint_when_due(self):
        """A quiet crawl (slow hosts, long delays) still checkpoints every flush_seconds."""
        while True:
            await asyncio.sleep(min(self.recorder.flush_seconds, 5.0))
            self.recorder.checkpoint_if_due()

    async def _closed(self, spider, reason):
        self._checkpoints.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._checkpoints
        self.recorder.close()

    async def start(self):
        """Yield requests lazily: only while fewer than `start_backlog` URLs are unfinished, so
        a huge URL table is never copied into memory as requests, yet the downloader-aware
        queue has enough different hosts to choose from. (A counter of our own: the
        scheduler's length is a sum over its per-host queues.)"""
        for row in self.rows:
            while self.unfinished >= self.start_backlog:
                await sleep(0.02)
            url = row["url"]
            self.recorder.expect(url)
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                self.recorder.record(row, url, url, "invalid_url", error="not an http(s) URL with a host")
                continue
            try:
                if self.source == "archive":
                    request = self.archive.cdx_request(url, callback=self.parse_archive, errback=self.failed,
                                                       meta={"row": row})
                else:
                    request = scrapy.Request(url, callback=self.parse, errback=self.failed,
                                             dont_filter=True, meta={"row": row})
            except ValueError as exc:
                self.recorder.record(row, url, url, "invalid_url", error=str(exc))
                continue
            self.unfinished += 1
            yield request

    def parse(self, response):
        self.unfinished -= 1
        request = response.request
        row = request.meta["row"]
        common = dict(status=response.status, body_bytes=len(response.body),
                      started=request.meta.get("webtext_started"), redirects=request.meta.get("redirect_urls", []))
        if not 200 <= response.status < 300:
            outcome = f"http_{response.status // 100}xx"
            return self._finish_live(row, response.url, outcome, error=f"HTTP {response.status}", **common)
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1")
        refusal = html_refusal(content_type, response.body, self.html_types, self.sniff_types)
        if refusal:
            self.recorder.record(row, row["url"], response.url, "not_html", error=refusal, **common)
            return
        if self.source == "live_then_archive":
            soft_404 = soft_404_reason(response.body)
            if soft_404:
                return self._finish_live(row, response.url, "soft_404", error=soft_404, **common)
        page = FetchedPage(
            source_url=row["url"], final_url=response.url, status=response.status,
            response_headers=header_pairs(response.headers), body=response.body,
            request_method=request.method, request_headers=header_pairs(request.headers),
            fetch_time=warc_now(), hops=list(request.meta.get(ChainRedirectMiddleware.REDIRECT_HOPS, ())),
            ip_address=str(response.ip_address) if response.ip_address else None,
            redirects=list(common["redirects"]), post_ids=list(row["post_ids"] or []),
            subreddits=list(row["subreddits"] or []), score=int(row["score"] or 0),
            first_created_utc=int(row["first_created_utc"] or 0),
        )
        self.recorder.record(row, row["url"], response.url, "ok", page=page, **common)

    def failed(self, failure):
        self.unfinished -= 1
        request = failure.request
        row = request.meta["row"]
        exc = failure.value
        error = f"{type(exc).__name__}: {exc}"[:500]
        started = request.meta.get("webtext_started")
        if self.source == "archive":  # the first CDX request failed
            self.recorder.record(row, row["url"], row["url"], "archive_error", started=started,
                                 error=f"CDX server unreachable: {error}"[:500], source="archive")
            return None
        return self._finish_live(row, request.url, outcome_of_exception(exc), started=started,
                                 redirects=request.meta.get("redirect_urls", []), error=error)

    def _finish_live(self, row: dict, final_url: str, outcome: str, *, error: str, **common):
        """Log a failed live fetch, or (live_then_archive, a recoverable outcome) return the
        coroutine that asks the archive instead; Scrapy awaits what a callback returns."""
        if self.source == "live_then_archive" and outcome in RECOVERABLE_OUTCOMES:
            return self._from_archive(row, live_failure=f"live {outcome}: {error}", started=common.get("started"))
        self.recorder.record(row, row["url"], final_url, outcome, error=error, **common)
        return None

    def parse_archive(self, response):
        """`crawl.source: archive`: the answer to a URL's first CDX request."""
        self.unfinished -= 1
        return self._from_archive(response.request.meta["row"], cdx_response=response,
                                  started=response.request.meta.get("webtext_started"))

    async def _from_archive(self, row: dict, *, live_failure: str | None = None, cdx_response=None,
                            started: float | None = None) -> None:
        """Look the row's URL up in the archive and log its one outcome (source `archive`)."""
        url = row["url"]
        self.unfinished += 1
        try:
            recovered = await self.archive.recover(url, cdx_response)
        except (ArchiveMissing, ArchiveError) as exc:
            error = f"{live_failure}; archive: {exc}" if live_failure else str(exc)
            self.recorder.record(row, url, url, exc.outcome, started=started, error=error[:1000], source="archive")
            return
        except Exception as exc:  # a defect here must still give the URL its one row
            log.exception("archive lookup of %s failed", url)
            self.recorder.record(row, url, url, "archive_error", started=started, source="archive",
                                 error=f"{type(exc).__name__}: {exc}"[:500])
            return
        finally:
            self.unfinished -= 1
        self._record_archived(row, recovered, live_failure, started)

    def _record_archived(self, row: dict, recovered: Recovered, live_failure: str | None, started: float | None) -> None:
        common = dict(status=recovered.status, body_bytes=len(recovered.body), started=started,
                      redirects=recovered.redirects, source="archive", capture_time=recovered.capture_time)
        content_type = header_value(recovered.headers, "Content-Type") or ""
        refusal = html_refusal(content_type, recovered.body, self.html_types, self.sniff_types)
        if refusal:
            error = f"{live_failure}; archive: {refusal}" if live_failure else refusal
            self.recorder.record(row, row["url"], recovered.final_url, "not_html", error=error, **common)
            return
        captured = recovered.capture_time.isoformat(timespec="microseconds").replace("+00:00", "Z")
        page = FetchedPage(
            source_url=row["url"], final_url=recovered.final_url, status=recovered.status,
            response_headers=recovered.headers, body=recovered.body, request_method="GET", request_headers=[],
            fetch_time=captured, ip_address=None, redirects=list(recovered.redirects), hops=recovered.hops,
            post_ids=list(row["post_ids"] or []), subreddits=list(row["subreddits"] or []),
            score=int(row["score"] or 0), first_created_utc=int(row["first_created_utc"] or 0),
            source="archive", archive=self.archive_config.kind, capture_time=captured.replace(".000000Z", "Z"),
            capture_url=recovered.capture_url,
        )
        self.recorder.record(row, row["url"], recovered.final_url, "ok", page=page, error=live_failure, **common)
