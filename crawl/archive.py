"""Archive recovery: a dead link's page as a web archive captured it (`crawl.source`).

WebText's links were posted 2005-2017; many are gone today. With `crawl.source: archive` every
URL, and with `live_then_archive` every URL whose live outcome is in RECOVERABLE_OUTCOMES, is
looked up in a web archive (`crawl.archive`), in two steps:

1. **CDX lookup** (`cdx_url`): the captures of the URL inside the window
   [`after`, `before`). The latest HTTP 200 capture wins; with none, the latest redirect
   capture, whose target is then looked up in the archive the same way (never fetched live),
   up to `crawl.max_redirects` hops. Both answer forms are read: the Wayback CDX API's JSON
   (an array of rows, the first naming the fields) and pywb's / Common Crawl's NDJSON (one
   object per line). An empty answer means no captures (that is how both servers say it).
2. **The capture itself**:
   - `wayback`: `replay_url` with the capture's timestamp and URL, in Wayback's raw `id_`
     form: the original status line and body, Content-Type and Location as archived, the other
     original headers as `X-Archive-Orig-*` (restored to their names; the archive's own
     headers are dropped). The archive's own redirects to a nearby timestamp (a 3xx without a
     Memento-Datetime) are followed, up to 3.
   - `commoncrawl`: the byte range `offset`..`offset+length-1` of the row's WARC `filename`
     under `data_url`: one gzip member holding the WARC response record (read with warcio).

Outcomes: `archive_missing` (no 200 or redirect capture in the window, for the URL or a
redirect target) and `archive_error` (an answer that is HTML, not JSON, malformed or not 200;
the archive still answering 429/503 after the crawl's retries; a truncated capture; a capture
whose URL is not the one asked for; a redirect loop or too many hops inside the archive).

Politeness: every archive request goes through Scrapy's downloader in one download slot
(ARCHIVE_SLOT: one request at a time, 1/`requests_per_second` seconds apart, not adjusted by
AutoThrottle), with the crawl's retries and backoff (429/503, Retry-After) and the same
address guard as live fetches (AddressGuardMiddleware, GuardedResolver). robots.txt is not
applied to the archive's hosts: the CDX and replay endpoints are APIs meant for programs
(the archive's robots rules for its human-facing pages are not about them), and the archive
applies the original sites' exclusions itself. The operator's `crawl.proxy` is used for archive
requests; the `--replay` proxy (the offline sample web) is not.

Layer: crawl. The Scrapy glue (requests, downloads) is `ArchiveClient`; the rest are pure
functions (tests/crawl/test_archive.py runs them against a real pywb).
"""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode, urljoin, urlsplit

from scrapy import Request
from scrapy.http.request import NO_CALLBACK
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from crawl.config import ArchiveConfig
from crawl.warc import RedirectHop, header_pairs

# Live outcomes after which `live_then_archive` asks the archive (robots never: the site said no).
RECOVERABLE_OUTCOMES = frozenset({
    "dns", "http_4xx", "http_5xx", "timeout", "too_many_redirects", "redirect_loop", "soft_404",
})
ARCHIVE_SLOT = "webtext-archive"  # the one download slot of every archive request
MAX_ARCHIVE_REDIRECTS = 3  # an archive's own redirects (to the nearest timestamp) followed per capture
# Headers of a replayed or stored answer that describe its transfer, not the page.
_TRANSFER_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding"})
_ORIGINAL_PREFIX = "x-archive-orig-"
_REPLAY_PATH = re.compile(r"/\d{1,14}(?:[a-z]{2}_)?/(https?://.+)$")
_LINK_ORIGINAL = re.compile(r'<([^>]+)>\s*;\s*rel="?original"?')
_TIMESTAMP = re.compile(r"\d{4,14}")


class ArchiveMissing(Exception):
    """The archive has no usable capture in the window (outcome `archive_missing`)."""

    outcome = "archive_missing"


class ArchiveError(Exception):
    """The archive answered something unusable (outcome `archive_error`)."""

    outcome = "archive_error"


@dataclass(frozen=True)
class Capture:
    """One CDX row: a capture of `url` at `timestamp` (YYYYMMDDhhmmss)."""

    timestamp: str
    url: str
    status: int | None  # None: not an HTTP status ("-", e.g. a revisit or warcinfo row)
    filename: str | None = None  # commoncrawl: the WARC file and byte range of the record
    offset: int | None = None
    length: int | None = None

    @property
    def time(self) -> datetime:
        return capture_datetime(self.timestamp)


@dataclass
class Recovered:
    """An archived page, ready to become a FetchedPage (crawl/spider.py)."""

    final_url: str  # the URL asked for, or the last redirect target followed inside the archive
    status: int
    headers: list[tuple[str, str]]  # the original response headers, as archived
    body: bytes
    capture_time: datetime
    capture_url: str  # where the capture was fetched from (replay URL, or WARC file#offset)
    redirects: list[str] = field(default_factory=list)  # URLs before final_url
    hops: list[RedirectHop] = field(default_factory=list)  # their archived 3xx answers


def cdx_timestamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y%m%d%H%M%S")


def capture_datetime(timestamp: str) -> datetime:
    """A CDX timestamp (YYYY[MM[DD[hh[mm[ss]]]]]) as a UTC datetime; missing parts are the earliest."""
    padded = timestamp + "00000101000000"[len(timestamp):]
    return datetime.strptime(padded, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)


def warc_date(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cdx_query_url(config: ArchiveConfig, url: str) -> str:
    """The CDX request for `url`'s captures inside the window (`to` is inclusive, `before` not)."""
    params = {"url": url, "output": "json"}
    if config.after is not None:
        params["from"] = cdx_timestamp(config.after)
    if config.before is not None:
        params["to"] = cdx_timestamp(config.before - timedelta(seconds=1))
    return config.cdx_url + ("&" if "?" in config.cdx_url else "?") + urlencode(params)


def parse_cdx(body: bytes, content_type: str = "") -> list[Capture]:
    """The captures in a CDX answer: Wayback's JSON rows or NDJSON objects (ArchiveError if it
    is neither, e.g. an HTML error page); an empty answer has none."""
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ArchiveError("CDX answer is not UTF-8 text") from None
    if not text:
        return []
    if "html" in content_type.lower() or text.startswith("<"):
        raise ArchiveError(f"CDX answer is HTML, not JSON: {text[:80]!r}")
    try:
        if text.startswith("["):
            rows = json.loads(text)
            if not rows:
                return []
            if not all(isinstance(row, list) for row in rows):
                raise ValueError("expected an array of arrays")
            names = rows[0]
            records = [dict(zip(names, row)) for row in rows[1:]]
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [_capture(record) for record in records]
    except (ValueError, TypeError, KeyError) as exc:
        raise ArchiveError(f"malformed CDX answer ({exc}): {text[:80]!r}") from None


def _capture(record) -> Capture:
    if not isinstance(record, dict):
        raise ValueError(f"a row is not an object: {record!r:.60}")
    timestamp = str(record["timestamp"])
    url = record.get("url") or record["original"]
    if not _TIMESTAMP.fullmatch(timestamp) or not isinstance(url, str):
        raise ValueError(f"bad timestamp or url in {record!r:.80}")
    status = str(record.get("status", record.get("statuscode", "-")))
    optional = {key: record.get(key) for key in ("offset", "length")}
    return Capture(
        timestamp=timestamp, url=url, status=int(status) if status.isdigit() else None,
        filename=record.get("filename"),
        **{key: int(value) if value is not None else None for key, value in optional.items()},
    )


def resource_key(url: str) -> tuple[str, int | None, str, str]:
    """What makes two URLs the same archived resource, as CDX servers' SURT keys see it: the
    host without `www.` and case, the port unless default, the path and the sorted query; the
    scheme does not count."""
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.")
    port = None if parts.port in (None, 80, 443) else parts.port
    return host, port, parts.path or "/", "&".join(sorted(filter(None, parts.query.split("&"))))


def same_resource(a: str, b: str) -> bool:
    return resource_key(a) == resource_key(b)


def choose_capture(captures: list[Capture], url: str, after: datetime | None,
                   before: datetime | None) -> Capture | None:
    """The latest HTTP 200 capture of `url` in the window, else its latest redirect capture."""
    usable = [c for c in captures if c.status is not None and same_resource(c.url, url)
              and (after is None or c.time >= after) and (before is None or c.time < before)]
    for wanted in (lambda status: status == 200, lambda status: 300 <= status < 400):
        matching = [c for c in usable if wanted(c.status)]
        if matching:
            return max(matching, key=lambda c: c.timestamp)
    return None


def restore_wayback_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The original response headers of an `id_` replay: X-Archive-Orig-* under their own
    names, Content-Type and Location as replayed (Location unwrapped from the archive's
    replay form when the original is not given); the archive's own headers dropped."""
    originals = [(name[len(_ORIGINAL_PREFIX):], value) for name, value in headers
                 if name.lower().startswith(_ORIGINAL_PREFIX)]
    have = {name.lower() for name, _ in originals}
    kept = [(name, unwrap_replay_url(value) if name.lower() == "location" else value)
            for name, value in headers if name.lower() in ("content-type", "location") and name.lower() not in have]
    return [(name, value) for name, value in kept + originals if name.lower() not in _TRANSFER_HEADERS]


def unwrap_replay_url(url: str) -> str:
    """`http://archive/web/20170101000000id_/http://site/a` -> `http://site/a` (others unchanged)."""
    match = _REPLAY_PATH.search(url)
    return match[1] if match else url


def header_value(headers: list[tuple[str, str]], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers if key.lower() == wanted), None)


def wayback_capture(capture: Capture, status: int, headers: list[tuple[str, str]], body: bytes,
                    replay_url: str) -> Recovered:
    """An `id_` replay answer as the archived page (ArchiveError when it is of another URL)."""
    link = header_value(headers, "Link") or ""
    original = _LINK_ORIGINAL.search(link)
    if original and not same_resource(original[1], capture.url):
        raise ArchiveError(f"capture of a different URL: asked {capture.url}, the archive replayed {original[1]}")
    declared = header_value(headers, _ORIGINAL_PREFIX + "Content-Length") or ""
    if declared.isdigit() and len(body) < int(declared):  # a decoded body is never shorter
        raise ArchiveError(f"truncated capture: {len(body)} of the {declared} bytes the original declared, at {replay_url}")
    memento = header_value(headers, "Memento-Datetime")
    try:
        captured = parsedate_to_datetime(memento).astimezone(timezone.utc) if memento else capture.time
    except (TypeError, ValueError):
        captured = capture.time
    return Recovered(final_url=capture.url, status=status, headers=restore_wayback_headers(headers), body=body,
                     capture_time=captured, capture_url=replay_url)


def commoncrawl_capture(capture: Capture, data: bytes, location: str) -> Recovered:
    """The WARC record in `data` (one gzip member, `capture.length` bytes) as the archived page."""
    if len(data) < (capture.length or 0):
        raise ArchiveError(f"truncated capture: {len(data)} of {capture.length} bytes at {location}")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        raw = inflater.decompress(data)
    except zlib.error as exc:
        raise ArchiveError(f"capture at {location} is not a gzip member: {exc}") from None
    if not inflater.eof:
        raise ArchiveError(f"truncated capture: the gzip member at {location} ends early")
    try:
        record = next(iter(ArchiveIterator(io.BytesIO(raw))))
        body = record.content_stream().read()
    except (StopIteration, ArchiveLoadFailed, ValueError, EOFError, OSError) as exc:
        raise ArchiveError(f"capture at {location} is not a WARC record: {exc}") from None
    if record.rec_type != "response" or record.http_headers is None:
        raise ArchiveError(f"capture at {location} is a {record.rec_type} record, not a response")
    target = record.rec_headers.get_header("WARC-Target-URI") or ""
    if not same_resource(target, capture.url):
        raise ArchiveError(f"capture of a different URL: asked {capture.url}, the record at {location} is {target}")
    declared = int(record.rec_headers.get_header("Content-Length") or 0)
    if len(raw) < declared:
        raise ArchiveError(f"truncated capture: the record at {location} is cut short")
    try:
        captured = datetime.fromisoformat(record.rec_headers.get_header("WARC-Date").replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        captured = capture.time
    try:
        status = int(record.http_headers.get_statuscode())
    except (TypeError, ValueError):
        raise ArchiveError(f"capture at {location} has no HTTP status line") from None
    headers = [(name, value) for name, value in record.http_headers.headers if name.lower() not in _TRANSFER_HEADERS]
    return Recovered(final_url=capture.url, status=status, headers=headers, body=body,
                     capture_time=captured.astimezone(timezone.utc), capture_url=location)


Download = Callable[[Request], Awaitable]  # engine.download_async: a Request in, a Response out


class ArchiveClient:
    """Looks pages up in the configured archive through Scrapy's downloader (`download`)."""

    def __init__(self, config: ArchiveConfig, max_redirects: int, download: Download, proxy: str | None):
        self.config = config
        self.max_redirects = max_redirects
        self.download = download
        self.proxy = proxy

    def request(self, url: str, headers: dict[str, str] | None = None, **kwargs) -> Request:
        """A request to the archive: its own slot, no robots.txt, no redirect following, no
        AutoThrottle adjustment; the operator's proxy (never the --replay proxy)."""
        meta = {"download_slot": ARCHIVE_SLOT, "dont_obey_robotstxt": True, "dont_redirect": True,
                "autothrottle_dont_adjust_delay": True, "proxy": self.proxy, **kwargs.pop("meta", {})}
        return Request(url, headers=headers, meta=meta, dont_filter=True, **{"callback": NO_CALLBACK, **kwargs})

    def cdx_request(self, url: str, **kwargs) -> Request:
        return self.request(cdx_query_url(self.config, url), **kwargs)

    async def recover(self, url: str, cdx_response=None) -> Recovered:
        """The archived page of `url` (redirect captures followed inside the archive);
        ArchiveMissing or ArchiveError otherwise. `cdx_response`: the answer to
        `cdx_request(url)` when the caller already has it."""
        chain: list[str] = []
        hops: list[RedirectHop] = []
        current = url
        while True:
            if cdx_response is None:
                cdx_response = await self._get(self.cdx_request(current), "CDX server")
            _require_ok(cdx_response, "CDX server")
            content_type = (cdx_response.headers.get(b"Content-Type") or b"").decode("latin-1")
            capture = choose_capture(parse_cdx(cdx_response.body, content_type), current,
                                     self.config.after, self.config.before)
            cdx_response = None
            if capture is None:
                where = f" (redirect target of {chain[-1]})" if chain else ""
                raise ArchiveMissing(f"no HTTP 200 or redirect capture of {current}{where} in the window")
            page = await self._fetch(capture)
            location = header_value(page.headers, "Location")
            if not 300 <= page.status < 400 or not location:
                if page.status != 200:
                    raise ArchiveError(f"the capture of {current} answers HTTP {page.status}")
                page.final_url, page.redirects, page.hops = current, chain, hops
                return page
            target = urljoin(current, location)
            chain.append(current)
            hops.append(RedirectHop(url=current, status=page.status, response_headers=page.headers, body=page.body,
                                    request_method="GET", request_headers=[], fetch_time=warc_date(page.capture_time),
                                    ip_address=None))
            if target in chain:
                raise ArchiveError(f"redirect loop inside the archive back to {target}")
            if len(chain) > self.max_redirects:
                raise ArchiveError(f"more than {self.max_redirects} redirects inside the archive")
            current = target

    async def _fetch(self, capture: Capture) -> Recovered:
        if self.config.kind == "commoncrawl":
            return await self._fetch_warc_range(capture)
        return await self._fetch_replay(capture)

    async def _fetch_replay(self, capture: Capture) -> Recovered:
        replay = self.config.replay_url.replace("{timestamp}", capture.timestamp).replace("{url}", capture.url)
        for _ in range(MAX_ARCHIVE_REDIRECTS + 1):
            response = await self._get(self.request(replay), "replay server")
            headers = header_pairs(response.headers)
            location = header_value(headers, "Location")
            target = urljoin(replay, location) if location and 300 <= response.status < 400 else None
            if target is None or not is_archive_redirect(target, replay, capture.url, headers):
                break
            replay = target
        else:
            raise ArchiveError(f"more than {MAX_ARCHIVE_REDIRECTS} archive redirects replaying {capture.url}")
        if not 200 <= response.status < 400:
            raise ArchiveError(f"replay server answered HTTP {response.status} for {replay}")
        return wayback_capture(capture, response.status, headers, response.body, replay)

    async def _fetch_warc_range(self, capture: Capture) -> Recovered:
        if capture.filename is None or capture.offset is None or not capture.length:
            raise ArchiveError(f"CDX row of {capture.url} has no WARC filename/offset/length")
        location = self.config.data_url.rstrip("/") + "/" + capture.filename.lstrip("/")
        end = capture.offset + capture.length - 1
        response = await self._get(self.request(location, {"Range": f"bytes={capture.offset}-{end}"}), "data server")
        if response.status == 206:
            data = response.body
        elif response.status == 200:  # the server ignored Range and sent the whole file
            data = response.body[capture.offset:end + 1]
        else:
            raise ArchiveError(f"data server answered HTTP {response.status} for {location}")
        return commoncrawl_capture(capture, data, f"{location}#{capture.offset}")

    async def _get(self, request: Request, what: str):
        try:
            return await self.download(request)
        except Exception as exc:  # any failure to reach the archive (after retries) is an archive error
            raise ArchiveError(f"{what} unreachable: {type(exc).__name__}: {exc}"[:500]) from exc


def is_archive_redirect(target: str, replay: str, url: str, headers: list[tuple[str, str]]) -> bool:
    """Whether a 3xx replay answer is the archive's own redirect (to another timestamp of the
    capture), to be followed, rather than an archived redirect: it points at a replay URL on
    the same archive host, and carries no Memento-Datetime or names the same resource."""
    if urlsplit(target).hostname != urlsplit(replay).hostname or unwrap_replay_url(target) == target:
        return False
    return header_value(headers, "Memento-Datetime") is None or same_resource(unwrap_replay_url(target), url)


def _require_ok(response, what: str) -> None:
    if response.status != 200:
        raise ArchiveError(f"{what} answered HTTP {response.status} for {response.url}")

