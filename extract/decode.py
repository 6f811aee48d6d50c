"""Bytes to text for HTML pages: BOM, then declared charset (HTTP header, then <meta>), then a guess.

Declarations on the web are often wrong (servers default to ISO-8859-1, CMSes copy templates
that say utf-8 over legacy bytes), so a declaration is trusted only if the bytes decode
cleanly under it. Valid UTF-8 wins over any label: legacy text almost never forms valid
multi-byte sequences. Otherwise the page is guessed: windows-1252, the legacy charset of most
of the Western web, when its decoding reads as Western European text, else charset-normalizer.
A declared charset that had to be overridden is logged as a warning.
"""

from __future__ import annotations

import codecs
import logging
import re

import charset_normalizer

log = logging.getLogger(__name__)

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

WESTERN = "cp1252"  # the legacy charset of most of the Western web; what ISO-8859-1 labels mean
# The accented letters of each Western European language written in windows-1252. A Western page
# draws its accented letters mostly from one of them (foreign names aside), while Czech,
# Hungarian, Croatian... bytes read as windows-1252 mix several (ř í š -> ø í š: "pøíliš").
_WESTERN_ALPHABETS = tuple(
    frozenset(letters)
    for letters in (
        "àâçéèêëîïôœùûüÿ",  # French
        "äöüß",  # German
        "áéíñóúü",  # Spanish
        "àáâãçéêíóôõú",  # Portuguese
        "àèéìíîòóù",  # Italian
        "àçèéíïòóúü",  # Catalan
        "áäéëíïóöúü",  # Dutch
        "åæéøó",  # Danish, Norwegian
        "åäöéšž",  # Swedish, Finnish
        "áæðéíóöúýþ",  # Icelandic
    )
)
# What letters of other Windows charsets become in windows-1252 (ą ł ż ľ ş -> ¹ ³ ¿ ¾ º): signs
# that Western text puts at a word's edge (¿Qué, £5, nº) but never between two letters.
_FOREIGN_LETTER_SIGNS = frozenset("¡¢£¤¥¦§¨©¬®¯°±²³¶¸¹¼½¾¿×÷ªº")
_WORD_EDGES = "".join(_FOREIGN_LETTER_SIGNS) + "’‘´·\xad–—…“”„«»‚‹›•"
_WORD = re.compile(r"(?:[A-Za-z]|[^\x00-\x7f\s])+")  # ASCII letters and non-ASCII characters
# UTF-8 read as windows-1252 ("fÃ¼r"): mojibake found in windows-1252 pages, no sign of another charset.
_UTF8_AS_WESTERN = re.compile("[ÂÃ][" + re.escape(bytes(range(0x80, 0xC0)).decode(WESTERN, "ignore")) + "]")
_SCRIPT_OR_STYLE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)
MIN_ALPHABET_SHARE = 0.65  # of the accented letters, that the best-fitting Western alphabet must cover
MAX_FOREIGN_WORD_SHARE = 0.02  # of the accented words that may look foreign (one always may: a name)


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


def _accented_letters(word: str) -> list[str]:
    return [character for character in word.lower()
            if character > "\x7f" and character.isalpha() and character not in _FOREIGN_LETTER_SIGNS]


def _foreign_word(word: str) -> bool:
    """A word no Western language writes: a sign between letters, or letters no one alphabet has."""
    core = word.strip(_WORD_EDGES)
    if _FOREIGN_LETTER_SIGNS.intersection(core):
        return True
    accented = set(_accented_letters(core))
    return not any(accented <= alphabet for alphabet in _WESTERN_ALPHABETS)


def _reads_as_western(text: str) -> bool:
    """Whether windows-1252-decoded text looks like a Western European language rather than the
    bytes of another charset: one Western alphabet covers >= MIN_ALPHABET_SHARE of its accented
    letters, and <= MAX_FOREIGN_WORD_SHARE of its accented words are foreign."""
    text = _UTF8_AS_WESTERN.sub(" ", _SCRIPT_OR_STYLE.sub(" ", text))
    words = [word for word in _WORD.findall(text) if not word.isascii()]
    letters = [letter for word in words for letter in _accented_letters(word)]
    if letters:
        best_fit = max(sum(letter in alphabet for letter in letters) for alphabet in _WESTERN_ALPHABETS)
        if best_fit < MIN_ALPHABET_SHARE * len(letters):
            return False
    words = [word for word in words if _accented_letters(word) or _FOREIGN_LETTER_SIGNS.intersection(word)]
    return sum(map(_foreign_word, words)) <= max(1, MAX_FOREIGN_WORD_SHARE * len(words))


def _guess(body: bytes) -> str | None:
    """windows-1252 if it decodes the bytes into Western text, else charset-normalizer's best
    candidate (named windows-1252 when that decodes the bytes the same); None if there is none."""
    text = _strict(body, WESTERN)
    if text is not None and _reads_as_western(text):
        return WESTERN
    best = charset_normalizer.from_bytes(body).best()
    if best is None or not best.encoding:
        return None
    if WESTERN in best.could_be_from_charset:
        return WESTERN
    return _codec(best.encoding) or best.encoding


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
    text, codec = _decode_without_bom(body, declared)
    if declared and codec != declared and not body.isascii():
        log.info("declared charset %s does not fit the page's bytes; decoded as %s", declared, codec)
    return text, codec


def _decode_without_bom(body: bytes, declared: str | None) -> tuple[str, str]:
    """UTF-16/32 if so labelled, UTF-8 if valid (or nearly), the declared charset if it fits, else a guess."""
    if declared and declared.startswith(("utf-16", "utf-32")):
        text = _strict(body, declared)  # ASCII as UTF-16 is also valid UTF-8: try the label first
        if text is not None:
            return text, declared
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
    codec = _guess(body) or declared
    if codec is None:
        raise DecodeError("no charset declared and none detected")
    return body.decode(codec, errors="replace"), codec
