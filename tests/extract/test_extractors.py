import socket
import typing

import pytest

from extract.config import ExtractConfig
from extract.extractors import EXTRACTORS, Extraction, clean, extract, extract_page, merge_paragraphs
from extract.lines import LINE_RULES, config_key

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


BYLINE = "Posted 2017-06-20 by Tom Becker | Print | E-mail this story"
INFOBOX = ["| Harbour wall repairs |", "|---|", "| See also the related articles below |"]


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_extract_page_removes_furniture_lines_and_counts_them(name, pages):
    """Byline, share bar and a one-column infobox go; prose that mentions posting and a data table stay."""
    outcome = extract_page(pages["article_furniture"], None, None, ExtractConfig(extractor=name))
    lines = outcome.extraction.text.splitlines()
    assert outcome.status == "ok" and BYLINE not in lines and not set(INFOBOX) & set(lines)
    assert any(line.startswith("Posted notices on the harbour wall") for line in lines)
    assert outcome.lines_removed["byline_or_share_line"] == 1
    if name != "newspaper":  # newspaper4k flattens tables into prose
        assert outcome.lines_removed["table_markup_line"] == 3
        assert [line.strip() for line in lines if line.startswith("|")] == [
            "| Night | Tide level |", "|---|---|", "| 4 February | 5.9 metres |", "| 17 February | 6.3 metres |"]


def test_extract_page_with_line_rules_off_keeps_every_line(pages):
    config = ExtractConfig(**{config_key(rule): False for rule in LINE_RULES})
    outcome = extract_page(pages["article_furniture"], None, None, config)
    lines = [line.strip() for line in outcome.extraction.text.splitlines()]
    assert outcome.lines_removed == {} and BYLINE in lines and set(INFOBOX) <= set(lines)


FURNITURE_ONLY = b"<html><body><article><p>" + BYLINE.encode() + b"</p><p>Share on Facebook</p></article></body></html>"


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_a_page_of_furniture_only_is_no_text_with_its_lines_counted(name):
    outcome = extract_page(FURNITURE_ONLY, None, None, ExtractConfig(extractor=name))
    assert (outcome.status, outcome.extraction, outcome.lines_removed) == ("no_text", None, {"byline_or_share_line": 2})


def test_clean_keeps_title_and_extractor():
    extraction = Extraction("Share on Facebook\n|---|\nThe quay reopened on Friday.", "Title", "trafilatura")
    cleaned, removed = clean(extraction, ExtractConfig())
    assert cleaned == Extraction("The quay reopened on Friday.", "Title", "trafilatura")
    assert removed == {"byline_or_share_line": 1, "table_markup_line": 1}


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
