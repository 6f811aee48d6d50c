"""Line cleaning: lines of the extracted text that are page furniture, removed before the quality rules.

An extractor keeps or drops whole blocks, so a kept block can still be a byline with its share
buttons ("Posted 2017-06-20 by Tom Becker | Print | E-mail this story") or table markup
(`|---|`, a one-cell row `| Title |`). A line rule is a pure function of one stripped line that
returns True when the line is to be removed; its name is the diagnostic counter
`lines_removed.<name>` of the extract stage, and `extract.remove_<name>` switches it on or off.
Lines are removed, documents never: the document-level rules (extract/quality.py) then judge
what is left. The byline and share-bar vocabulary is English, the language the pipeline keeps
by default; measured on the extraction evaluation set by bench/bench_extraction.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from extract.config import ExtractConfig

LineRule = Callable[[str], bool]

# Words of a share/print/e-mail bar; a segment of such words is page furniture when it holds at
# least one action word ("Share this story" yes, "this story" alone no).
SHARE_ACTIONS = frozenset({
    "share", "tweet", "print", "email", "e-mail", "facebook", "twitter", "linkedin", "pinterest",
    "reddit", "whatsapp", "tumblr", "telegram", "flipboard", "comments", "comment", "printer-friendly",
})
SHARE_WORDS = SHARE_ACTIONS | frozenset({
    "this", "story", "article", "post", "page", "on", "via", "to", "with", "a", "friend", "mail",
    "version", "link", "copy", "save", "leave", "add",
})
BYLINE_KEYWORDS = ("last updated", "last modified", "posted", "published", "updated", "written", "submitted")
# Words of a date or time in a byline: "Posted on Thursday, April 21, 2022 at 10:11 pm CST", "3 hours ago".
DATE_WORDS = frozenset(
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec "
    "monday tuesday wednesday thursday friday saturday sunday mon tue wed thu fri sat sun "
    "on at of am pm ago minute minutes hour hours day days week weeks month months year years "
    "utc gmt bst cet cest est edt cst cdt pst pdt".split()
)
# Lower-case words inside an author credit: "By Jane Doe and John Roe", "By Anna de Vries".
CREDIT_CONNECTORS = frozenset({"and", "of", "for", "at", "in", "de", "van", "von", "der", "da", "la", "le"})
MAX_BYLINE_WORDS = 12  # a byline segment longer than this is a sentence that happens to start alike
MAX_TABLE_CAPTION_WORDS = 8  # a one-cell table row with more words may be a layout table's paragraph

_SEGMENT_SEPARATOR = re.compile(r"[|•·]")
_WORD = re.compile(r"[^\W_]+(?:[-'’.][^\W_]+)*")  # words with inner hyphens/apostrophes/dots
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")  # trafilatura escapes a pipe inside a cell as "\|"
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
_TABLE_RULE = re.compile(r":?[-=]+:?")  # a cell of a table's head separator row
_SENTENCE_END = re.compile(r"[.!?…]$")
_CODE = re.compile(r"[{}\[\]<>=`;#$\\]")  # characters of code, never of page furniture


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _is_date_word(word: str) -> bool:
    return word[0].isdigit() or word.lower() in DATE_WORDS


def _is_credit(words: list[str]) -> bool:
    """An author credit after "by": "Tom Becker", "Nada Tawfik, BBC News, New York",
    "Evan Symon, August 14, 2020 2:30 pm"; not "the time we realised" nor "Monday, the river"."""
    return (
        bool(words)
        and words[0][0].isupper()
        and not _is_date_word(words[0])
        and all(word[0].isupper() or word in CREDIT_CONNECTORS or _is_date_word(word) for word in words)
    )


def _is_share_segment(segment: str) -> bool:
    words = [word.lower() for word in _words(segment)]
    return bool(words) and all(word in SHARE_WORDS or word.isdigit() for word in words) and any(
        word in SHARE_ACTIONS for word in words
    )


def _is_byline_segment(segment: str) -> bool:
    """"By Nada Tawfik, BBC News", "Posted 2017-06-20 by Tom Becker", "Updated June 13, 2019",
    "Posted on" (its date lost to extraction); not "Posted on the door, the notice said ..."."""
    words = _words(segment)
    if not words or len(words) > MAX_BYLINE_WORDS:
        return False
    lower = [word.lower() for word in words]
    if lower[0] == "by":
        return _is_credit(words[1:])
    keyword = next((keyword for keyword in BYLINE_KEYWORDS if lower[: len(keyword.split())] == keyword.split()), None)
    if keyword is None:
        return False
    rest = words[len(keyword.split()):]
    while rest and _is_date_word(rest[0]):
        rest = rest[1:]
    return not rest or (rest[0].lower() == "by" and _is_credit(rest[1:]))


def _is_date_segment(segment: str) -> bool:
    words = _words(segment)
    return bool(words) and all(_is_date_word(word) for word in words)


def byline_or_share_line(line: str) -> bool:
    """A byline, a share/print/e-mail bar, or both in one line split by `|`, `•` or `·`:
    "Posted 2017-06-20 by Tom Becker | Print | E-mail this story", "Share on Facebook".
    A date alone ("June 20, 2017") is a segment of such a line, never a line to remove by itself."""
    if not line[:1].isalnum() or _CODE.search(line):  # e.g. Python's "...     print x"
        return False
    segments = [segment.strip() for segment in _SEGMENT_SEPARATOR.split(line) if segment.strip()]
    furniture = [_is_byline_segment(segment) or _is_share_segment(segment) for segment in segments]
    return any(furniture) and all(found or _is_date_segment(segment) for found, segment in zip(furniture, segments))


def table_markup_line(line: str) -> bool:
    """Table markup without text, as trafilatura writes tables (`| cell | cell |`, a `|---|---|` row
    under the head): a row of empty cells, and the debris of a one-column table, which is layout
    rather than data (an infobox, a page laid out in a table): its separator `|---|` and its
    caption-like rows of at most MAX_TABLE_CAPTION_WORDS words without a sentence end (`| Title |`).
    A table of several columns keeps its head separator and rows; a one-cell row that holds a
    sentence stays."""
    if not (line.startswith("|") and line.endswith("|")):
        return False
    cells = [cell.strip() for cell in _CELL_SEPARATOR.split(line[1:-1])]
    if not any(_LETTER_OR_DIGIT.search(cell) for cell in cells):
        return len(cells) == 1 or not all(_TABLE_RULE.fullmatch(cell) for cell in cells)
    caption = cells[0]
    return (
        len(cells) == 1
        and len(_words(caption)) <= MAX_TABLE_CAPTION_WORDS
        and not _SENTENCE_END.search(caption)
        and not _CODE.search(caption)
    )


LINE_RULES: list[LineRule] = [byline_or_share_line, table_markup_line]


def config_key(rule: LineRule) -> str:
    """The ExtractConfig switch of a line rule."""
    return f"remove_{rule.__name__}"


def enabled_rules(config: ExtractConfig) -> list[LineRule]:
    return [rule for rule in LINE_RULES if getattr(config, config_key(rule))]


def clean_lines(text: str, rules: list[LineRule]) -> tuple[str, dict[str, int]]:
    """`text` without the lines that a rule removes, and the number removed per rule name (the
    first rule that matches a line takes it); blank lines stay as they are."""
    kept, removed = [], {}
    for line in text.splitlines():
        stripped = line.strip()
        rule = next((rule for rule in rules if stripped and rule(stripped)), None)
        if rule is None:
            kept.append(line)
        else:
            removed[rule.__name__] = removed.get(rule.__name__, 0) + 1
    return "\n".join(kept).strip(), removed
