"""URL normalisation, dedup keys and host rules (crawl/urls.py) as table tests."""

from pathlib import Path

import pytest

from crawl.config import HarvestConfig
from tests.sample.truth import BUNDLED
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

REPO = Path(__file__).resolve().parents[2]


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


# -- shortcuts past w3lib / urlsplit must give exactly what those give -----------------------

def _dump_urls(shared_dir_or_none) -> set[str]:
    import lzma

    import orjson
    import zstandard

    data = [zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(
        BUNDLED.dump.read_bytes()).read()]
    if shared_dir_or_none is not None:
        for name in ("RS_v2_2005-06.xz", "RS_v2_2005-07.xz"):
            path = shared_dir_or_none / "data" / "reddit" / name
            if path.exists():
                data.append(lzma.decompress(path.read_bytes()))
    found = set()
    for line in b"\n".join(data).split(b"\n"):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("url"), str):
            found.add(record["url"].strip())
    return found


def _edge_urls() -> set[str]:
    hosts = ["a.example", "A.example", "www.b.example", "xn--bcher-kva.example", "a..example", ".a.example",
             "a.example.", "a" * 64 + ".example", "-a.example", "1.2.3.4", "a_b.example", "a.example:80",
             "a.example:8080", "u@a.example", "[::1]", ""]
    paths = ["", "/", "/a/b.html", "//x", "/./a", "/../a", "/a/.", "/a/..", "/a/.b", "/a~b", "/%41", "/a b",
             "/é", "/a;b", "/a+b", "/A/B", "/.", "/..", "/a//b/", "/a\tb"]
    queries = ["", "?", "?a=1", "?b=1&a=2", "?a=2&a=1", "?a", "?a=", "?a=1&b", "?a-b=1&a=1", "?a=1&a-b=1",
               "?a=~", "?a=1&&b=2", "?a=%20", "?a=b=c", "?A=1&a=1", "?_=1&a=1", "?a=+", "#f", "?a=1#f"]
    return {f"{scheme}://{h}{p}{q}" for scheme in ("http", "https", "HTTP") for h in hosts for p in paths
            for q in queries}


@pytest.fixture(scope="module")
def many_urls() -> list[str]:
    shared = REPO.parent / "shared"
    return sorted(_dump_urls(shared if shared.is_dir() else None) | _edge_urls())


def test_canonical_shortcut_equals_canonicalize_url(many_urls):
    from w3lib.url import canonicalize_url

    from crawl.urls import _ALREADY_CANONICAL, _canonical

    shortcut = 0
    for url in many_urls:
        shortcut += _ALREADY_CANONICAL.fullmatch(url) is not None
        try:
            expected = canonicalize_url(url)
        except (ValueError, UnicodeError) as exc:
            expected = type(exc)
        try:
            got = _canonical(url)
        except (ValueError, UnicodeError) as exc:
            got = type(exc)
        assert got == expected, url
    assert shortcut > 1000  # the shortcut is taken, not just always skipped


def test_host_shortcut_equals_urlsplit(many_urls):
    from urllib.parse import urlsplit

    from crawl.urls import host_of

    for url in many_urls + ["http://a.example\t/x", "http://a.ex\nample/", " http://A.example./x "]:
        try:
            expected = (urlsplit(url.strip()).hostname or "").rstrip(".")
        except ValueError:
            expected = ""
        assert host_of(url) == expected, url
