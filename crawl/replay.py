"""Replay server: serves a recorded sample web on 127.0.0.1 as an HTTP forward proxy.

The crawler is pointed at it as its HTTP proxy, so the real Scrapy downloader sends
absolute-form requests (`GET http://news.example/a/1.html HTTP/1.1`) and nothing leaves the
machine. Pages, redirects and faults (slow answers, oversized bodies, gzip bombs, flaky
503s ...) are declared in `web_dir/routes.json`; see sample/README.md for the format. The
command (`webtext replay`) is in crawl/cli.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import io
import json
import logging
import socket
import struct
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

# The crawl outcomes (docs/contracts.md) that a route's `expect` and `offsite` may name.
OUTCOMES = frozenset({
    "ok", "robots", "timeout", "too_large", "not_html", "http_4xx", "http_5xx", "dns",
    "blocked_address", "redirect_loop", "too_many_redirects", "connection",
})
GENERATORS = frozenset({"filler", "gzip_bomb"})
FAULTS = frozenset({"slow", "fail_first", "reset"})
_ROUTE_KEYS = frozenset({"status", "headers", "body", "generate", "fault", "expect", "note"})
_TOP_KEYS = frozenset({"version", "about", "source", "hosts", "routes", "offsite"})
_CHUNK = 64 * 1024


class RoutesError(ValueError):
    """routes.json is missing, not JSON, or declares something the server cannot serve."""


@dataclasses.dataclass(frozen=True)
class Route:
    """One URL of the sample web (key = scheme-less `host/path?query`)."""

    key: str
    status: int
    headers: tuple[tuple[str, str], ...]
    body: Path | None = None          # file under web_dir/pages/
    generate: dict | None = None      # body made on the fly (never stored)
    fault: dict | None = None         # misbehaviour before/instead of the normal answer


def _sorted_query(key: str) -> str:
    """`key` with its query parameters sorted, as URL canonicalisers (w3lib) write it."""
    base, sep, query = key.partition("?")
    return base + sep + "&".join(sorted(query.split("&"))) if sep else key


@dataclasses.dataclass(frozen=True)
class Routes:
    routes: dict[str, Route]
    robots: dict[str, str | None]     # host -> robots.txt text (None: 404)
    aliases: dict[str, str]           # extra host name -> served host

    @property
    def hosts(self) -> frozenset[str]:
        return frozenset(self.robots) | frozenset(self.aliases)

    @functools.cached_property
    def _by_sorted_query(self) -> dict[str, Route]:
        return {_sorted_query(key): route for key, route in self.routes.items()}

    def lookup(self, host: str, path_and_query: str) -> Route | None:
        """The route of host+path?query; like real servers, parameter order does not matter."""
        key = self.aliases.get(host, host) + path_and_query
        return self.routes.get(key) or self._by_sorted_query.get(_sorted_query(key))


def _fail(where: str, message: str) -> RoutesError:
    return RoutesError(f"{where}: {message}")


def _parse_route(key: str, spec, web_dir: Path, where: str) -> Route:
    here = f"{where}: route {key!r}"
    if not isinstance(spec, dict):
        raise _fail(here, "must be an object")
    unknown = set(spec) - _ROUTE_KEYS
    if unknown:
        raise _fail(here, f"unknown keys {sorted(unknown)} (allowed: {sorted(_ROUTE_KEYS)})")
    status = spec.get("status", 200)
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise _fail(here, f"status must be an HTTP status code, got {status!r}")
    headers = spec.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise _fail(here, "headers must map names to strings")
    if 300 <= status < 400 and "location" not in {h.lower() for h in headers}:
        raise _fail(here, f"a {status} redirect needs a Location header")
    body = generate = None
    if "body" in spec and "generate" in spec:
        raise _fail(here, "give either body or generate, not both")
    if "body" in spec:
        rel = spec["body"]
        pages = (web_dir / "pages").resolve()
        body = (pages / str(rel)).resolve()
        if not body.is_relative_to(pages):
            raise _fail(here, f"body {rel!r} escapes {pages}")
        if not body.is_file():
            raise _fail(here, f"body file {body} does not exist")
    if "generate" in spec:
        generate = spec["generate"]
        if not isinstance(generate, dict) or generate.get("kind") not in GENERATORS:
            raise _fail(here, f"generate.kind must be one of {sorted(GENERATORS)}")
        size_key = "bytes" if generate["kind"] == "filler" else "inflated_bytes"
        if not isinstance(generate.get(size_key), int) or generate[size_key] <= 0:
            raise _fail(here, f"generate.{size_key} must be a positive integer")
    fault = spec.get("fault")
    if fault is not None:
        if not isinstance(fault, dict) or fault.get("kind") not in FAULTS:
            raise _fail(here, f"fault.kind must be one of {sorted(FAULTS)}")
        if fault["kind"] == "slow" and not isinstance(fault.get("seconds"), (int, float)):
            raise _fail(here, "a slow fault needs seconds")
        if fault["kind"] == "fail_first":
            if not isinstance(fault.get("times"), int) or not isinstance(fault.get("status"), int):
                raise _fail(here, "a fail_first fault needs integer times and status")
    expect = spec.get("expect")  # for tests only (the outcome a crawl must log); checked, not served
    if expect is not None and expect not in OUTCOMES:
        raise _fail(here, f"expect {expect!r} is not a crawl outcome ({sorted(OUTCOMES)})")
    return Route(key, status, tuple(headers.items()), body, generate, fault)


def load_routes(web_dir) -> Routes:
    """Read and validate `web_dir/routes.json`; every problem is a RoutesError naming it."""
    web_dir = Path(web_dir)
    path = web_dir / "routes.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RoutesError(f"{path}: no such file (is {web_dir} a sample web directory?)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RoutesError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != 1:
        raise _fail(str(path), 'must be an object with "version": 1')
    if set(doc) - _TOP_KEYS:
        raise _fail(str(path), f"unknown top-level keys {sorted(set(doc) - _TOP_KEYS)} (allowed: {sorted(_TOP_KEYS)})")
    hosts = doc.get("hosts")
    if not isinstance(hosts, dict) or not hosts:
        raise _fail(str(path), '"hosts" must be a non-empty object')
    robots: dict[str, str | None] = {}
    aliases: dict[str, str] = {}
    for host, spec in hosts.items():
        if host != host.lower() or "/" in host or ":" in host:
            raise _fail(str(path), f"host {host!r} must be a lower-case name without port or path")
        if not isinstance(spec, dict) or set(spec) - {"robots", "aliases"}:
            raise _fail(str(path), f"host {host!r}: only 'robots' and 'aliases' are allowed")
        if not isinstance(spec.get("robots"), (str, type(None))):
            raise _fail(str(path), f"host {host!r}: robots must be text or null")
        robots[host] = spec.get("robots")
        for alias in spec.get("aliases", []):
            aliases[alias.lower()] = host
    routes_doc = doc.get("routes")
    if not isinstance(routes_doc, dict):
        raise _fail(str(path), '"routes" must be an object')
    routes: dict[str, Route] = {}
    for key, spec in routes_doc.items():
        host = key.split("/", 1)[0]
        if host not in robots or "/" not in key:
            raise _fail(str(path), f"route {key!r} must start with a declared host and a path")
        routes[key] = _parse_route(key, spec, web_dir, str(path))
    offsite = doc.get("offsite", {})  # for tests only, like a route's expect: checked, not served
    if not isinstance(offsite, dict) or not all(v in OUTCOMES for v in offsite.values()):
        raise _fail(str(path), '"offsite" must map URLs to crawl outcomes')
    return Routes(routes, robots, aliases)


@functools.lru_cache(maxsize=4)
def _gzip_bomb(inflated_bytes: int) -> bytes:
    """A small gzip stream that inflates to `inflated_bytes` of HTML whitespace (cached)."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(b"<html><body>")
        block = b" " * _CHUNK
        remaining = inflated_bytes
        while remaining > 0:
            gz.write(block[:remaining])
            remaining -= len(block)
    return out.getvalue()


def _filler_chunks(total: int) -> Iterator[bytes]:
    """`total` bytes of plausible HTML, generated so a multi-MB body never sits on disk."""
    head = b"<html><head><title>Very long page</title></head><body>\n"
    line = b"<p>This page keeps going and going, far past any sensible size.</p>\n"
    block = head + line * ((_CHUNK - len(head)) // len(line) + 1)
    sent = 0
    while sent < total:
        chunk = block[: min(len(block), total - sent)]
        sent += len(chunk)
        yield chunk


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """Clients that hang up (timeouts, size caps) are normal here; anything else is a bug."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("client %s went away", client_address)
        else:
            super().handle_error(request, client_address)


class ReplayServer:
    """A running replay proxy. Use `serve()` rather than building one directly."""

    def __init__(self, web_dir, host: str = "127.0.0.1", port: int = 0):
        self.web_dir = Path(web_dir)
        self.routes = load_routes(self.web_dir)
        self.hosts = self.routes.hosts
        self.request_log: list[tuple[str, str]] = []  # (method, absolute URL); appended under a lock
        self.connections = 0  # client connections accepted (keep-alive reuses one for many requests)
        self._lock = threading.Lock()
        self._hits: dict[str, int] = {}
        self.stopping = threading.Event()
        self._httpd = _QuietServer((host, port), _ReplayHandler)
        self._httpd.replay = self
        self.port = self._httpd.server_address[1]
        self.proxy_url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="replay-server", daemon=True)

    def start(self) -> "ReplayServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; sleeping handlers wake up at once so shutdown is quick."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def reset(self) -> None:
        """Forget per-route fault state (fail_first counters), the request log and connections."""
        with self._lock:
            self._hits.clear()
            self.request_log.clear()
            self.connections = 0

    def count_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def log_request(self, method: str, url: str) -> None:
        with self._lock:
            self.request_log.append((method, url))

    def hit(self, route: Route) -> int:
        """Count a request of `route`; return how many came before it."""
        with self._lock:
            seen = self._hits.get(route.key, 0)
            self._hits[route.key] = seen + 1
            return seen


class _ReplayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response has Content-Length or is chunked
    server_version = "webtext-replay/1"
    timeout = 60  # idle keep-alive connections are closed after this many seconds

    @property
    def replay(self) -> ReplayServer:
        return self.server.replay

    def setup(self):
        super().setup()
        self.replay.count_connection()

    def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self):
        self._answer(send_body=True)

    def do_HEAD(self):
        self._answer(send_body=False)

    def do_CONNECT(self):
        self._send_simple(501, "CONNECT tunnels are not supported; send absolute-form requests",
                          error="no-connect")

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send_simple(405, "only GET and HEAD are served", error="method")

    def _target(self) -> tuple[str, str, str]:
        """(scheme, lower-case host, path?query) from the absolute URI, else the Host header."""
        if "://" in self.path:
            parts = urlsplit(self.path)
        else:
            parts = urlsplit("http://" + (self.headers.get("Host") or "") + self.path)
        host = (parts.hostname or "").rstrip(".")
        return parts.scheme, host, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def _answer(self, send_body: bool) -> None:
        replay = self.replay
        scheme, host, target = self._target()
        replay.log_request(self.command, f"{scheme}://{host}{target}")
        served_host = replay.routes.aliases.get(host, host)
        if served_host not in replay.routes.robots:
            self._send_simple(502, f"unknown host {host!r}", error="unknown-host", send_body=send_body)
            return
        if target == "/robots.txt" and replay.routes.lookup(host, target) is None:
            robots = replay.routes.robots[served_host]
            if robots is None:
                self._send_simple(404, "no robots.txt", send_body=send_body)
            else:
                self._send(200, [("Content-Type", "text/plain; charset=utf-8")], robots.encode(), send_body)
            return
        route = replay.routes.lookup(host, target)
        if route is None:
            self._send_simple(404, f"no page {target}", send_body=send_body)
            return
        fault = route.fault or {}
        seen = replay.hit(route)
        if fault.get("kind") == "reset":
            self._reset_connection()
        elif fault.get("kind") == "slow" and replay.stopping.wait(fault["seconds"]):
            self.close_connection = True  # shutting down: no answer
        elif fault.get("kind") == "fail_first" and seen < fault["times"]:
            headers = list(fault.get("headers", {}).items())
            self._send_simple(fault["status"], "try again later", headers=headers, send_body=send_body)
        else:
            self._send_route(route, send_body)

    def _send_route(self, route: Route, send_body: bool) -> None:
        headers = list(route.headers)
        generate = route.generate
        if generate is None:
            body = route.body.read_bytes() if route.body else _default_body(route.status)
            self._send(route.status, headers, body, send_body)
        elif generate["kind"] == "gzip_bomb":
            body = _gzip_bomb(generate["inflated_bytes"])
            self._send(route.status, headers + [("Content-Encoding", "gzip")], body, send_body)
        else:
            self._stream(route.status, headers, generate["bytes"], generate.get("content_length", True), send_body)

    def _start(self, status: int, headers) -> None:
        self.send_response(status)
        if "content-type" not in {name.lower() for name, _ in headers}:
            headers = list(headers) + [("Content-Type", "text/html; charset=utf-8")]
        for name, value in headers:
            self.send_header(name, value)

    def _send(self, status: int, headers, body: bytes, send_body: bool) -> None:
        self._start(status, headers)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self._write(body)

    def _stream(self, status: int, headers, total: int, content_length: bool, send_body: bool) -> None:
        """Send `total` generated bytes, with Content-Length or chunked (size unknown upfront)."""
        self._start(status, headers)
        if content_length:
            self.send_header("Content-Length", str(total))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if not send_body:
            return
        for chunk in _filler_chunks(total):
            framed = chunk if content_length else b"%x\r\n%s\r\n" % (len(chunk), chunk)
            if self.replay.stopping.is_set() or not self._write(framed):
                self.close_connection = True
                return
        if not content_length:
            self._write(b"0\r\n\r\n")

    def _send_simple(self, status: int, message: str, headers=(), error: str | None = None,
                     send_body: bool = True) -> None:
        headers = list(headers) + ([("X-Replay-Error", error)] if error else [])
        self._send(status, headers, _default_body(status, message), send_body)

    def _write(self, data: bytes) -> bool:
        """Write to the client; False (and close) when it went away, as crawlers do on size caps."""
        try:
            self.wfile.write(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return False

    def _reset_connection(self) -> None:
        """Drop the connection with a TCP RST and no response at all."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


def _default_body(status: int, message: str = "") -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    text = f"<html><head><title>{status} {phrase}</title></head><body><h1>{status} {phrase}</h1>"
    return (text + (f"<p>{message}</p>" if message else "") + "</body></html>\n").encode()


@contextlib.contextmanager
def serve(web_dir, host: str = "127.0.0.1", port: int = 0) -> Iterator[ReplayServer]:
    """Serve `web_dir` on host:port (0 = any free port) for the duration of the block."""
    server = ReplayServer(web_dir, host, port).start()
    try:
        yield server
    finally:
        server.stop()

