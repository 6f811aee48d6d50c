"""Stage `captures`: WARC pages -> one page per document id, with its Reddit provenance.

Runs between reading the WARC (shards/warc_source.py) and extraction, so that every later
stage sees each document id once. In order:

Pages come here without their bodies, only where each body is (`body_at`, see
shards/warc_source.py): every shuffle below moves a few hundred bytes per page, and
`ReadBodies` reads the kept page's body just before extraction.

1. Revisits. A `revisit` record has no body; its original is the `response` with the same
   payload digest whose URL is the revisit's WARC-Refers-To-Target-URI (its own URL when absent).
   The original present under the same document id: the revisit is one more capture of it and
   loses to it (step 3). The original present under another id: the revisit gets its body
   (`body_at`) and Content-Type and is a capture like any other. No original in the input: dropped as
   `revisit_without_original`.
2. Provenance (`webtext build --urls URLDIR`, a `webtext harvest` output). A page whose URL's
   `url_key` is in the table takes that row's provenance; a page that is not, but was reached
   from a URL that is through the WARC's own 3xx records (the read stage's `REDIRECTS` output,
   followed backwards up to `crawl.max_redirects` hops), takes that URL as `url`, its id and its
   provenance (`final_url` stays the fetched URL). Several table URLs leading to one page: the
   fewest hops wins, then the highest score, then the smallest url_key. The table's provenance
   replaces what the WARC carried. A page reached from no table URL is dropped as
   `not_in_url_table` (`build.unknown_urls: drop`) or kept with null provenance (`keep`).
   Without `--urls` the WARC's own provenance is used as is (null for foreign WARCs).
3. Duplicate captures. The pages of one id (a URL fetched twice, merged crawl folders, a live
   and an archive capture, revisits) are ranked and the first is kept, by `capture_rank`: a page
   with a body before a revisit without one, a live capture before an archive one, then the
   latest capture (archive capture time, else WARC-Date), then the smallest payload digest, then
   warc_file and warc_offset. Every other one is dropped as `duplicate_capture` with
   `duplicate_of` = the id, and the kept page's `dup_count` counts them.

The stage counts pages in, pages out and the three drop reasons; drops go to `DROPPED`, so the
audit table gets a row each.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Tuple
from urllib.parse import urljoin

import apache_beam as beam
from apache_beam.pvalue import AsDict, TaggedOutput

from core.beam import DROPPED, KEPT, StageCounter
from crawl.url_table import REQUIRED_COLUMNS
from crawl.urls import url_key
from shards.split import doc_id

STAGE = "captures"
PROVENANCE_FIELDS = ("post_ids", "subreddits", "score", "created_utc")
NOT_IN_URL_TABLE = "not_in_url_table"
DUPLICATE_CAPTURE = "duplicate_capture"
REVISIT_WITHOUT_ORIGINAL = "revisit_without_original"
UNKNOWN_URL_CHOICES = ("keep", "drop")
_NEXT_HOP = "next_hop"


# ---- pure rules -------------------------------------------------------------------------------

def capture_instant(page: dict) -> int | None:
    """When the page was captured, in microseconds since 1970: an archive capture's own time
    (ISO 8601, or a 14-digit Wayback timestamp), else the fetch's WARC-Date; None if neither parses."""
    for value in (page.get("capture_time"), page.get("crawl_time")):
        text = str(value or "").strip()
        if not text:
            continue
        try:
            if text.isdigit() and len(text) == 14:
                moment = datetime.strptime(text, "%Y%m%d%H%M%S")
            else:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            continue
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return round(moment.timestamp() * 1_000_000)
    return None


def capture_rank(page: dict) -> tuple:
    """Sort key of the captures of one document: the smallest is kept (see the module docstring)."""
    instant = capture_instant(page)
    digest = page.get("payload_digest")
    offset = page.get("warc_offset")
    return (page.get("body_at") is None, (page.get("source") or "live") != "live",
            instant is None, -(instant or 0), digest is None, digest or "",
            page.get("warc_file") or "", -1 if offset is None else offset)


def choose_capture(pages: Iterable[dict]) -> tuple[dict, list[dict]]:
    """(kept page, the other captures) of one document id; the kept one's `dup_count` counts them."""
    ranked = sorted(pages, key=capture_rank)
    kept, others = ranked[0], ranked[1:]
    if others:
        kept = {**kept, "dup_count": (kept.get("dup_count") or 0) + len(others)}
    return kept, others


def safe_url_key(url: str | None) -> str | None:
    try:
        return url_key(url) if url else None
    except ValueError:
        return None


def revisit_target_key(revisit: dict) -> str | None:
    """url_key of the URL whose capture a revisit repeats."""
    return safe_url_key(revisit.get("refers_to_uri") or revisit.get("final_url"))


def resolve_revisit(revisit: dict, originals: Iterable[dict]) -> dict | None:
    """The revisit as a capture (None: its original is absent). An original of the same id leaves
    it bodiless, so it loses to that original; one of another id lends it its body."""
    target = revisit_target_key(revisit)
    matching = sorted((page for page in originals if target and safe_url_key(page.get("final_url")) == target),
                      key=capture_rank)
    if not matching:
        return None
    original = matching[0]
    if original["id"] == revisit["id"]:
        return revisit
    return {**revisit, "body_at": original["body_at"], "content_type": original.get("content_type") or ""}


def redirect_edge(redirect: dict) -> tuple[str, str] | None:
    """(url_key of the redirect's target, url_key of the URL that redirected), or None for a
    redirect between unusable URLs or onto itself."""
    source = redirect.get("from_url")
    target_key = safe_url_key(urljoin(source or "", redirect.get("to_url") or ""))
    source_key = safe_url_key(source)
    if target_key is None or source_key is None or target_key == source_key:
        return None
    return target_key, source_key


def table_entry(row: dict) -> tuple[str, dict]:
    """(url_key, row) of one URL table row; a row without URL breaks the table contract."""
    if not row.get("url") or not row.get("url_key"):
        raise ValueError(f"URL table row without url or url_key: {row!r} (rerun `webtext harvest`)")
    return row["url_key"], row


def best_origin(candidates: Iterable[tuple[int, dict]]) -> tuple[int, dict]:
    """Of the (hops, table row) that lead to one page: fewest hops, highest score, smallest url_key."""
    return min(candidates, key=lambda item: (item[0], -(item[1].get("score") or 0), item[1]["url_key"]))


def with_provenance(page: dict, row: dict) -> dict:
    """The page as the document of URL table row `row`."""
    return {**page, "id": doc_id(row["url_key"]), "url": row["url"],
            "post_ids": sorted(row.get("post_ids") or []), "subreddits": sorted(row.get("subreddits") or []),
            "score": row.get("score"), "created_utc": row.get("first_created_utc")}


def without_provenance(page: dict) -> dict:
    return {**page, **{name: None for name in PROVENANCE_FIELDS}}


# ---- Beam glue --------------------------------------------------------------------------------

class _CountIn(beam.DoFn):
    def __init__(self):
        self.counter = StageCounter(STAGE)

    def process(self, page):
        self.counter.seen()
        yield page


def _split_revisits(page):
    if page.get("record_type") == "revisit" and page.get("body_at") is None:
        yield TaggedOutput("revisits", page)
    else:
        yield page


class _ResolveRevisits(beam.DoFn):
    """(digest, {revisits, originals}) -> revisits as captures; drops `revisit_without_original`."""

    def __init__(self):
        self.counter = StageCounter(STAGE)

    def process(self, element):
        _digest, groups = element
        originals = list(groups["originals"])
        for revisit in groups["revisits"]:
            resolved = resolve_revisit(revisit, originals)
            if resolved is None:
                yield self.counter.drop(REVISIT_WITHOUT_ORIGINAL, revisit)
            else:
                yield resolved


def _wanted_original(page, wanted):
    digest = page.get("payload_digest")
    if digest and page.get("body_at") is not None and digest in wanted:
        yield digest, page


def _relevant_rows(element):
    """(url_key, {table, wanted}) -> the table row, if some page or redirect names its key."""
    key, groups = element
    rows = list(groups["table"])
    if len(rows) > 1:
        raise ValueError(f"URL table: url_key {key!r} occurs {len(rows)} times; it must be unique "
                         "(rerun `webtext harvest`)")
    if rows and any(True for _ in groups["wanted"]):
        yield key, rows[0]


class _Hop(beam.DoFn):
    """(url_key, {walkers, table, sources}) -> (start key, (hops, row)) where url_key is in the
    table; else, unless this is the last hop, each walker moved to every URL that redirected to
    url_key (on `NEXT_HOP`)."""

    def __init__(self, hops: int, last: bool):
        self.hops = hops
        self.last = last

    def process(self, element):
        _key, groups = element
        rows = list(groups["table"])
        if rows:
            for start in groups["walkers"]:
                yield start, (self.hops, rows[0])
        elif not self.last:
            sources = list(groups["sources"])
            for start in groups["walkers"]:
                for source in sources:
                    yield TaggedOutput(_NEXT_HOP, (source, start))


class _JoinProvenance(beam.DoFn):
    """(page url_key, {pages, origins}) -> pages with the table's provenance; drops `not_in_url_table`."""

    def __init__(self, keep_unknown: bool):
        self.keep_unknown = keep_unknown
        self.counter = StageCounter(STAGE)

    def process(self, element):
        _key, groups = element
        origins = list(groups["origins"])
        for page in groups["pages"]:
            if origins:
                yield with_provenance(page, origins[0])
            elif self.keep_unknown:
                yield without_provenance(page)
            else:
                yield self.counter.drop(NOT_IN_URL_TABLE, page)


class _ChooseCapture(beam.DoFn):
    """(id, pages) -> the kept page; drops the others as `duplicate_capture` of it."""

    def __init__(self):
        self.counter = StageCounter(STAGE)

    def process(self, element):
        doc_id_, pages = element
        kept, others = choose_capture(pages)
        for page in others:
            yield self.counter.drop(DUPLICATE_CAPTURE, page, duplicate_of=doc_id_)
        self.counter.kept()
        yield kept


def _edges(redirect: dict):
    edge = redirect_edge(redirect)
    if edge is not None:
        yield edge


def _page_key(page: dict) -> str:
    return safe_url_key(page.get("url")) or ""


class Captures(beam.PTransform):
    """{"pages": page dicts, "redirects": 3xx records} -> (one page per id, drops) as the module
    docstring describes. `url_files`: the `urls-*.parquet` files of `--urls` (None: no table);
    `unknown_urls`: `keep` or `drop` pages no table URL leads to; `max_redirects`: hops followed."""

    def __init__(self, url_files: list[str] | None, unknown_urls: str, max_redirects: int):
        super().__init__()
        if unknown_urls not in UNKNOWN_URL_CHOICES:
            raise ValueError(f"unknown_urls must be one of {UNKNOWN_URL_CHOICES}, not {unknown_urls!r}")
        self.url_files = url_files
        self.keep_unknown = unknown_urls == "keep"
        self.max_redirects = max_redirects

    def expand(self, inputs):
        pages = inputs["pages"] | "CountIn" >> beam.ParDo(_CountIn())
        split = pages | "SplitRevisits" >> beam.FlatMap(_split_revisits).with_outputs("revisits", main="responses")
        drops = []
        revisits = split.revisits
        wanted = (revisits | "RevisitDigests" >> beam.Map(lambda page: (page.get("payload_digest") or "", True))
                  | "DistinctDigests" >> beam.Distinct())
        originals = split.responses | "Originals" >> beam.FlatMap(_wanted_original, AsDict(wanted))
        resolved = (
            {"revisits": revisits | "RevisitsByDigest" >> beam.Map(lambda page: (page.get("payload_digest") or "", page)),
             "originals": originals}
            | "GroupByDigest" >> beam.CoGroupByKey()
            | "ResolveRevisits" >> beam.ParDo(_ResolveRevisits()).with_outputs(DROPPED, main=KEPT)
        )
        drops.append(resolved[DROPPED])
        captures = (split.responses, resolved[KEPT]) | "AllCaptures" >> beam.Flatten()
        if self.url_files is not None:
            joined = captures | "UrlTable" >> _UrlTableJoin(self.url_files, inputs["redirects"], self.keep_unknown,
                                                              self.max_redirects)
            captures = joined[KEPT]
            drops.append(joined[DROPPED])
        chosen = (
            captures
            | "ById" >> beam.Map(lambda page: (page["id"], page))
            | "GroupById" >> beam.GroupByKey()
            | "ChooseCapture" >> beam.ParDo(_ChooseCapture()).with_outputs(DROPPED, main=KEPT)
        )
        drops.append(chosen[DROPPED])
        return chosen[KEPT], tuple(drops) | "CapturesDropped" >> beam.Flatten()


class _UrlTableJoin(beam.PTransform):
    """Pages -> pages with the URL table's provenance (main `KEPT`) and `not_in_url_table` drops."""

    def __init__(self, url_files: list[str], redirects, keep_unknown: bool, max_redirects: int):
        super().__init__()
        self.url_files = url_files
        self.redirects = redirects
        self.keep_unknown = keep_unknown
        self.max_redirects = max_redirects

    def expand(self, pages):
        table = (pages.pipeline
                 | "UrlFiles" >> beam.Create(self.url_files)
                 | "ReadUrlTable" >> beam.io.ReadAllFromParquet(columns=list(REQUIRED_COLUMNS))
                 | "ByUrlKey" >> beam.Map(table_entry))
        edges = (self.redirects
                 | "RedirectEdges" >> beam.FlatMap(_edges)
                 | "DistinctEdges" >> beam.Distinct())
        page_keys = pages | "PageKeys" >> beam.Map(_page_key) | "DistinctPageKeys" >> beam.Distinct()
        wanted = ((page_keys, edges | "Sources" >> beam.Values()) | "WantedKeys" >> beam.Flatten()
                  | "WantedPairs" >> beam.Map(lambda key: (key, True)))
        # Only rows some page or redirect names take part in the hop rounds below.
        table = ({"table": table, "wanted": wanted} | "GroupTable" >> beam.CoGroupByKey()
                 | "RelevantRows" >> beam.FlatMap(_relevant_rows))
        walkers = page_keys | "StartWalk" >> beam.Map(lambda key: (key, key))
        found = []
        for hops in range(self.max_redirects + 1):  # one shuffle per hop: walkers, table rows, redirects
            hop = ({"walkers": walkers, "table": table, "sources": edges} | f"GroupHop{hops}" >> beam.CoGroupByKey()
                   | f"Hop{hops}" >> beam.ParDo(_Hop(hops, hops == self.max_redirects))
                   .with_output_types(Tuple[str, Any]).with_outputs(_NEXT_HOP, main="hits"))
            found.append(hop.hits)
            walkers = hop[_NEXT_HOP]
        origins = (tuple(found) | "AllHits" >> beam.Flatten()
                   | "HitsByPage" >> beam.GroupByKey()
                   | "BestOrigin" >> beam.MapTuple(lambda key, candidates: (key, best_origin(candidates)[1])))
        return ({"pages": pages | "ByPageKey" >> beam.Map(lambda page: (_page_key(page), page)), "origins": origins}
                | "JoinOrigins" >> beam.CoGroupByKey()
                | "JoinProvenance" >> beam.ParDo(_JoinProvenance(self.keep_unknown)).with_outputs(DROPPED, main=KEPT))
