"""URL normalisation, dedup keys and host rules shared by harvest, crawl and build.

Normalisation is w3lib's `canonicalize_url` (the canonicaliser behind Scrapy's request
fingerprints): it IDNA-encodes hosts, lower-cases the host, normalises percent-encoding
(upper-case hex, unreserved characters decoded, unsafe ones encoded), sorts the query and drops
the fragment. We chose it over courlan because courlan decodes punycode back to Unicode (the
crawler needs an IDNA host), drops blank query values (`?PageName` pages break) and strips
every parameter named like `ref`/`source`/`session`, while w3lib keeps the URL fetchable; over
url-normalize because w3lib is already a Scrapy dependency and is maintained with it. What
w3lib leaves to us is small and done with `urllib.parse`: Reddit's HTML escaping (`&amp;`),
default ports, a trailing dot on the host, and tracking parameters (a list in the config).

`url_key` merges the variants one link is posted under (http/https, `www.`/bare host) so they
dedup to one row; `url` keeps the variant of the highest-scored post (see crawl/harvest_rules.py).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit
from xml.sax.saxutils import unescape as unescape_reddit_entities

from w3lib.url import canonicalize_url

from crawl.config import HarvestConfig

_DEFAULTS = HarvestConfig()
SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-.")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")


class TrackingParams:
    """Exact names and `prefix*` patterns of query parameters that only track the click."""

    def __init__(self, patterns: Iterable[str]):
        patterns = [p.lower() for p in patterns]
        self.names = frozenset(p for p in patterns if not p.endswith("*"))
        self.prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))

    def __contains__(self, name: str) -> bool:
        name = name.lower()
        return name in self.names or name.startswith(self.prefixes)


_DEFAULT_TRACKING = TrackingParams(_DEFAULTS.tracking_params)


def scheme_of(url: str) -> str:
    """Lower-case scheme of a raw URL ('' if it has none)."""
    head, sep, _ = url.strip().partition(":")
    return head.lower() if sep else ""


# URLs that canonicalize_url would return unchanged (a "/" added to an empty path): lower-case
# scheme and host, no port or userinfo, only unreserved characters in the path, `name=value`
# pairs of unreserved characters in sorted order. Most posted links are of this form, and
# w3lib's full parse costs ~25 us per URL; tests check the shortcut against it.
_SAFE = r"[A-Za-z0-9\-._~]"
_ALREADY_CANONICAL = re.compile(
    rf"https?://(?!.*xn--)[a-z0-9.-]{{1,253}}(/(?:{_SAFE}|/)*)?(\?{_SAFE}+={_SAFE}*(?:&{_SAFE}+={_SAFE}*)*)?"
)
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|\?|$)")


def _canonical(url: str) -> str:
    """canonicalize_url(url), skipping w3lib where the URL is already canonical."""
    match = _ALREADY_CANONICAL.fullmatch(url)
    if match is None or _DOT_SEGMENT.search(url) or any(
        len(label) > 63 for label in url.split("/", 3)[2].split(".")
    ):
        return canonicalize_url(url)
    path, query = match.group(1), match.group(2)
    if query:
        pairs = [pair.partition("=") for pair in query[1:].split("&")]
        if pairs != sorted(pairs, key=lambda p: (p[0], p[2])):
            return canonicalize_url(url)
    if path:
        return url
    host_end = match.start(2) if query else len(url)
    return url[:host_end] + "/" + url[host_end:]


def _strip_tracking(query: str, tracking: TrackingParams) -> str:
    kept = [p for p in query.split("&") if p and p.partition("=")[0] not in tracking]
    return "&".join(kept)


def _valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1].split("%")[0])
            return True
        except ValueError:
            return False
    labels = host.split(".")
    return (
        len(labels) >= 2
        and all(labels)
        and _HOST_CHARS.issuperset(host)
        and not any(label.startswith("-") or label.endswith("-") for label in labels)
    )


def normalize(url: str, tracking: TrackingParams | None = None) -> str | None:
    """The canonical fetchable form of a posted URL, or None if it is not a usable web URL.

    `tracking` defaults to the config's default `harvest.tracking_params`; stages that honour
    a user's config pass `TrackingParams(cfg.harvest.tracking_params)`.
    """
    if not isinstance(url, str):
        return None
    url = unescape_reddit_entities(url.strip())
    if scheme_of(url) not in SCHEMES:
        return None
    base, _, query = url.partition("#")[0].partition("?")
    query = _strip_tracking(query, tracking or _DEFAULT_TRACKING)
    try:
        canonical = _canonical(f"{base}?{query}" if query else base)
    except (ValueError, UnicodeError):
        return None  # unparseable netloc or port, a host that IDNA rejects
    # canonicalize_url returns "scheme://[userinfo@]host[:port]/path[?query]"
    scheme, _, rest = canonical.partition("://")
    netloc, _, path_query = rest.partition("/")
    host_port = netloc.rpartition("@")[2]  # credentials are dropped
    if host_port.startswith("["):
        host, _, port = host_port.partition("]")
        host, port = host + "]", port[1:]
    else:
        host, _, port = host_port.partition(":")
    host = host.rstrip(".")
    if not _valid_host(host) or (port and not (port.isdigit() and int(port) <= 65535)):
        return None
    if port and int(port) != _DEFAULT_PORTS[scheme.lower()]:
        host = f"{host}:{int(port)}"
    return f"{scheme}://{host}/{path_query}"


def key_of_normalized(url: str) -> str:
    """`url_key` of an already normalised URL: no scheme, no leading `www.`."""
    rest = url.split("://", 1)[1]
    return rest[4:] if rest.startswith("www.") else rest


def host_of_normalized(url: str) -> str:
    """Host of an already normalised URL (IPv6 in brackets), without re-parsing it."""
    netloc = url.split("://", 1)[1].split("/", 1)[0]
    if netloc.startswith("["):
        return netloc[: netloc.index("]") + 1]
    return netloc.split(":", 1)[0]


def url_key(url: str) -> str:
    """Dedup key: http/https and www./bare-host variants of one URL share it."""
    normalized = normalize(url)
    if normalized is None:
        raise ValueError(f"not a usable http(s) URL: {url!r}")
    return key_of_normalized(normalized)


_PLAIN_NETLOC = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([A-Za-z0-9.-]+)(?:[/?#]|$)")


def host_of(url: str) -> str:
    """Lower-case host of a URL without a trailing dot ('' if none)."""
    url = url.strip()
    plain = _PLAIN_NETLOC.match(url)
    if plain and not ("\t" in url or "\r" in url or "\n" in url):  # urlsplit drops those
        return plain.group(1).lower().rstrip(".")  # what urlsplit gives, without its cost
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return ""
    return host.rstrip(".")


def domain(url: str) -> str:
    """Registered host of a URL: lower-case, IDNA, without a leading `www.`."""
    normalized = normalize(url)
    if normalized is None:
        raise ValueError(f"not a usable http(s) URL: {url!r}")
    return domain_of_normalized(normalized)


def domain_of_normalized(url: str) -> str:
    """`domain` of an already normalised URL, without re-normalising it."""
    host = host_of_normalized(url)
    return host[4:] if host.startswith("www.") else host


def host_in(host: str, domains: frozenset[str]) -> bool:
    """Whether `host` is one of `domains` or a subdomain of one."""
    host = host.lower().rstrip(".")
    while host:
        if host in domains:
            return True
        host = host.partition(".")[2]
    return False


_DEFAULT_WIKIPEDIA = frozenset(_DEFAULTS.wikipedia_domains)


def is_wikipedia(url: str, domains: Iterable[str] | None = None) -> bool:
    """Wikipedia in any language (incl. mobile), its sister projects and known mirrors.

    `domains` defaults to the config's default `harvest.wikipedia_domains`; pass
    `cfg.harvest.wikipedia_domains` to honour a user's config.
    """
    listed = _DEFAULT_WIKIPEDIA if domains is None else frozenset(d.lower() for d in domains)
    return host_in(host_of(url), listed)


_IP_CHARS = frozenset("0123456789abcdefx.:")  # IPv4, IPv6 and the legacy forms below


def _as_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    host = host.strip("[]").split("%")[0]
    if not host or not _IP_CHARS.issuperset(host):
        return None  # a name, not an address: skip the costly failed parses
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefx." for c in host) and host[0].isdigit():
        try:  # legacy forms browsers accept: 2130706433, 0x7f.1, 127.1
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_private_host(host: str) -> bool:
    """Whether a host is a non-public IP literal (private, loopback, link-local, multicast,
    reserved, shared, unspecified) or a localhost name: never to be crawled."""
    host = host.lower().rstrip(".")
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    ip = _as_ip(host)
    if ip is None:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast or ip.is_reserved


def extension_of(url: str) -> str:
    """Lower-case file extension of the URL path's last segment ('' if none)."""
    rest = url.partition("#")[0].partition("?")[0].partition("://")[2]
    if "/" not in rest:
        return ""  # no path: the last dot-separated part is the host's TLD, not an extension
    last = rest.rsplit("/", 1)[-1]
    stem, dot, ext = last.rpartition(".")
    return ext.lower() if dot and stem else ""
