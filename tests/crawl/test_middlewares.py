"""The connection-level address guard: GuardedResolver, and the download handler that uses it;
and the redirect hops ChainRedirectMiddleware keeps for the WARC.

AddressGuardMiddleware checks a host before its request is queued; the resolver checks again
when the connection is opened, so an answer that changes in between (DNS rebinding) or a name
the middleware never saw still cannot reach a refused address. Here the handler is driven
directly, without the middleware in front of it, against a real server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler

from crawl.middlewares import (
    AddressGuardMiddleware,
    BlockedAddress,
    ChainRedirectMiddleware,
    GuardedDownloadHandler,
    GuardedResolver,
    UnresolvableHost,
)
from crawl.replay import serve
from tests.crawl.test_crawler_support import PAGE, write_web


def resolver(**overrides) -> GuardedResolver:
    options = dict(static_hosts={"public.example": "93.184.215.14", "intranet.test": "10.20.30.40",
                                 "v6.example": "2606:4700::1111", "replay.example": "127.0.0.1"},
                   resolve_dns=False, allow_loopback=False, timeout=5.0)
    return GuardedResolver(**{**options, **overrides})


def resolve(guard: GuardedResolver, host: str):
    return asyncio.run(guard.resolve(host, 80))


def test_static_answers_are_returned_as_connectable_addresses():
    (answer,) = resolve(resolver(), "Public.Example.")
    assert (answer["host"], answer["port"], answer["family"]) == ("93.184.215.14", 80, socket.AF_INET)
    assert resolve(resolver(), "v6.example")[0]["family"] == socket.AF_INET6


def test_a_name_answering_with_a_refused_address_is_blocked():
    with pytest.raises(BlockedAddress, match="intranet.test resolves to 10.20.30.40 is not a public address"):
        resolve(resolver(), "intranet.test")
    with pytest.raises(BlockedAddress, match="loopback"):
        resolve(resolver(), "replay.example")  # loopback, not allowed
    with pytest.raises(BlockedAddress):  # private ranges stay refused with loopback allowed
        resolve(resolver(allow_loopback=True), "intranet.test")


def test_loopback_is_allowed_by_config_or_for_the_replay_servers_own_names():
    assert resolve(resolver(allow_loopback=True), "replay.example")[0]["host"] == "127.0.0.1"
    assert resolve(resolver(loopback_hosts=frozenset({"replay.example"})), "replay.example")[0]["host"] == "127.0.0.1"


def test_the_configured_proxy_is_trusted_wherever_it_lives():
    assert resolve(resolver(proxy_host="intranet.test"), "intranet.test")[0]["host"] == "10.20.30.40"


def test_dns_off_means_only_static_names_resolve():
    with pytest.raises(UnresolvableHost, match="DNS is off"):
        resolve(resolver(), "elsewhere.example")


def test_real_dns_answers_are_checked_too():
    # "localhost" is the one name the system resolver answers offline (and the test network
    # guard lets through): a real lookup through the thread pool, answered with loopback.
    with pytest.raises(BlockedAddress, match="localhost resolves to .* loopback"):
        resolve(resolver(resolve_dns=True), "localhost")
    answers = resolve(resolver(resolve_dns=True, allow_loopback=True), "localhost")
    assert answers and {a["host"] for a in answers} <= {"127.0.0.1", "::1"}


def _download(settings: dict, url: str):
    """One request through GuardedDownloadHandler alone (no middleware in front of it)."""
    async def run():
        crawler = get_crawler(settings_dict={"TWISTED_REACTOR_ENABLED": False, **settings})
        handler = GuardedDownloadHandler(crawler)
        try:
            return await handler.download_request(Request(url, meta={"download_timeout": 10}))
        finally:
            await handler.close()
    return asyncio.run(run())


def test_the_download_handler_connects_only_to_checked_addresses(tmp_path):
    web = write_web(tmp_path / "web", {"replay.example": {"robots": None}},
                    {"replay.example/a.html": {"body": "a.html"}}, {"a.html": PAGE % (b"a", b"a")})
    with serve(web) as server:
        port = server.port
        base = {"WEBTEXT_RESOLVE_DNS": False, "WEBTEXT_ALLOW_LOOPBACK": False}
        # Its name maps to the loopback address the server listens on, but loopback is refused:
        # the connection is never opened, whatever checked (or did not check) the host before.
        with pytest.raises(BlockedAddress):
            _download({**base, "WEBTEXT_STATIC_HOSTS": {"replay.example": "127.0.0.1"}},
                      f"http://replay.example:{port}/a.html")
        assert server.request_log == []
        # The same name as one of the replay server's own: the page is fetched, headers raw.
        response = _download({**base, "WEBTEXT_STATIC_HOSTS": {"replay.example": "127.0.0.1"},
                              "WEBTEXT_LOOPBACK_HOSTS": ["replay.example"]}, f"http://replay.example:{port}/a.html")
    assert response.status == 200 and response.body == PAGE % (b"a", b"a")
    assert str(response.ip_address) == "127.0.0.1"
    assert server.request_log == [("GET", "http://replay.example/a.html")]


def test_each_host_is_looked_up_once_even_when_asked_for_concurrently(monkeypatch):
    lookups = []
    real_getaddrinfo = socket.getaddrinfo

    def counting_getaddrinfo(host, *args, **kwargs):  # the real lookup, counted
        lookups.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting_getaddrinfo)
    guard = resolver(resolve_dns=True, allow_loopback=True)

    async def run():
        first = await asyncio.gather(*(guard.resolve("localhost", 80) for _ in range(5)))
        again = await guard.resolve("LOCALHOST.", 443)
        await guard.close()
        return first, again

    first, again = asyncio.run(run())
    assert lookups == ["localhost"]
    assert all(answers == first[0] for answers in first)
    assert {a["host"] for a in again} == {a["host"] for a in first[0]} and {a["port"] for a in again} == {443}


def test_the_middleware_and_the_download_handler_share_one_resolver():
    crawler = get_crawler(settings_dict={"TWISTED_REACTOR_ENABLED": False})

    async def build():
        handler = GuardedDownloadHandler(crawler)
        await handler.close()
        return handler

    handler = asyncio.run(build())
    assert AddressGuardMiddleware(crawler).resolver is handler.resolver is GuardedResolver.for_crawler(crawler)


def test_each_redirect_answer_is_kept_as_a_hop_of_the_next_request():
    crawler = get_crawler(settings_dict={"TWISTED_REACTOR_ENABLED": False, "WEBTEXT_MAX_REDIRECTS": 5,
                                         "WEBTEXT_MAX_REDIRECT_BODY_BYTES": 16})
    middleware = ChainRedirectMiddleware.from_crawler(crawler)
    hops_key = ChainRedirectMiddleware.REDIRECT_HOPS
    start = Request("http://a.example/start", headers={"User-Agent": "WebTextBot"}, meta={"row": "r"})
    moved = HtmlResponse("http://a.example/start", status=301, body=b"<html>301</html>", request=start,
                         headers=[(b"Location", b"/middle"), (b"Set-Cookie", b"a=1"), (b"Set-Cookie", b"b=2")],
                         ip_address=ipaddress.ip_address("192.0.2.9"))
    middle = middleware.process_response(start, moved)
    found = HtmlResponse("http://a.example/middle", status=302, body=b"", request=middle,
                         headers={"Location": "http://b.example/end", "Content-Encoding": "gzip"})
    end = middleware.process_response(middle, found)
    assert end.url == "http://b.example/end" and hops_key not in start.meta
    first, second = end.meta[hops_key]
    assert middle.meta[hops_key] == [first], "a later hop changed an earlier request's list"
    assert (first.url, first.status, first.body, first.ip_address, first.body_truncated) == (
        "http://a.example/start", 301, b"<html>301</html>", "192.0.2.9", False)
    assert first.response_headers == [("Location", "/middle"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
    assert first.request_method == "GET" and ("User-Agent", "WebTextBot") in first.request_headers
    assert first.fetch_time.endswith("Z") and first.fetch_time <= second.fetch_time
    assert (second.url, second.status, second.ip_address, second.body) == ("http://a.example/middle", 302, None, b"")
    assert ("Content-Encoding", "gzip") in second.response_headers
    page = HtmlResponse("http://b.example/end", status=200, body=b"<html></html>", request=end)
    assert middleware.process_response(end, page) is page  # not a redirect: no hop


def test_a_redirect_body_over_the_limit_is_kept_cut_and_marked():
    crawler = get_crawler(settings_dict={"TWISTED_REACTOR_ENABLED": False, "WEBTEXT_MAX_REDIRECTS": 5,
                                         "WEBTEXT_MAX_REDIRECT_BODY_BYTES": 16})
    middleware = ChainRedirectMiddleware.from_crawler(crawler)
    start = Request("http://a.example/start")
    moved = HtmlResponse("http://a.example/start", status=302, body=b"<html>" + b"x" * 5000, request=start,
                         headers={"Location": "/next"})
    (hop,) = middleware.process_response(start, moved).meta[ChainRedirectMiddleware.REDIRECT_HOPS]
    assert hop.body == b"<html>xxxxxxxxxx" and hop.body_truncated
