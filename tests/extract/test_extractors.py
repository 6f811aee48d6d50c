import socket
import typing

import pytest

from extract.config import ExtractConfig
from extract.extractors import EXTRACTORS, extract, extract_page, merge_paragraphs

MAIN = [
    "river otters have been recorded along the upper reaches of the Millbrook",
    "Otters sit at the top of the food chain here",
    "when the cubs are most likely to be exploring beyond the holt",
]
BOILERPLATE = ["Contact the newsroom", "We use cookies", "casino", "Saw one near the footbridge",
               "Council approves new cycle path", "All rights reserved", "Terms of use"]


def test_every_configurable_extractor_exists():
    """`extract.extractor` (and the CLI's --extractor choices) name exactly the extractors there are."""
    assert sorted(EXTRACTORS) == sorted(typing.get_args(ExtractConfig.model_fields["extractor"].annotation))


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_main_text_kept_and_boilerplate_dropped(name, pages):
    result = extract(pages["article_en"].decode(), "https://news.example/otters", ExtractConfig(extractor=name))
    assert result is not None
    for snippet in MAIN:
        assert snippet in result.text
    for snippet in BOILERPLATE:
        assert snippet not in result.text
    assert result.title == "River otters return to the Millbrook valley"
    assert result.extractor.startswith(name if name != "ensemble" else "trafilatura")


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_page_without_text_gives_none(name):
    assert extract("<html><head></head><body></body></html>", None, ExtractConfig(extractor=name)) is None


def test_extract_page_outcomes(pages, config):
    ok = extract_page(pages["article_en"], "text/html; charset=utf-8", None, config)
    assert ok.status == "ok" and ok.encoding == "utf-8" and MAIN[0] in ok.extraction.text
    assert extract_page(b"", None, None, config).status == "decode_error"
    assert extract_page(b"<html><body></body></html>", None, None, config).status == "no_text"


def test_merge_paragraphs_inserts_missing_long_paragraph_in_order():
    primary = "First paragraph here.\nThird paragraph here."
    long_missing = "Second paragraph " + "word " * 30
    secondary = f"First paragraph here.\n{long_missing}\nshort one\nThird paragraph here."
    text, added = merge_paragraphs(primary, secondary, min_words=30)
    assert added == 1
    assert text.splitlines() == ["First paragraph here.", long_missing.strip(), "Third paragraph here."]


@pytest.fixture
def connection_attempts(monkeypatch):
    """Record (and refuse) every DNS lookup or connection made through the socket module."""
    attempts = []

    def refuse(kind):
        def fn(*args, **kwargs):
            attempts.append((kind, args[1:] if kind == "connect" else args[:1]))
            raise ConnectionRefusedError("test: no network")
        return fn

    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket, "gethostbyname", refuse("gethostbyname"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", refuse("connect"))
    monkeypatch.setattr(socket, "create_connection", refuse("create_connection"))
    return attempts


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_images_links_and_refresh_cause_no_network_traffic(name, connection_attempts):
    images = "".join(
        f'<figure><img src="http://img{i}.example/photo{i}.jpg" width="800" height="600">'
        f'<figcaption>Photo {i}</figcaption></figure>'
        for i in range(30)
    )
    html = (
        '<html><head><meta http-equiv="refresh" content="0; url=http://elsewhere.example/">'
        '<meta property="og:image" content="http://cdn.example/top.jpg"><title>Gallery</title></head>'
        f"<body><article><h1>Gallery</h1><p>{'A long caption about the pictures below. ' * 20}</p>"
        f'{images}<p><a href="http://read.example/more">Read more</a></p></article></body></html>'
    )
    result = extract(html, "http://gallery.example/page", ExtractConfig(extractor=name))
    assert result is not None and "caption about the pictures" in result.text
    assert connection_attempts == []
