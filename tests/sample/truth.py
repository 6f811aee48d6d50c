"""The bundled sample's ground truth, which only tests read: the crawl outcome every start URL must
end in (each route's `expect` and the `offsite` table of routes.json, with the crawl settings of
sample/README.md), what the harvest must make of the dump (RS_sample.expected.json), and what
`crawl.source: live_then_archive` makes of the dead links with the bundled archive
(archive/captures.json)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from crawl.archive import RECOVERABLE_OUTCOMES
from sample.bundled import ensure_built

BUNDLED = ensure_built()  # generated on the first import, afterwards only checked


def expected_outcomes(web_dir: Path) -> dict[str, str]:
    """Start URL -> the crawl outcome the crawler must record for it."""
    doc = json.loads((Path(web_dir) / "routes.json").read_text(encoding="utf-8"))
    expected = {"http://" + key: route["expect"] for key, route in doc["routes"].items() if route.get("expect")}
    expected.update(doc.get("offsite", {}))
    return expected


@functools.cache
def dump_truth() -> dict:
    """RS_sample.expected.json: every line's category, the totals and the URL table of the harvest."""
    return json.loads(BUNDLED.truth.read_text(encoding="utf-8"))


def expected_outcomes_with_archive(web_dir: Path, archive_dir: Path) -> dict[str, tuple[str, str]]:
    """Start URL -> (outcome, source) under `crawl.source: live_then_archive` with the bundled
    archive: a recoverable live outcome becomes `ok` from the archive when captures.json says the
    archive recovers the URL, else `archive_missing`; everything else stays as live."""
    recovered = json.loads((Path(archive_dir) / "captures.json").read_text(encoding="utf-8"))["recovered"]
    return {url: (("ok" if url in recovered else "archive_missing"), "archive") if outcome in RECOVERABLE_OUTCOMES
            else (outcome, "live") for url, outcome in expected_outcomes(web_dir).items()}
