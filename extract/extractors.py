"""Main-text extraction from decoded HTML: trafilatura, newspaper4k, or both combined.

The GPT-2 paper combined the Dragnet and Newspaper extractors. Here trafilatura plays
Dragnet's part (it scores higher on the evaluation set) and `ensemble` adds the long
paragraphs newspaper4k finds that trafilatura missed. Extractors get HTML that is already
in memory and never a URL to fetch: the URL is only a hint for metadata. `extract_page` then
removes the lines the enabled line rules match (extract/lines.py) from whichever text came out.
"""

from __future__ import annotations

import dataclasses
import re
import warnings

from extract.config import ExtractConfig
from extract.decode import DecodeError, decode_html
from extract.lines import clean_lines, enabled_rules

_WHITESPACE = re.compile(r"\s+")


@dataclasses.dataclass(frozen=True)
class Extraction:
    text: str
    title: str | None
    extractor: str  # what produced the text: trafilatura, newspaper or trafilatura+newspaper


@dataclasses.dataclass(frozen=True)
class PageOutcome:
    """What became of one raw page: `status` is `ok` or the drop reason."""

    status: str  # ok | decode_error | no_text | extract_error | extract_timeout
    extraction: Extraction | None = None
    encoding: str | None = None
    error: str | None = None
    lines_removed: dict[str, int] = dataclasses.field(default_factory=dict)  # by line rule name


def _paragraphs(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _normalize(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def trafilatura_extract(html: str, url: str | None, config: ExtractConfig) -> Extraction | None:
    import trafilatura
    from trafilatura.metadata import extract_title
    from trafilatura.utils import load_html

    tree = load_html(html)
    if tree is None:
        return None
    title = extract_title(tree)  # before extract(), which prunes the tree in place
    text = trafilatura.extract(
        tree,
        url=url,
        include_comments=False,  # reader comments are boilerplate for WebText (+0.005 F1)
        include_tables=config.include_tables,
        favor_precision=config.favor == "precision",
        favor_recall=config.favor == "recall",
    )
    if not text or not text.strip():
        return None
    return Extraction(text.strip(), title, "trafilatura")


def newspaper_extract(html: str, url: str | None, config: ExtractConfig) -> Extraction | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "nltk is not installed": only its NLP extras need it
        from newspaper import Article
        from newspaper.configuration import Configuration

    newspaper_config = Configuration()
    newspaper_config.fetch_images = False  # never download images to size them
    newspaper_config.follow_meta_refresh = False  # never follow <meta refresh> to another URL
    article = Article(url or "", config=newspaper_config)
    article.download(input_html=html)  # given HTML: download() makes no request
    article.parse()
    text = "\n".join(_paragraphs(article.text or ""))
    if not text:
        return None
    return Extraction(text, article.title or None, "newspaper")


def merge_paragraphs(primary: str, secondary: str, min_words: int) -> tuple[str, int]:
    """`primary` plus the paragraphs of `secondary` with >= min_words words that it lacks, each
    inserted after the paragraph `secondary` had before it. Returns (text, paragraphs added)."""
    merged = _paragraphs(primary)
    normalized = [_normalize(paragraph) for paragraph in merged]
    anchor, added = -1, 0
    for paragraph in _paragraphs(secondary):
        needle = _normalize(paragraph)
        found = next((index for index, known in enumerate(normalized) if needle in known), None)
        if found is not None:
            anchor = found
        elif len(needle.split()) >= min_words:
            anchor += 1
            merged.insert(anchor, paragraph)
            normalized.insert(anchor, needle)
            added += 1
    return "\n".join(merged), added


def combine(primary: Extraction | None, secondary: Extraction | None, config: ExtractConfig) -> Extraction | None:
    """The ensemble rule: trafilatura's text (`primary`) plus newspaper's (`secondary`) long
    paragraphs it missed (+0.002 F1 on the eval set); either one alone when the other is empty."""
    if primary is None or secondary is None:
        return primary or secondary
    text, added = merge_paragraphs(primary.text, secondary.text, config.ensemble_min_paragraph_words)
    title = primary.title or secondary.title
    return Extraction(text, title, "trafilatura+newspaper" if added else "trafilatura")


def ensemble_extract(html: str, url: str | None, config: ExtractConfig) -> Extraction | None:
    return combine(trafilatura_extract(html, url, config), newspaper_extract(html, url, config), config)


EXTRACTORS = {
    "trafilatura": trafilatura_extract,
    "newspaper": newspaper_extract,
    "ensemble": ensemble_extract,
}


def extract(html: str, url: str | None, config: ExtractConfig) -> Extraction | None:
    """Main text and title of a decoded page with the configured extractor; None if no text."""
    return EXTRACTORS[config.extractor](html, url, config)


def clean(extraction: Extraction, config: ExtractConfig) -> tuple[Extraction | None, dict[str, int]]:
    """The extraction without the lines that the enabled line rules remove (None if no line is
    left), and the lines removed per rule: the one step between extractor and quality rules."""
    text, lines_removed = clean_lines(extraction.text, enabled_rules(config))
    return (dataclasses.replace(extraction, text=text) if text else None), lines_removed


def extract_page(body: bytes, content_type: str | None, url: str | None, config: ExtractConfig) -> PageOutcome:
    """Raw page to outcome: decode, extract, clean lines. An extractor exception is an outcome, not a crash."""
    try:
        html, encoding = decode_html(body, content_type)
    except DecodeError as error:
        return PageOutcome("decode_error", error=str(error))
    try:
        extraction = extract(html, url, config)
    except Exception as error:  # noqa: BLE001 - any extractor bug costs this page only
        return PageOutcome("extract_error", encoding=encoding, error=f"{type(error).__name__}: {error}")
    if extraction is None:
        return PageOutcome("no_text", encoding=encoding)
    extraction, lines_removed = clean(extraction, config)
    if extraction is None:  # every line was page furniture
        return PageOutcome("no_text", encoding=encoding, lines_removed=lines_removed)
    return PageOutcome("ok", extraction, encoding, lines_removed=lines_removed)
