"""Soft-404 and parked-domain pages: a live HTTP 200 that is really "gone".

Dead links often still answer 200: a site's "page not found" template served with the wrong
status, or a lapsed domain now parked with a registrar's "this domain is for sale" page. With
`crawl.source: live_then_archive` such a page counts as failed live (outcome `soft_404`
when the archive has nothing better), so the archive is asked for the page the link meant.

Two rules, both conservative (a real article must not trip them), on the first 64 KiB:

- not-found title: the <title> is short (at most 8 words) and says "404", "not found",
  "page cannot be found", "page does not exist" or "no longer available";
- parked domain: the visible text is short (at most 300 words) and contains a phrase that
  parking and registrar pages use ("this domain is for sale", "buy this domain", "domain
  parking", "parked free", "this domain has expired", ...).

Pure functions; tests/crawl/test_soft404.py.
"""

from __future__ import annotations

import html
import re

HEAD_BYTES = 65536
MAX_TITLE_WORDS = 8
MAX_PARKED_WORDS = 300

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_NOT_FOUND_TITLE = re.compile(
    r"\b(?:404|not found|page (?:cannot|can't|could not|couldn't) be found|"
    r"page (?:does not|doesn't) exist|no longer available)\b", re.IGNORECASE)
_PARKED_PHRASES = (
    "this domain is for sale", "this domain may be for sale", "buy this domain", "domain is parked",
    "domain parking", "parked free", "parked by", "this domain has expired", "domain has expired",
    "renew this domain", "the domain name is for sale", "inquire about this domain",
    "this web page is parked", "sedoparking", "parkingcrew", "hugedomains.com",
)
_INVISIBLE = re.compile(rb"<(script|style|noscript)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(rb"<[^>]*>")
_SPACE = re.compile(r"\s+")


def page_title(body: bytes) -> str:
    """The page's <title>, unescaped and on one line ("" when there is none)."""
    match = _TITLE.search(body, 0, HEAD_BYTES)
    if not match:
        return ""
    return _SPACE.sub(" ", html.unescape(match[1].decode("utf-8", "replace"))).strip()


def visible_text(body: bytes) -> str:
    """The text of the first HEAD_BYTES, tags, scripts and styles removed, spaces collapsed."""
    text = _TAG.sub(b" ", _INVISIBLE.sub(b" ", body[:HEAD_BYTES]))
    return _SPACE.sub(" ", html.unescape(text.decode("utf-8", "replace"))).strip()


def soft_404_reason(body: bytes) -> str | None:
    """Why an HTML page that answered 200 is a soft 404 or a parked domain, or None."""
    title = page_title(body)
    if title and len(title.split()) <= MAX_TITLE_WORDS and _NOT_FOUND_TITLE.search(title):
        return f"not-found title {title!r}"
    text = visible_text(body)
    if len(text.split()) <= MAX_PARKED_WORDS:
        lowered = text.lower()
        for phrase in _PARKED_PHRASES:
            if phrase in lowered:
                return f"parked domain ({phrase!r})"
    return None
