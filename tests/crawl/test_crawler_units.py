"""The crawler's pure pieces: address policy, HTML sniffing, Retry-After, sharding (the WARC
writer's are in test_warc.py)."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from crawl.config import CrawlConfig
from crawl.middlewares import address_refusal, retry_after
from crawl.spider import html_refusal, looks_like_html
from crawl.url_table import Shard

HTML_TYPES = CrawlConfig().html_content_types
SNIFF_TYPES = CrawlConfig().sniff_content_types


@pytest.mark.parametrize("ip", [
    "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
    "240.0.0.1", "255.255.255.255", "192.0.2.1", "fe80::1", "fc00::1", "ff02::1", "::", "::ffff:10.0.0.1",
])
def test_non_public_addresses_are_refused_even_with_loopback_allowed(ip):
    assert address_refusal(ip, allow_loopback=True)
    assert address_refusal(ip, allow_loopback=False)


@pytest.mark.parametrize("ip", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_only_when_allowed(ip):
    assert address_refusal(ip, allow_loopback=False)
    assert address_refusal(ip, allow_loopback=True) is None


@pytest.mark.parametrize("ip", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(ip):
    assert address_refusal(ip, allow_loopback=False) is None


@pytest.mark.parametrize("content_type,body,ok", [
    ("text/html; charset=utf-8", b"<!doctype html><p>x</p>", True),
    ("application/xhtml+xml", b"<?xml version='1.0'?><html xmlns='x'></html>", True),
    ("TEXT/HTML", b"no markup but labelled html", True),
    ("text/html", b"%PDF-1.7 ...", False),
    ("text/html", b"\x89PNG\r\n\x1a\n....", False),
    ("text/html", b"\x1f\x8b\x08\x00gzip-in-disguise", False),
    ("application/octet-stream", b"\xef\xbb\xbf  <!DOCTYPE HTML><html>", True),
    ("application/octet-stream", b"<?xml version='1.0'?>\n<html><body>x</body></html>", True),
    ("application/octet-stream", b"PK\x03\x04 zip archive", False),
    ("", b"<html><head><title>t</title></head></html>", True),
    ("", b"<htmlfoo>not a tag we know", False),
    ("text/plain", b"plain words only", False),
    ("application/pdf", b"<html>even if it looks like html</html>", False),
    ("image/png", b"\x89PNG", False),
])
def test_html_allowlist_and_sniffing(content_type, body, ok):
    assert (html_refusal(content_type, body, HTML_TYPES, SNIFF_TYPES) is None) == ok


def test_sniffer_needs_a_tag_boundary():
    assert looks_like_html(b"<p>para</p>") and looks_like_html(b"<a href=x>")
    assert not looks_like_html(b"<pre>") and not looks_like_html(b"<abbr>")


def test_retry_after_parses_seconds_and_http_dates_and_ignores_garbage():
    assert retry_after(b"7") == 7.0
    assert 25 <= retry_after(formatdate(__import__("time").time() + 30, usegmt=True).encode()) <= 31
    assert retry_after(b"soon") is None and retry_after(None) is None and retry_after(b"") is None


@pytest.mark.parametrize("text", ["", "1", "2/2", "-1/2", "a/b", "1/0", "0/0", "1/2/3", "0.5/2"])
def test_bad_shard_specs_are_refused(text):
    with pytest.raises(ValueError, match="--shard"):
        Shard.parse(text)


def test_shards_partition_url_keys_deterministically():
    keys = [f"site{i % 7}.example/p/{i}" for i in range(2000)]
    shards = [Shard.parse(f"{i}/3") for i in range(3)]
    owners = [[s.index for s in shards if s.owns(k)] for k in keys]
    assert all(len(o) == 1 for o in owners)
    sizes = [sum(o == [i] for o in owners) for i in range(3)]
    assert min(sizes) > 550, sizes
    assert Shard.parse("1/3").owns(keys[0]) == Shard(1, 3).owns(keys[0])
    assert Shard.parse("0/1").tag == "00000-of-00001"


def test_config_rejects_a_static_host_that_is_not_an_ip():
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        CrawlConfig(static_hosts={"intranet.test": "not-an-ip"})
    assert CrawlConfig(static_hosts={"Intranet.Test.": "10.0.0.9"}).static_hosts == {"intranet.test": "10.0.0.9"}

