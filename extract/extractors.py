"""Main-text extraction from decoded HTML: trafilatura, newspaper4k, or both combined.

The GPT-2 paper combined the Dragnet and Newspaper extractors. Here trafilatura plays
Dragnet's part (it scores higher on the evaluation set) and `ensemble` adds the long
paragraphs newspaper4k finds that trafilatura missed. Extractors get HTML that is already
in memory and never a URL to fetch: the URL is only a hint for metadata.
"""

from __future__ import annotations

import dataclasses
import re
import warnings

from extract.config import ExtractConfig
from extract.decode import DecodeError, decode_html

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


def _paragraphs(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _normalize(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def trafilatura_extract(html: str, url: str | None, cfg: ExtractConfig) -> Extraction | None:
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
        include_tables=cfg.include_tables,
        favor_precision=cfg.favor == "precision",
        favor_recall=cfg.favor == "recall",
    )
    if not text or not text.strip():
        return None
    return Extraction(text.strip(), title, "trafilatura")


def newspaper_extract(html: str, url: str | None, cfg: ExtractConfig) -> Extraction | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "nltk is not installed": only its NLP extras need it
        from newspaper import Article
        from newspaper.configuration import Configuration

    config = Configuration()
    config.fetch_images = False  # never download images to size them
    config.follow_meta_refresh = False  # never follow <meta refresh> to another URL
    article = Article(url or "", config=config)
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
    normalized = [_normalize(p) for p in merged]
    anchor, added = -1, 0
    for paragraph in _paragraphs(secondary):
        needle = _normalize(paragraph)
        found = next((i for i, p in enumerate(normalized) if needle in p), None)
        if found is not None:
            anchor = found
        elif len(needle.split()) >= min_words:
            anchor += 1
            merged.insert(anchor, paragraph)
            normalized.insert(anchor, needle)
            added += 1
    return "\n".join(merged), added


def combine(primary: Extraction | None, secondary: Extraction | None, cfg: ExtractConfig) -> Extraction | None:
    """The ensemble rule: trafilatura's text (`primary`) plus newspaper's (`secondary`) long
    paragraphs it missed (+0.002 F1 on the eval set); either one alone when the other is empty."""
    if primary is None or secondary is None:
        return primary or secondary
    text, added = merge_paragraphs(primary.text, secondary.text, cfg.ensemble_min_paragraph_words)
    title = primary.title or secondary.title
    return Extraction(text, title, "trafilatura+newspaper" if added else "trafilatura")


def ensemble_extract(html: str, url: str | None, cfg: ExtractConfig) -> Extraction | None:
    return combine(trafilatura_extract(html, url, cfg), newspaper_extract(html, url, cfg), cfg)


EXTRACTORS = {
    "trafilatura": trafilatura_extract,
    "newspaper": newspaper_extract,
    "ensemble": ensemble_extract,
}


def extract(html: str, url: str | None, cfg: ExtractConfig) -> Extraction | None:
    """Main text and title of a decoded page with the configured extractor; None if no text."""
    return EXTRACTORS[cfg.extractor](html, url, cfg)


def extract_page(body: bytes, content_type: str | None, url: str | None, cfg: ExtractConfig) -> PageOutcome:
    """Raw page to outcome: decode, then extract. An extractor exception is an outcome, not a crash."""
    try:
        html, encoding = decode_html(body, content_type)
    except DecodeError as exc:
        return PageOutcome("decode_error", error=str(exc))
    try:
        extraction = extract(html, url, cfg)
    except Exception as exc:  # noqa: BLE001 - any extractor bug costs this page only
        return PageOutcome("extract_error", encoding=encoding, error=f"{type(exc).__name__}: {exc}")
    if extraction is None:
        return PageOutcome("no_text", encoding=encoding)
    return PageOutcome("ok", extraction, encoding)


def _read_html_file(path: str) -> bytes:
    """Bytes of a .html or gzip-compressed .html.gz file (recognised by its magic bytes)."""
    import gzip

    with open(path, "rb") as fh:
        data = fh.read()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise OSError(f"corrupt gzip data: {exc}") from exc
    return data


def _cmd_extract(args, cfg) -> int:
    import json
    import sys
    from collections import Counter

    from tqdm import tqdm

    from extract.isolation import IsolatedExtractor
    from extract.lang import identify

    ecfg = cfg.extract if args.extractor is None else cfg.extract.model_copy(update={"extractor": args.extractor})
    outcomes: Counter = Counter()
    with IsolatedExtractor(ecfg) as isolated:
        for path in tqdm(args.files, desc="extract", unit="file", disable=len(args.files) < 2, file=sys.stderr):
            try:
                body = _read_html_file(path)
            except OSError as exc:
                print(f"webtext extract: error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
                outcomes["unreadable"] += 1
                continue
            outcome = isolated(body, None, args.url)
            outcomes[outcome.status] += 1
            record = {"path": path, "status": outcome.status, "text": None, "title": None,
                      "extractor": None, "lang": None, "lang_confidence": None, "encoding": outcome.encoding}
            if outcome.extraction is not None:
                lang, confidence = identify(outcome.extraction.text, ecfg)
                record.update(text=outcome.extraction.text, title=outcome.extraction.title,
                              extractor=outcome.extraction.extractor, lang=lang, lang_confidence=confidence)
            elif outcome.error:
                record["error"] = outcome.error
            print(json.dumps(record, ensure_ascii=False), flush=True)
    summary = ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))
    print(f"webtext extract: {len(args.files)} file(s): {summary}", file=sys.stderr)
    return 1 if outcomes["unreadable"] else 0


def add_cli(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "extract",
        parents=[common],
        help="print the main text of local .html/.html.gz files as JSON lines",
        description=(
            "Decode and extract the main text of local HTML files exactly as the build pipeline "
            "does (charset detection, the configured extractor, per-page time limit), and print one "
            'JSON object per file: {"path", "status", "text", "title", "extractor", "lang", ...}. '
            "text is null when nothing was extracted. Quality and language filters are NOT applied. "
            "Unreadable files are reported on stderr and make the exit status 1."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help=".html or .html.gz file (gzip is detected)")
    parser.add_argument("--url", help="the page's URL, a hint for metadata (nothing is fetched)")
    parser.add_argument(
        "--extractor", choices=sorted(EXTRACTORS), help="override extract.extractor from the config"
    )
    parser.set_defaults(func=_cmd_extract)
