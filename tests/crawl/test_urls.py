"""URL normalisation, dedup keys and host rules (crawl/urls.py) as table tests."""

import pytest

from crawl.config import HarvestConfig
from crawl.urls import (
    TrackingParams,
    domain,
    extension_of,
    host_in,
    is_private_host,
    is_wikipedia,
    normalize,
    url_key,
)


@pytest.mark.parametrize("raw, expected", [
    # Reddit's HTML escaping is undone, and only it: `&sect` is not an entity in a URL.
    ("http://a.example/x?b=1&amp;c=2", "http://a.example/x?b=1&c=2"),
    ("http://a.example/x?story=s&amp;section=local", "http://a.example/x?section=local&story=s"),
    ("http://a.example/x?story=s&section=local", "http://a.example/x?section=local&story=s"),
    # host lower-cased, default ports stripped, other ports kept, empty path -> "/"
    ("HTTP://WWW.Example.COM", "http://www.example.com/"),
    ("http://example.com:80/a", "http://example.com/a"),
    ("https://example.com:443/a", "https://example.com/a"),
    ("https://example.com:80/a", "https://example.com:80/a"),
    ("http://example.com:8080", "http://example.com:8080/"),
    ("http://example.com./a", "http://example.com/a"),
    # fragments and tracking parameters go; real parameters stay (sorted, w3lib canonical form)
    ("http://example.com/a#comments", "http://example.com/a"),
    ("http://example.com/a?utm_source=tw&utm_medium=social&id=7&fbclid=IwAR0&gclid=x",
     "http://example.com/a?id=7"),
    ("http://example.com/a?UTM_Campaign=x&b=2", "http://example.com/a?b=2"),
    ("http://example.com/a?ref=main", "http://example.com/a?ref=main"),
    # IDN hosts are IDNA-encoded, non-ASCII paths percent-encoded
    ("http://bücher.example/straße", "http://xn--bcher-kva.example/stra%C3%9Fe"),
    ("http://BÜCHER.example/", "http://xn--bcher-kva.example/"),
    ("http://a.example/%7euser/a%2fb", "http://a.example/~user/a%2Fb"),
    ("http://a.example/a b", "http://a.example/a%20b"),
    ("  http://a.example/x  ", "http://a.example/x"),
    # credentials are dropped, IPv6 literals keep their brackets
    ("http://user:pw@a.example/", "http://a.example/"),
    ("http://[2001:db8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
    # unusable
    ("ftp://a.example/file", None),
    ("mailto:someone@a.example", None),
    ("javascript:alert(1)", None),
    ("a.example/no-scheme", None),
    ("http://", None),
    ("http:///path-only", None),
    ("http://exa mple.com/", None),
    ("http://a..example/", None),
    ("http://-bad-.example/", None),
    ("http://single-label/", None),
    ("http://a.example:99999/", None),
    ("http://a.example:port/", None),
    ("", None),
    (None, None),
    (17, None),
])
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_url_key_merges_scheme_and_www_variants():
    variants = [
        "http://www.example.com/story?id=1&utm_source=x",
        "https://example.com/story?id=1#top",
        "HTTPS://WWW.EXAMPLE.COM:443/story?id=1&amp;fbclid=abc",
    ]
    assert {url_key(v) for v in variants} == {"example.com/story?id=1"}
    assert url_key("http://www2.example.com/") == "www2.example.com/"  # only `www.` merges
    assert url_key("http://example.com/a") != url_key("http://example.com/a/")
    with pytest.raises(ValueError, match="not a usable"):
        url_key("ftp://example.com/")


def test_domain():
    assert domain("http://WWW.News.BBC.co.uk/x") == "news.bbc.co.uk"
    assert domain("https://bücher.example/") == "xn--bcher-kva.example"
    assert domain("http://online.wsj.com/a") == "online.wsj.com"
    with pytest.raises(ValueError):
        domain("mailto:x@example.com")


def test_tracking_params_from_config():
    custom = TrackingParams(["sid", "ref_*"])
    assert normalize("http://a.example/?sid=1&ref_src=t&utm_source=x", custom) == "http://a.example/?utm_source=x"


@pytest.mark.parametrize("url, expected", [
    ("https://en.wikipedia.org/wiki/Python", True),
    ("https://en.m.wikipedia.org/wiki/Python", True),
    ("http://de.wikipedia.org/wiki/B%C3%BCcher", True),
    ("https://ja.wikipedia.org/wiki/X", True),
    ("https://EN.WIKIPEDIA.ORG./wiki/X", True),
    ("https://commons.wikimedia.org/wiki/File:X.jpg", True),
    ("https://www.wikidata.org/wiki/Q42", True),
    ("https://en.wiktionary.org/wiki/word", True),
    ("https://en.wikibooks.org/wiki/X", True),
    ("https://species.wikimedia.org/wiki/X", True),
    ("https://www.wikiwand.com/en/Python", True),
    ("https://www.wikizero.com/en/Python", True),
    ("https://everybodywiki.com/Page", True),
    ("https://notwikipedia.org/wiki/X", False),
    ("https://wikipedia.org.evil.example/", False),
    ("https://fandom.com/wiki/X", False),
    ("not a url", False),
])
def test_is_wikipedia(url, expected):
    assert is_wikipedia(url) is expected


def test_is_wikipedia_honours_a_config_list():
    assert is_wikipedia("http://wikimirror.example/wiki/X", ["wikimirror.example"])
    assert not is_wikipedia("http://en.wikipedia.org/wiki/X", ["wikimirror.example"])


@pytest.mark.parametrize("host, expected", [
    ("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.1.1", True),
    ("169.254.169.254", True), ("100.64.0.1", True), ("0.0.0.0", True), ("224.0.0.1", True),
    ("240.0.0.1", True), ("255.255.255.255", True),
    ("[::1]", True), ("::1", True), ("[fe80::1]", True), ("[fc00::1]", True), ("[ff02::1]", True),
    ("[::ffff:127.0.0.1]", True),
    ("2130706433", True), ("0x7f.1", True), ("127.1", True), ("017700000001", True),  # legacy forms
    ("localhost", True), ("LOCALHOST.", True), ("api.localhost", True),
    ("8.8.8.8", False), ("93.184.216.34", False), ("[2606:4700::1111]", False),
    ("example.com", False), ("127.0.0.1.example.com", False), ("", False),
])
def test_is_private_host(host, expected):
    assert is_private_host(host) is expected


def test_host_in_matches_subdomains_only():
    domains = frozenset(HarvestConfig().blocked_domains)
    assert host_in("i.imgur.com", domains)
    assert host_in("m.youtube.com", domains)
    assert host_in("v.redd.it", domains)
    assert host_in("x.com", domains)
    assert not host_in("notimgur.com", domains)
    assert not host_in("box.com", domains)  # x.com must not match by substring
    assert not host_in("imgur.com.example", domains)


@pytest.mark.parametrize("url, ext", [
    ("http://a.example/photo.JPG", "jpg"),
    ("http://a.example/dir/file.tar.gz?x=1", "gz"),
    ("http://a.example/.hidden", ""),
    ("http://a.example/dir.v2/", ""),
    ("http://a.example/", ""),
    ("http://a.example/story.html", "html"),
])
def test_extension_of(url, ext):
    assert extension_of(url) == ext
