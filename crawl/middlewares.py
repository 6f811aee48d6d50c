"""Scrapy components that make the crawler safe and polite, and name every failure.

Each refusal raises its own exception type, so `outcome_of_failure` can turn any failure that
reaches the spider into one crawl-log outcome without parsing messages.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import random
import socket
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from scrapy import signals
from scrapy.core.downloader.handlers._aiohttp import AiohttpDownloadHandler, _ClientResponse
from scrapy.core.downloader.handlers._base_streaming import BaseStreamingDownloadHandler
from scrapy.downloadermiddlewares.httpcompression import HttpCompressionMiddleware
from scrapy.downloadermiddlewares.redirect import RedirectMiddleware
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Headers
from scrapy.logformatter import LogFormatter
from scrapy.utils._compression import _DecompressionMaxSizeExceeded
from scrapy.utils.asyncio import sleep
from scrapy.utils.datatypes import LocalCache
from scrapy.utils.httpobj import urlparse_cached
from scrapy.utils.ssl import _make_ssl_context
from twisted.internet import defer


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
            s = crawler.settings
            proxy = s.get("WEBTEXT_PROXY")
            cls._per_crawler[crawler] = cls(
                dict(s.getdict("WEBTEXT_STATIC_HOSTS")), s.getbool("WEBTEXT_RESOLVE_DNS"),
                s.getbool("WEBTEXT_ALLOW_LOOPBACK"), s.getfloat("DNS_TIMEOUT"),
                urlsplit(proxy).hostname if proxy else None, frozenset(s.getlist("WEBTEXT_LOOPBACK_HOSTS")),
                s.getint("DNSCACHE_SIZE"), s.getint("WEBTEXT_DNS_THREADS", 20))
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
        if self.proxy:
            request.meta["proxy"] = self.proxy
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


class GuardedDownloadHandler(AiohttpDownloadHandler):
    """Scrapy's aiohttp download handler (asyncio, no Twisted reactor: about half the CPU per
    page of Scrapy's Twisted HTTP/1.1 handler here) with GuardedResolver on its connector.

    Also: the response headers are the raw bytes the server sent (what the WARC record stores),
    header lines up to 64 KiB (a page's giant Set-Cookie is not a failure), no environment
    proxies. Through a proxy, aiohttp pools kept-alive connections per target host.
    """

    experimental = False  # Scrapy's warning: our pinned Scrapy version is tested with it

    def __init__(self, crawler):
        BaseStreamingDownloadHandler.__init__(self, crawler)  # the session is built here instead
        self._ssl_context = _make_ssl_context(crawler.settings)
        self._resolver = GuardedResolver.for_crawler(crawler)
        connector = aiohttp.TCPConnector(
            resolver=self._resolver, local_addr=self._bind_address,
            limit=self._pool_size_total, limit_per_host=self._pool_size_per_host,
        )
        self._session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            response_class=_ClientResponse, trust_env=False, max_line_size=65536, max_field_size=65536,
            skip_auto_headers=("Accept", "Accept-Encoding", "Content-Type", "User-Agent"),
        )

    @staticmethod
    def _extract_headers(response: _ClientResponse) -> Headers:
        return Headers(list(response.raw_headers))

    async def close(self) -> None:
        await super().close()
        await self._resolver.close()


class QuietLogFormatter(LogFormatter):
    """Skips Scrapy's per-page "Crawled (200) ..." debug line without building it: every
    page's outcome is in the crawl log (`-v` uses Scrapy's own formatter)."""

    def crawled(self, request, response, spider):
        return None


# -- politeness -------------------------------------------------------------------------------

class _Unreachable:
    """Stands in for the parser of a host whose robots.txt could not be fetched."""

    def allowed(self, url, user_agent) -> bool:
        return False

    def crawl_delay(self, user_agent):
        return None


class RobotsMiddleware(RobotsTxtMiddleware):
    """Scrapy's robots.txt handling (cached per host) with a refusal of its own type.

    Unlike Scrapy (which then allows everything), a robots.txt that answers 5xx or cannot be
    fetched at all (timeout, connection error, after retries) disallows the whole host, as
    RFC 9309 §2.3.1.4 asks; a 4xx still means "no rules".
    """

    async def robot_parser(self, request):
        # Scrapy 2.19 hands one Deferred to every request that waits for a host's robots.txt;
        # only the first waiter receives the parser, later ones get None (= allow all). The
        # settled parser is stored in self._parsers, so read it from there.
        parser = await super().robot_parser(request)
        settled = self._parsers.get(urlparse_cached(request).netloc, parser)
        return parser if isinstance(settled, defer.Deferred) else settled

    def process_request_2(self, rp, request):
        if isinstance(rp, _Unreachable):
            raise RobotsDisallowed("robots.txt unreachable (RFC 9309: treated as disallow-all)")
        try:
            super().process_request_2(rp, request)
        except IgnoreRequest as exc:
            raise RobotsDisallowed(str(exc)) from exc

    async def _parse_robots(self, response, netloc, request):
        if response.status >= 500:
            self._settle(netloc, _Unreachable())
            return
        await super()._parse_robots(response, netloc, request)

    def _robots_error(self, exc, netloc):
        if isinstance(exc, IgnoreRequest):  # refused by our own address policy: no robots rules
            super()._robots_error(exc, netloc)
        else:
            self._settle(netloc, _Unreachable())

    def _settle(self, netloc, parser) -> None:
        waiting = self._parsers[netloc]
        self._parsers[netloc] = parser
        waiting.callback(parser)


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
        delay = getattr(robotparser, "rp", None) and robotparser.rp.crawl_delay(self.user_agent)
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
    """Scrapy's retry policy plus exponential backoff and Retry-After.

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
        wait = self._delay(request, retry_after(response.headers.get(b"Retry-After")))
        if wait is None:
            return response
        retry = self._retry(request, f"HTTP {response.status}")
        if retry is None:
            return response
        await sleep(wait)
        return retry

    async def process_exception(self, request, exception):
        if request.meta.get("dont_retry") or not isinstance(exception, self.exceptions_to_retry):
            return None
        retry = self._retry(request, exception)
        if retry is not None:
            await sleep(self._delay(request, None))
        return retry

    def _delay(self, request, asked: float | None) -> float | None:
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
    """Redirects with loop detection; every hop is a new request that bypasses the dupefilter.

    A hop carries no Referer, as a browser's would not: the start request had none, and a
    redirect keeps the referrer of the request it answers.
    """

    def handle_referer(self, request, response):
        request.headers.pop("Referer", None)

    def _engine_started(self):
        """Scrapy warns here that RefererMiddleware is off; handle_referer above replaces it."""

    def _redirect(self, redirected, request, reason):
        chain = [*request.meta.get("redirect_urls", []), request.url]
        if redirected.url in chain:
            raise RedirectLoop(f"redirect loop back to {redirected.url}")
        if len(chain) > self.max_redirect_times:
            raise TooManyRedirects(f"more than {self.max_redirect_times} redirects")
        redirected = super()._redirect(redirected, request, reason)
        redirected.dont_filter = True
        return redirected


class BoundedDecompressionMiddleware(HttpCompressionMiddleware):
    """Scrapy's decompression, which stops at DOWNLOAD_MAXSIZE (a gzip bomb), as `too_large`."""

    def process_response(self, request, response):
        try:
            return super().process_response(request, response)
        except IgnoreRequest as exc:
            if isinstance(exc.__cause__, _DecompressionMaxSizeExceeded):
                raise BodyTooLarge(str(exc)) from exc
            raise


# -- outcomes ----------------------------------------------------------------------------------

_OUTCOME_BY_EXCEPTION: list[tuple[tuple[type[BaseException], ...], str]] = [
    ((DownloadTimeoutError, asyncio.TimeoutError), "timeout"),
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
