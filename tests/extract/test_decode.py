import codecs
import logging
import os
import re

import pandas as pd
import pytest

from bench.bench_extraction import EVAL_DIR, load_eval_set
from extract.decode import DecodeError, decode_html
from tests.extract.conftest import FIXTURES
from tests.shards.warc_fixture import Page, write_warc
from webtext.cli import main

GERMAN = "Grüße aus Köln – über Straßen und Plätze"
JAPANESE = "日本語のテキストです。東京は晴れ。"
CHARSET_PAGES = FIXTURES / "charsets"  # handwritten articles, stored as UTF-8; tests encode them
WESTERN = ["en", "fr", "de", "es"]
# Comment-sized paragraphs: too little text for a detector, which read them as cp1250, Shift_JIS...
WESTERN_SNIPPETS = {
    "en": "Tickets cost £12 and the café serves a naïve but charming crème brûlée.",
    "fr": "Une idée naïve : le café à deux euros, c’est fini.",
    "de": "Grüße aus Köln: Die Straße ist für Fußgänger gesperrt.",
    "es": "¿Cuántos años tiene el niño? ¡Mañana cumple seis!",
}
OVERRIDE = "declared charset {} does not fit the page's bytes; decoded as {}"


def page(body: str, head: str = "") -> str:
    return f"<html><head>{head}</head><body><p>{body}</p></body></html>"


def article(name: str) -> str:
    return (CHARSET_PAGES / f"{name}.html").read_text(encoding="utf-8")


def overrides(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "extract.decode"]


def test_utf8_without_any_declaration():
    text, encoding = decode_html(page(GERMAN).encode("utf-8"), None)
    assert GERMAN in text and encoding == "utf-8"


def test_http_header_charset_windows_1252():
    text, encoding = decode_html(page(GERMAN).encode("cp1252"), "text/html; charset=windows-1252")
    assert GERMAN in text and encoding == "cp1252"


def test_iso_8859_1_label_decodes_as_windows_1252():
    body = page("“smart quotes” and € sign").encode("cp1252")
    text, encoding = decode_html(body, 'text/html; charset="ISO-8859-1"')
    assert "“smart quotes” and € sign" in text and encoding == "cp1252"


def test_meta_charset_shift_jis():
    body = page(JAPANESE, '<meta charset="shift_jis">').encode("shift_jis")
    text, encoding = decode_html(body, "text/html")
    assert JAPANESE in text and encoding == "cp932"


def test_meta_http_equiv_charset():
    head = '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-2">'
    body = page("Zażółć gęślą jaźń", head).encode("iso-8859-2")
    text, encoding = decode_html(body, None)
    assert "Zażółć gęślą jaźń" in text and encoding == "iso8859-2"


@pytest.mark.parametrize("language", WESTERN)
def test_short_windows_1252_page_labelled_utf8_reads_as_windows_1252(language, caplog):
    """The reported fault: a few Latin-1 words labelled UTF-8 came out as "naďve", "Ł12"..."""
    html = page(WESTERN_SNIPPETS[language], '<meta charset="utf-8">')
    with caplog.at_level(logging.INFO, logger="extract.decode"):
        text, encoding = decode_html(html.encode("cp1252"), "text/html; charset=utf-8")
    assert text == html and encoding == "cp1252"
    assert overrides(caplog) == [OVERRIDE.format("utf-8", "cp1252")]


@pytest.mark.parametrize("language", WESTERN)
@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", None], ids=["header", "meta-only"])
def test_windows_1252_article_labelled_utf8(language, content_type):
    html = article(language)
    text, encoding = decode_html(html.encode("cp1252"), content_type)
    assert text == html and encoding == "cp1252"


@pytest.mark.parametrize("language", WESTERN)
@pytest.mark.parametrize("label", ["ISO-8859-1", "windows-1252"])
def test_utf8_article_labelled_western_is_utf8_not_mojibake(language, label, caplog):
    html = article(language)
    with caplog.at_level(logging.INFO, logger="extract.decode"):
        text, encoding = decode_html(html.encode("utf-8"), f"text/html; charset={label}")
    assert text == html and encoding == "utf-8" and "Ã" not in text
    assert overrides(caplog) == [OVERRIDE.format("cp1252", "utf-8")]


@pytest.mark.shared
def test_real_western_pages_mislabelled_both_ways_decode_back(shared_dir):
    """Every page of the extraction eval set whose text windows-1252 can hold (595 of 990: German,
    English, French, Spanish...), as windows-1252 bytes labelled UTF-8 and as UTF-8 labelled ISO-8859-1."""
    if not (EVAL_DIR / "pages.tar.gz").is_file():
        pytest.skip("extraction eval set is absent")
    checked = 0
    for eval_page in load_eval_set():
        html, _ = decode_html(eval_page["body"], None)
        try:
            legacy = html.encode("cp1252")
        except UnicodeEncodeError:
            continue
        if html.isascii():
            continue
        assert decode_html(legacy, "text/html; charset=utf-8") == (html, "cp1252"), eval_page["name"]
        assert decode_html(html.encode("utf-8"), "text/html; charset=ISO-8859-1") == (html, "utf-8"), eval_page["name"]
        checked += 1
    assert checked > 500


def test_undeclared_windows_1252_snippet_is_windows_1252_without_warning(caplog):
    html = page(WESTERN_SNIPPETS["fr"])
    with caplog.at_level(logging.INFO, logger="extract.decode"):
        text, encoding = decode_html(html.encode("cp1252"), None)
    assert text == html and encoding == "cp1252" and overrides(caplog) == []


# (fixture, its real charset, Python's name for what the page declares)
NON_WESTERN = [("cs", "cp1250", "cp1250"), ("pl", "cp1250", "cp1250"),
               ("ru", "cp1251", "cp1251"), ("ja", "shift_jis", "cp932")]


@pytest.mark.parametrize("language, charset, codec", NON_WESTERN)
def test_correctly_labelled_legacy_pages_are_kept(language, charset, codec, caplog):
    html = article(language)
    with caplog.at_level(logging.INFO, logger="extract.decode"):
        text, encoding = decode_html(html.encode(charset), f"text/html; charset={charset}")
    assert text == html and encoding == codec and overrides(caplog) == []


def test_correctly_labelled_windows_1250_page_that_windows_1252_could_read_is_kept():
    html = page("Dobrý den, paní Nováková. Tak to je naše škola.")  # á é í ý š ž: the same bytes in cp1252
    text, encoding = decode_html(html.encode("cp1250"), "text/html; charset=windows-1250")
    assert text == html and encoding == "cp1250"


@pytest.mark.parametrize("language, charset, codec", NON_WESTERN)
def test_mislabelled_non_western_pages_are_not_read_as_windows_1252(language, charset, codec):
    html = re.sub(r'<meta charset="[^"]+">', '<meta charset="utf-8">', article(language))
    text, encoding = decode_html(html.encode(charset), "text/html; charset=utf-8")
    assert text == html and encoding == codec


def test_utf8_bytes_win_over_wrong_legacy_label():
    text, encoding = decode_html(page(GERMAN).encode("utf-8"), "text/html; charset=iso-8859-1")
    assert GERMAN in text and encoding == "utf-8"


def test_mostly_utf8_with_a_stray_byte_stays_utf8():
    body = (page(GERMAN * 10) + " caf\xe9").encode("utf-8")[:-2] + b"\xe9 "
    text, encoding = decode_html(body, None)
    assert GERMAN in text and encoding == "utf-8" and "\ufffd" in text


def test_undeclared_shift_jis_is_detected():
    body = page(JAPANESE * 20).encode("shift_jis")
    text, _ = decode_html(body, None)
    assert JAPANESE in text


@pytest.mark.parametrize(
    "bom, codec",
    [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")],
)
def test_bom_wins_over_declarations(bom, codec):
    body = bom + page(GERMAN, '<meta charset="windows-1252">').encode(codec)
    text, encoding = decode_html(body, "text/html; charset=iso-8859-1")
    assert text.startswith("<html>") and GERMAN in text and encoding == codec


def test_unknown_charset_label_is_ignored():
    text, encoding = decode_html(page(GERMAN).encode("utf-8"), "text/html; charset=no-such-charset")
    assert GERMAN in text and encoding == "utf-8"


@pytest.mark.parametrize("body", [b"", b"\x00\x01\x02\x03" * 500 + b"\xff\xfe\xfd"])
def test_empty_or_binary_body_is_a_decode_error(body):
    with pytest.raises(DecodeError):
        decode_html(body, "text/html")


def test_mislabelled_pages_build_into_correct_text(tmp_path):
    """Build level: windows-1252 bytes labelled UTF-8 and UTF-8 bytes labelled ISO-8859-1, read from a
    WARC by `webtext build`, become rows whose text has £, é, ï where they belong."""
    def response(n: int, url: str, html: str, charset: str, content_type: str) -> Page:
        return Page(source_url=url, final_url=url, html=html, score=5, post_ids=[f"p{n}"], subreddits=["news"],
                    created_utc=1_500_000_000 + n, fetch_time=f"2026-11-20T10:0{n}:00Z",
                    charset=charset, content_type=content_type)

    cafe_url, museum_url = "https://ashfordcourier.example/cafe", "https://harbour.example/museum"
    write_warc(str(tmp_path / "crawl" / "warc" / "crawl-00000.warc.gz"), [
        response(1, cafe_url, article("en"), "cp1252", "text/html; charset=utf-8"),
        response(2, museum_url, article("en_museum"), "utf-8", "text/html; charset=ISO-8859-1"),
    ])
    out = tmp_path / "dataset"
    assert main(["build", "--warc", str(tmp_path / "crawl"), "--out", str(out)]) == 0
    rows = pd.concat([pd.read_parquet(out / split) for split in ("train", "val", "test")
                      if os.path.isdir(out / split)])
    texts = dict(zip(rows["url"], rows["text"]))
    assert set(texts) == {cafe_url, museum_url}
    assert "£50,000" in texts[cafe_url] and "was naïve" in texts[cafe_url] and "crème brûlée" in texts[cafe_url]
    assert "£2m" in texts[museum_url] and "Renée Okafor" in texts[museum_url]
    assert not any(mark in text for text in texts.values() for mark in ("Ł", "ď", "Ã", "\ufffd"))
