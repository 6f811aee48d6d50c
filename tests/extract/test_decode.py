import codecs

import pytest

from extract.decode import DecodeError, decode_html

GERMAN = "Grüße aus Köln – über Straßen und Plätze"
JAPANESE = "日本語のテキストです。東京は晴れ。"


def page(body: str, head: str = "") -> str:
    return f"<html><head>{head}</head><body><p>{body}</p></body></html>"


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


def test_declared_utf8_but_windows_1252_bytes_is_detected():
    body = page(GERMAN * 20, '<meta charset="utf-8">').encode("cp1252")
    text, encoding = decode_html(body, "text/html; charset=utf-8")
    assert GERMAN in text and encoding != "utf-8"


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
