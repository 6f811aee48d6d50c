"""Bytes to text for HTML pages: BOM, then declared charset (HTTP header, then <meta>), then a detector.

Declarations on the web are often wrong (servers default to ISO-8859-1, CMSes copy templates
that say utf-8 over legacy bytes), so a declaration is trusted only if the bytes decode
cleanly under it; otherwise charset-normalizer guesses from the bytes themselves.
"""

from __future__ import annotations

import codecs
import re

import charset_normalizer

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Labels browsers decode with a superset codec (WHATWG Encoding Standard): a page labelled
# ISO-8859-1 really uses windows-1252, one labelled Shift_JIS uses Microsoft's cp932, etc.
_SUPERSET = {
    codecs.lookup(label).name: codecs.lookup(superset).name
    for label, superset in [
        ("iso-8859-1", "cp1252"),
        ("ascii", "cp1252"),
        ("iso-8859-9", "cp1254"),
        ("iso-8859-11", "cp874"),
        ("tis-620", "cp874"),
        ("gb2312", "gb18030"),
        ("gbk", "gb18030"),
        ("shift_jis", "cp932"),
        ("euc-kr", "cp949"),
        ("big5", "big5hkscs"),
    ]
}

_HEADER_CHARSET = re.compile(rb"""charset\s*=\s*["']?\s*([A-Za-z0-9_.:+-]+)""", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9_.:+-]+)""", re.I)
MOSTLY_UTF8_RATIO = 4  # valid multi-byte characters per invalid byte sequence to still call it UTF-8
META_SCAN_BYTES = 8192  # where <meta charset> must appear (HTML5 says 1024; real pages overshoot)


class DecodeError(ValueError):
    """The body is not text in any encoding we can identify (binary data, empty body)."""


def _codec(label: bytes | str | None) -> str | None:
    """Python codec name for a charset label, mapped to the superset browsers use; None if unknown."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "ignore")
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    return _SUPERSET.get(name, name)


def declared_charset(body: bytes, content_type: str | None) -> str | None:
    """The charset the HTTP header declares, else the one a <meta> tag declares."""
    if content_type:
        match = _HEADER_CHARSET.search(content_type.encode("latin-1", "ignore"))
        codec = _codec(match.group(1)) if match else None
        if codec:
            return codec
    match = _META_CHARSET.search(body[:META_SCAN_BYTES])
    codec = _codec(match.group(1)) if match else None
    if codec and codec.startswith(("utf-16", "utf-32")):
        return "utf-8"  # a <meta> readable as ASCII cannot be UTF-16/32 (HTML5 rule)
    return codec


def _strict(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return None


def _mostly_utf8(body: bytes) -> str | None:
    """UTF-8 text with a few stray bytes (a legacy snippet pasted into a UTF-8 page), else None.

    Legacy single-byte text almost never forms valid multi-byte UTF-8 sequences, so many valid
    sequences and few invalid ones mean UTF-8 with damage, which a detector would turn to mojibake.
    """
    text = body.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd")
    multibyte = sum(1 for character in text if character > "\x7f") - invalid
    return text if multibyte >= MOSTLY_UTF8_RATIO * invalid else None


def decode_html(body: bytes, content_type: str | None) -> tuple[str, str]:
    """Decode an HTML body; returns (text, Python codec name used). Raises DecodeError."""
    if not body:
        raise DecodeError("empty body")
    for bom, codec in _BOMS:
        if body.startswith(bom):
            text = _strict(body[len(bom):], codec)
            if text is not None:
                return text, codec
    declared = declared_charset(body, content_type)
    if declared and declared.startswith(("utf-16", "utf-32")):
        text = _strict(body, declared)  # ASCII as UTF-16 is also valid UTF-8: try the label first
        if text is not None:
            return text, declared
    # Valid UTF-8 with non-ASCII bytes is almost never anything else, whatever the label says.
    text = _strict(body, "utf-8")
    if text is not None:
        return text, "utf-8"
    text = _mostly_utf8(body)
    if text is not None:
        return text, "utf-8"
    if declared and declared != "utf-8":
        text = _strict(body, declared)
        if text is not None:
            return text, declared
    if body.count(b"\x00") > len(body) // 100:
        raise DecodeError("body looks binary (NUL bytes)")
    best = charset_normalizer.from_bytes(body).best()
    if best is not None and best.encoding:
        codec = _codec(best.encoding) or best.encoding
        return body.decode(codec, errors="replace"), codec
    if declared:
        return body.decode(declared, errors="replace"), declared
    raise DecodeError("no charset declared and none detected")
