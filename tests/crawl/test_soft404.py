"""Soft-404 and parked-domain rules (crawl/soft404.py) on their own."""

import json

import pytest

from crawl.soft404 import soft_404_reason
from tests.sample.truth import BUNDLED


def _page(title: str, text: str) -> bytes:
    return f"<html><head><title>{title}</title><script>var x = 'buy this domain';</script></head>" \
           f"<body><p>{text}</p></body></html>".encode()


@pytest.mark.parametrize("title", ["404 Not Found", "Page Not Found | Example News", "Error 404",
                                   "Sorry, this page can't be found", "This page doesn't exist",
                                   "Article no longer available", "Not Found"])
def test_a_short_not_found_title_is_a_soft_404(title):
    assert soft_404_reason(_page(title, "Some words.")).startswith("not-found title")


@pytest.mark.parametrize("text", ["This domain is for sale! Make an offer.", "Buy this domain today.",
                                  "This domain has expired. Renew this domain now.",
                                  "example.com is parked free, courtesy of a registrar."])
def test_a_short_page_with_a_parking_phrase_is_a_parked_domain(text):
    assert soft_404_reason(_page("example.com", text)).startswith("parked domain")


def test_articles_about_those_things_are_not_soft_404s():
    long_text = "The registrar said this domain is for sale, among other things. " + "More reporting here. " * 120
    assert soft_404_reason(_page("Why error pages like 404 not found matter for the web, a long essay", "x")) is None
    assert soft_404_reason(_page("Domain market news", long_text)) is None
    assert soft_404_reason(_page("Parked", "Words that only a script mentions.")) is None  # phrase in <script> only
    assert soft_404_reason(b"no markup at all") is None


def test_no_page_of_the_bundled_sample_is_a_soft_404():
    routes = json.loads((BUNDLED.web / "routes.json").read_text())["routes"]
    bodies = [BUNDLED.web / "pages" / route["body"] for route in routes.values() if route.get("body")]
    assert len(bodies) > 100
    assert [path.name for path in bodies if soft_404_reason(path.read_bytes())] == []
