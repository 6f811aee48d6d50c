"""Scrapy components that make the crawler safe and polite, and name every failure.

Each refusal raises its own exception type, so `outcome_of_exception` can turn any failure that
reaches the spider into one crawl-log outcome without parsing messages. Only Scrapy's public
API is used (documented base classes, settings and signals; public methods overridden):
tests/crawl/test_crawler_components.py fails if anything private is imported or overridden.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import random
import socket
import ssl
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from scrapy import Request, signals
from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    NotConfigured,
    ResponseDataLossError,
    UnsupportedURLSchemeError,
)
from scrapy.http import Headers
from scrapy.http.request import NO_CALLBACK
from scrapy.logformatter import LogFormatter
from scrapy.responsetypes import responsetypes
from scrapy.utils.asyncio import sleep
from scrapy.utils.datatypes import LocalCache
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.misc import build_from_crawler, load_object

from crawl.warc import RedirectHop, header_pairs, warc_now

log = logging.getLogger(__name__)


class CrawlRefusal(IgnoreRequest):
    """Base of the refusals below; `outcome` is the crawl-log outcome it stands for."""

    outcome = "error"


class BlockedAddress(CrawlRefusal):
    outcome = "blocked_address"


class UnresolvableHost(CrawlRefusal):
    outcome = "dns"


class RobotsDisallowed(CrawlRefusal):
    outcome = "robots"


class BodyTooLarge(CrawlRefusal):
    outcome = "too_large"


class RedirectLoop(CrawlRefusal):
    outcome = "redirect_loop"


class TooManyRedirects(CrawlRefusal):
    outcome = "too_many_redirects"


# -- address policy -------------------------------------------------------------------------

def address_refusal(ip: str, allow_loopback: bool) -> str | None:
    """Why a connection to `ip` is refused, or None if it is a public address.

    Private, link-local, multicast, reserved, shared and unspecified ranges are never
    crawled; loopback only when allowed (tests and the offline replay).
    """
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return None if allow_loopback else f"{addr} is a loopback address"
    if addr.is_multicast or addr.is_reserved or addr.is_unspecified or not addr.is_global:
        return f"{addr} is not a public address"
    return None


def ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%")[0]))
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    """The resolver of every connection the crawler opens: a static host table first, DNS only
    if enabled, and every answer checked against the address policy, so that the connection
    itself (not just AddressGuardMiddleware's check before it) can never reach a refused
    address. IP literals never get here (aiohttp connects to them directly; the middleware has
    checked them).

    One instance per crawl (`for_crawler`), shared by the middleware and the download handler:
    each host is looked up once (answers are kept like Scrapy's DNS cache, up to DNSCACHE_SIZE
    hosts; concurrent lookups of one host share one), on a thread pool of its own sized for a
    crawl's many hosts rather than asyncio's default few threads.
    """

    _per_crawler: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def __init__(self, static_hosts: dict[str, str], resolve_dns: bool, allow_loopback: bool,
                 timeout: float, proxy_host: str | None = None, loopback_hosts=frozenset(),
                 cache_size: int = 10_000, dns_threads: int = 20):
        self.static_hosts = static_hosts
        self.resolve_dns = resolve_dns
        self.allow_loopback = allow_loopback
        self.timeout = timeout
        self.proxy_host = proxy_host
        self.loopback_hosts = loopback_hosts  # names served by the local replay server
        self._answers = LocalCache(limit=cache_size)  # host -> [(ip, family)]
        self._lookups: dict[str, asyncio.Future] = {}  # host -> lookup in flight
        self._dns_threads = dns_threads
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    def for_crawler(cls, crawler) -> GuardedResolver:
        if crawler not in cls._per_crawler:
            settings = crawler.settings
            proxy = settings.get("WEBTEXT_PROXY")
            cls._per_crawler[crawler] = cls(
                dict(settings.getdict("WEBTEXT_STATIC_HOSTS")), settings.getbool("WEBTEXT_RESOLVE_DNS"),
                settings.getbool("WEBTEXT_ALLOW_LOOPBACK"), settings.getfloat("DNS_TIMEOUT"),
                urlsplit(proxy).hostname if proxy else None, frozenset(settings.getlist("WEBTEXT_LOOPBACK_HOSTS")),
                settings.getint("DNSCACHE_SIZE"), settings.getint("WEBTEXT_DNS_THREADS", 20))
        return cls._per_crawler[crawler]

    async def resolve(self, host: str, port: int = 0, family=socket.AF_UNSPEC) -> list[ResolveResult]:
        name = host.lower().rstrip(".")
        answers = await self._lookup(name, host)
        if name != self.proxy_host:  # the operator's proxy is trusted; crawl targets are not
            allow_loopback = self.allow_loopback or name in self.loopback_hosts
            for ip, _ in answers:
                reason = address_refusal(ip, allow_loopback)
                if reason:
                    raise BlockedAddress(f"{host} resolves to {reason}")
        return [ResolveResult(hostname=host, host=ip, port=port, family=ip_family, proto=0,
                              flags=socket.AI_NUMERICHOST) for ip, ip_family in answers]

    async def _lookup(self, name: str, host: str) -> list[tuple[str, int]]:
        ip = self.static_hosts.get(name) or ip_literal(name)
        if ip:
            return [(ip, socket.AF_INET6 if ":" in ip else socket.AF_INET)]
        if not self.resolve_dns:
            raise UnresolvableHost(f"{host}: not in the static host table (DNS is off)")
        if name in self._answers:
            return self._answers[name]
        if name not in self._lookups:
            self._lookups[name] = asyncio.ensure_future(self._getaddrinfo(name))
        try:
            answers = await asyncio.shield(self._lookups[name])
        finally:
            self._lookups.pop(name, None)
        self._answers[name] = answers
        return answers

    async def _getaddrinfo(self, name: str) -> list[tuple[str, int]]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._dns_threads, thread_name_prefix="webtext-dns")
        lookup = functools.partial(socket.getaddrinfo, name, 0, type=socket.SOCK_STREAM)
        infos = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(self._executor, lookup),
                                       self.timeout)
        return list(dict.fromkeys((sockaddr[0], family) for family, _, _, _, sockaddr in infos))

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class AddressGuardMiddleware:
    """Resolve and check every request's host before anything is sent to it.

    Runs first in the chain, so refused and unresolvable hosts never get a robots.txt
    request either. Redirects come back through the scheduler, so every hop is checked.
    The verdict is kept per host (as long as the resolver keeps its answer), so the pages of
    a host after its first cost a dictionary lookup. Also routes requests through the
    configured proxy (the offline replay server).
    """

    def __init__(self, crawler):
        self.crawler = crawler
        self.allow_loopback = crawler.settings.getbool("WEBTEXT_ALLOW_LOOPBACK")
        self.proxy = crawler.settings.get("WEBTEXT_PROXY")
        self.resolver = GuardedResolver.for_crawler(crawler)
        # host -> None (may be fetched) or the refusal (class, message); lookup failures that
        # may be transient are not kept.
        self.verdicts = LocalCache(limit=crawler.settings.getint("DNSCACHE_SIZE"))

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_request(self, request):
        host = urlparse_cached(request).hostname or ""
        if host not in self.verdicts:
            self.verdicts[host] = await self._verdict(host)
        refusal = self.verdicts[host]
        if refusal is not None:
            kind, message = refusal
            raise kind(message)
        if self.proxy:  # archive requests bring their own (crawl/archive.py: never the --replay proxy)
            request.meta.setdefault("proxy", self.proxy)
        return None

    async def _verdict(self, host: str) -> tuple[type[CrawlRefusal], str] | None:
        literal = ip_literal(host)
        if literal:
            reason = address_refusal(literal, self.allow_loopback)
            return (BlockedAddress, f"{host}: {reason}") if reason else None
        try:
            await self.resolver.resolve(host)
        except CrawlRefusal as exc:
            return type(exc), str(exc)
        except Exception as exc:
            raise UnresolvableHost(f"{host}: {exc}") from exc
        return None


class _PeerRecordingResponse(aiohttp.ClientResponse):
    """Keeps the peer's address, which aiohttp can lose with the connection once the headers
    are read (a response without a body hands its connection back at once)."""

    peer_address: str | None = None

    async def start(self, connection):
        peer = connection.transport.get_extra_info("peername") if connection.transport else None
        self.peer_address = peer[0] if peer else None
        return await super().start(connection)


def _tls_context() -> ssl.SSLContext:
    """TLS as Scrapy's default: certificates are not verified (a crawler archives what a site
    serves, whatever its certificate)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT")
    return context


class GuardedDownloadHandler(BaseDownloadHandler):
    """HTTP and HTTPS over aiohttp on asyncio (no Twisted reactor: about half the CPU per page
    of Scrapy's Twisted HTTP/1.1 handler here), every connection resolved by GuardedResolver.

    The response headers are the raw bytes the server sent (what the WARC record stores);
    header lines may be up to 64 KiB (a page's giant Set-Cookie is not a failure); environment
    proxies are ignored (the `proxy` request meta key is used). A body beyond DOWNLOAD_MAXSIZE,
    declared or received, stops the download with DownloadCancelledError, and aiohttp errors
    become Scrapy's download exceptions, as in Scrapy's own handlers. It sends no
    headers_received/bytes_received signals (nothing here stops a download early). Through a
    proxy, aiohttp pools kept-alive connections per target host.
    """

    def __init__(self, crawler):
        super().__init__(crawler)
        settings = crawler.settings
        self.default_timeout = settings.getfloat("DOWNLOAD_TIMEOUT")
        self.default_max_size = settings.getint("DOWNLOAD_MAXSIZE")
        self.resolver = GuardedResolver.for_crawler(crawler)
        self.tls_context = _tls_context()
        connector = aiohttp.TCPConnector(
            resolver=self.resolver, limit=settings.getint("CONCURRENT_REQUESTS"),
            limit_per_host=settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN"),
        )
        self.session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            response_class=_PeerRecordingResponse, trust_env=False, max_line_size=65536, max_field_size=65536,
            skip_auto_headers=("Accept", "Accept-Encoding", "Content-Type", "User-Agent"),
        )

    async def download_request(self, request):
        timeout = request.meta.get("download_timeout", self.default_timeout)
        started = time.monotonic()
        try:
            async with self.session.request(
                request.method, request.url, data=request.body, headers=request.headers.to_tuple_list(),
                timeout=aiohttp.ClientTimeout(total=timeout), ssl=self.tls_context, allow_redirects=False,
                proxy=request.meta.get("proxy"),
            ) as answer:
                request.meta["download_latency"] = time.monotonic() - started  # AutoThrottle's input
                return await self._read(answer, request)
        except TimeoutError as exc:
            raise DownloadTimeoutError(f"Getting {request.url} took longer than {timeout} seconds.") from exc
        except (aiohttp.InvalidUrlClientError, aiohttp.NonHttpUrlClientError) as exc:
            raise UnsupportedURLSchemeError(str(exc)) from exc
        except aiohttp.ClientConnectorDNSError as exc:
            raise CannotResolveHostError(str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:
            raise DownloadConnectionRefusedError(str(exc)) from exc
        except aiohttp.ClientPayloadError as exc:  # a body cut short
            raise ResponseDataLossError(str(exc)) from exc
        except aiohttp.ClientError as exc:
            raise DownloadFailedError(str(exc)) from exc

    async def _read(self, answer: _PeerRecordingResponse, request):
        max_size = request.meta.get("download_maxsize", self.default_max_size)
        if max_size and answer.content_length and answer.content_length > max_size:
            raise _too_large(f"Expected to receive {answer.content_length}", max_size, request)
        chunks, received = [], 0
        async for chunk in answer.content.iter_any():
            received += len(chunk)
            if max_size and received > max_size:
                raise _too_large(f"Received {received}", max_size, request)
            chunks.append(chunk)
        body = b"".join(chunks)
        headers = Headers(list(answer.raw_headers))
        version = answer.version
        response_class = responsetypes.from_args(headers=headers, url=request.url, body=body)
        return response_class(
            url=request.url, status=answer.status, headers=headers, body=body,
            ip_address=ipaddress.ip_address(answer.peer_address) if answer.peer_address else None,
            protocol=f"HTTP/{version.major}.{version.minor}" if version else "HTTP/1.1",
        )

    async def close(self) -> None:
        await self.session.close()
        await self.resolver.close()


def _too_large(size: str, max_size: int, request) -> DownloadCancelledError:
    """What Scrapy's handlers raise (and log) when a body exceeds DOWNLOAD_MAXSIZE."""
    message = f"{size} bytes which is larger than download max size ({max_size}) in request {request}."
    log.warning(message)
    return DownloadCancelledError(message)


class QuietLogFormatter(LogFormatter):
    """Skips Scrapy's per-page "Crawled (200) ..." debug line without building it: every
    page's outcome is in the crawl log (`-v` uses Scrapy's own formatter)."""

    def crawled(self, request, response, spider):
        return None


# -- politeness -------------------------------------------------------------------------------

_UNREACHABLE = object()  # the rules of a host whose robots.txt could not be fetched: disallow all


class RobotsMiddleware:
    """robots.txt, fetched once per host ahead of its pages, cached and obeyed, with a refusal
    of its own type. In place of Scrapy's RobotsTxtMiddleware (switched off), which differs:

    - a robots.txt that answers 5xx or cannot be fetched at all (timeout, connection error,
      after retries) disallows the whole host, as RFC 9309 §2.3.1.4 asks, where Scrapy allows
      everything; a 4xx still means "no rules";
    - every request that waits for a host's robots.txt gets its rules (Scrapy 2.19 hands them
      to the first waiter only; the others are allowed everything).

    Parsing (ROBOTSTXT_PARSER), the user agent matched (ROBOTSTXT_USER_AGENT) and the
    robots_parsed signal are Scrapy's.
    """

    priority = 1000  # robots.txt requests go ahead of pages, as with Scrapy's middleware

    def __init__(self, crawler):
        settings = crawler.settings
        if not settings.getbool("ROBOTSTXT_OBEY"):
            raise NotConfigured
        self.crawler = crawler
        self.user_agent = settings.get("ROBOTSTXT_USER_AGENT") or settings.get("USER_AGENT")
        self.parser_class = load_object(settings.get("ROBOTSTXT_PARSER"))
        # host:port -> its parser, _UNREACHABLE, None (no rules: everything allowed), or a
        # future while its robots.txt is being fetched.
        self.rules: dict[str, object] = {}

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_request(self, request):
        if request.meta.get("dont_obey_robotstxt"):
            return None
        rules = await self._rules_for(request)
        if rules is _UNREACHABLE:
            raise RobotsDisallowed("robots.txt unreachable (RFC 9309: treated as disallow-all)")
        if rules is not None and not rules.allowed(request.url, self.user_agent):
            raise RobotsDisallowed("Forbidden by robots.txt")
        return None

    async def _rules_for(self, request):
        netloc = urlparse_cached(request).netloc
        if netloc not in self.rules:
            fetching = asyncio.get_running_loop().create_future()
            self.rules[netloc] = fetching
            rules = await self._fetch(request)
            self.rules[netloc] = rules
            fetching.set_result(rules)
            return rules
        rules = self.rules[netloc]
        if isinstance(rules, asyncio.Future):
            return await asyncio.shield(rules)  # a waiter cancelled must not cancel the fetch
        return rules

    async def _fetch(self, request):
        url = urlparse_cached(request)
        robots_request = Request(f"{url.scheme}://{url.netloc}/robots.txt", priority=self.priority,
                                 meta={"dont_obey_robotstxt": True}, callback=NO_CALLBACK)
        try:
            response = await self.crawler.engine.download_async(robots_request)
            if response.status >= 500:
                return _UNREACHABLE
            rules = build_from_crawler(self.parser_class, self.crawler, response.body)
            await self.crawler.signals.send_catch_log_async(signal=signals.robots_parsed, robotparser=rules,
                                                            request=request)
            return rules
        except IgnoreRequest:  # refused by our own address policy: no rules (its pages are refused too)
            return None
        except Exception as exc:
            log.warning("robots.txt of %s could not be fetched (%s: %s): the host counts as disallowed",
                        url.netloc, type(exc).__name__, exc)
            return _UNREACHABLE


class CrawlDelay:
    """Extension: honour robots.txt Crawl-delay (capped) as a floor on the host's delay.

    Connected after AutoThrottle, so the floor is re-applied after every adjustment; the
    per-response hook is connected only once some host asks for a delay.
    """

    def __init__(self, crawler):
        self.crawler = crawler
        self.user_agent = crawler.settings.get("ROBOTSTXT_USER_AGENT") or crawler.settings.get("USER_AGENT")
        self.max_delay = crawler.settings.getfloat("WEBTEXT_MAX_CRAWL_DELAY")
        self.floors: dict[str, float] = {}
        crawler.signals.connect(self._robots_parsed, signal=signals.robots_parsed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def _robots_parsed(self, robotparser, request):
        delay = robotparser.crawl_delay(self.user_agent)
        if not delay:
            return
        if not self.floors:
            self.crawler.signals.connect(self._response_downloaded, signal=signals.response_downloaded)
        key = self.crawler.engine.downloader.get_slot_key(request)
        self.floors[key] = min(float(delay), self.max_delay)
        self._apply(key)

    def _response_downloaded(self, response, request, spider=None):
        key = request.meta.get("download_slot")
        if key in self.floors:
            self._apply(key)

    def _apply(self, key):
        slot = self.crawler.engine.downloader.slots.get(key)
        if slot is not None:
            slot.delay = max(slot.delay, self.floors[key])


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry policy (RETRY_TIMES, RETRY_HTTP_CODES, RETRY_EXCEPTIONS, the `dont_retry`
    and `max_retry_times` meta keys) plus exponential backoff and Retry-After.

    The wait happens inside the downloader (it holds one of CONCURRENT_REQUESTS while
    sleeping), so it is capped by retry_max_delay; a server asking for longer is given up on.
    """

    def __init__(self, settings):
        super().__init__(settings)
        self.backoff_base = settings.getfloat("WEBTEXT_RETRY_BACKOFF_BASE")
        self.max_delay = settings.getfloat("WEBTEXT_RETRY_MAX_DELAY")

    async def process_response(self, request, response):
        if request.meta.get("dont_retry") or response.status not in self.retry_http_codes:
            return response
        wait = self.wait_seconds(request, retry_after(response.headers.get(b"Retry-After")))
        if wait is None:
            return response
        retry = get_retry_request(request, spider=self.crawler.spider, reason=f"HTTP {response.status}")
        if retry is None:
            return response
        await sleep(wait)
        return retry

    async def process_exception(self, request, exception):
        if request.meta.get("dont_retry") or not isinstance(exception, self.exceptions_to_retry):
            return None
        retry = get_retry_request(request, spider=self.crawler.spider, reason=exception)
        if retry is not None:
            await sleep(self.wait_seconds(request, None))
        return retry

    def wait_seconds(self, request, asked: float | None) -> float | None:
        """Backoff before the next attempt, at least what the server `asked` (Retry-After);
        None when it asked for more than retry_max_delay."""
        attempt = request.meta.get("retry_times", 0) + 1
        backoff = self.backoff_base * 2 ** (attempt - 1) * random.uniform(0.75, 1.25)
        if asked is not None and asked > self.max_delay:
            return None
        return min(max(backoff, asked or 0.0), self.max_delay)


def retry_after(value: bytes | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


# -- redirects and size limits ---------------------------------------------------------------

class ChainRedirectMiddleware(RedirectMiddleware):
    """Scrapy's redirects, plus loop detection and a hop limit of our own
    (WEBTEXT_MAX_REDIRECTS); every hop is a new request that bypasses the dupefilter.

    Scrapy's own limit (REDIRECT_MAX_TIMES) is set one higher, so that a loop is named as one
    even when it closes on the last allowed hop. A hop carries no Referer, as a browser's
    would not: the start request had none, and a redirect keeps the referrer of the request it
    answers.

    Each redirect answer followed is kept, as a `crawl.warc.RedirectHop`, in the next request's
    meta[REDIRECT_HOPS] (a new list per hop: Scrapy copies meta shallowly), so the WARC holds
    every hop's own request and 3xx response. It runs before decompression, so a hop's body is
    stored as received, up to WEBTEXT_MAX_REDIRECT_BODY_BYTES (what a request carries until its
    page is written stays small, whatever a server puts into its redirects).
    """

    REDIRECT_HOPS = "webtext_redirect_hops"

    def __init__(self, settings):
        super().__init__(settings)
        self.max_hops = settings.getint("WEBTEXT_MAX_REDIRECTS")
        self.max_hop_body = settings.getint("WEBTEXT_MAX_REDIRECT_BODY_BYTES")

    @classmethod
    def from_crawler(cls, crawler):
        # RedirectMiddleware.from_crawler also connects a check for Scrapy's RefererMiddleware,
        # which warns when there is none; none runs here, and handle_referer replaces it.
        middleware = cls(crawler.settings)
        middleware.crawler = crawler
        return middleware

    def handle_referer(self, request, response):
        request.headers.pop("Referer", None)

    def process_response(self, request, response):
        redirected = super().process_response(request, response)
        if not isinstance(redirected, Request):
            return redirected
        chain = redirected.meta["redirect_urls"]  # every URL before this hop, the start URL first
        if redirected.url in chain:
            raise RedirectLoop(f"redirect loop back to {redirected.url}")
        if len(chain) > self.max_hops:
            raise TooManyRedirects(f"more than {self.max_hops} redirects")
        redirected.dont_filter = True
        hop = RedirectHop(
            url=request.url, status=response.status, response_headers=header_pairs(response.headers),
            body=response.body[:self.max_hop_body], request_method=request.method,
            request_headers=header_pairs(request.headers), fetch_time=warc_now(),
            ip_address=str(response.ip_address) if response.ip_address else None,
            body_truncated=len(response.body) > self.max_hop_body,
        )
        redirected.meta[self.REDIRECT_HOPS] = [*request.meta.get(self.REDIRECT_HOPS, ()), hop]
        return redirected


class BoundedDecompressionMiddleware(HttpCompressionMiddleware):
    """Scrapy's decompression, which drops a body that inflates beyond DOWNLOAD_MAXSIZE (a gzip
    bomb) with an IgnoreRequest, the only one it raises: that one is `too_large`."""

    def process_response(self, request, response):
        try:
            return super().process_response(request, response)
        except IgnoreRequest as exc:
            raise BodyTooLarge(str(exc)) from exc


# -- outcomes ----------------------------------------------------------------------------------

_OUTCOME_BY_EXCEPTION: list[tuple[tuple[type[BaseException], ...], str]] = [
    ((DownloadTimeoutError, TimeoutError), "timeout"),
    ((DownloadCancelledError,), "too_large"),  # the download handler's DOWNLOAD_MAXSIZE stop
    ((CannotResolveHostError,), "dns"),
    ((DownloadConnectionRefusedError, DownloadFailedError, ResponseDataLossError, OSError), "connection"),
]


def outcome_of_exception(exc: BaseException) -> str:
    """The crawl-log outcome for a failed request (`error` if nothing more specific fits)."""
    if isinstance(exc, CrawlRefusal):
        return exc.outcome
    for types, outcome in _OUTCOME_BY_EXCEPTION:
        if isinstance(exc, types):
            return outcome
    return "error"
