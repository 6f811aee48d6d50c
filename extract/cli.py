"""Subcommand `extract`: main text of local HTML files, exactly as the build pipeline does it."""

from __future__ import annotations

import sys
import typing

from extract.config import ExtractConfig


def _read_html_file(path: str) -> bytes:
    """Bytes of a .html or gzip-compressed .html.gz file (recognised by its magic bytes)."""
    import gzip

    with open(path, "rb") as file:
        data = file.read()
    if data[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise OSError(f"corrupt gzip data: {error}") from error
    return data


def _run_extract(args, config) -> int:
    import json
    from collections import Counter

    from tqdm import tqdm

    from extract.isolation import IsolatedExtractor
    from extract.language import identify

    extract_config = config.extract
    if args.extractor is not None:
        extract_config = extract_config.model_copy(update={"extractor": args.extractor})
    outcomes: Counter = Counter()
    with IsolatedExtractor(extract_config) as isolated:
        for path in tqdm(args.files, desc="extract", unit="file", disable=len(args.files) < 2, file=sys.stderr):
            try:
                body = _read_html_file(path)
            except OSError as error:
                print(f"webtext extract: error: cannot read {path}: {error.strerror or error}", file=sys.stderr)
                outcomes["unreadable"] += 1
                continue
            outcome = isolated(body, None, args.url)
            outcomes[outcome.status] += 1
            record = {"path": path, "status": outcome.status, "text": None, "title": None,
                      "extractor": None, "lang": None, "lang_confidence": None, "encoding": outcome.encoding}
            if outcome.extraction is not None:
                language, confidence = identify(outcome.extraction.text, extract_config)
                record.update(text=outcome.extraction.text, title=outcome.extraction.title,
                              extractor=outcome.extraction.extractor, lang=language, lang_confidence=confidence)
            elif outcome.error:
                record["error"] = outcome.error
            print(json.dumps(record, ensure_ascii=False), flush=True)
    summary = ", ".join(f"{status}={count}" for status, count in sorted(outcomes.items()))
    print(f"webtext extract: {len(args.files)} file(s): {summary}", file=sys.stderr)
    return 1 if outcomes["unreadable"] else 0


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "extract",
        parents=[common],
        help="print the main text of local .html/.html.gz files as JSON lines",
        description=(
            "Decode and extract the main text of local HTML files exactly as the build pipeline "
            "does (charset detection, the configured extractor, per-page time limit, line cleaning of "
            "bylines and table debris), and print one "
            'JSON object per file: {"path", "status", "text", "title", "extractor", "lang", ...}. '
            "text is null when nothing was extracted. Quality and language filters are NOT applied. "
            "Unreadable files are reported on stderr and make the exit status 1."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help=".html or .html.gz file (gzip is detected)")
    parser.add_argument("--url", help="the page's URL, a hint for metadata (nothing is fetched)")
    parser.add_argument(
        "--extractor",
        choices=sorted(typing.get_args(ExtractConfig.model_fields["extractor"].annotation)),
        help="override extract.extractor from the config",
    )
    parser.set_defaults(func=_run_extract)
