"""The rules of `webtext harvest`, free of Beam: a dump line -> its drop reason or a kept
`Post`, and the posts of one url_key -> its URL table row.

WebText (Radford et al., 2019) scraped "all outbound links from Reddit ... which received at
least 3 karma". Each rule below is a function named after the one drop reason it returns
(or None where the record passes). `HarvestRules.judge` applies them in this order, the first
that applies wins: line_too_long, empty_line, malformed_json (incl. NUL garbage, invalid
UTF-8, JSON that is not an object), promoted, bad_score, bad_value (score), low_score,
self_post, nsfw, missing_url, missing_id, bad_created_utc, bad_value (created_utc),
outside_date_window, bad_scheme, wikipedia and
blocked_domain on the posted host, private_address and bad_url from normalising, wikipedia
and blocked_domain again on the normalised host, blocked_extension. After merging per
url_key (`merge_posts`, `url_row`): duplicate_post (the same submission id seen again for
the same URL, e.g. overlapping dumps; the highest score wins), and under
`score_rule: sum_per_url` low_score per URL (all posts of a URL whose summed score is below
`min_score`).

Which URL a row keeps: variants of one `url_key` differ only in scheme and `www.`; the row's
`url` is the (normalised) variant of its highest-scored post, ties going to the earliest post:
the form most readers clicked is the one known to work, and the scheme and host are kept as
posted (no guessed https upgrade). `post_ids` are in numeric base36 order, which is posting
order (a plain string sort would put "100" before "99").

Speed: every line is parsed with orjson (json as its fallback, see `parse_record`) and then
judged on the parsed dict. A raw-bytes pre-check for the common drops used to skip the parse,
but with orjson the byte scans it needs cost more than the parse they save. Kept URLs already
in canonical form skip w3lib (crawl/urls.py). One function per rule costs ~5% of the rules'
time over writing them out in one function (`python -m bench harvest`, the `filter` row).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import orjson

from crawl.config import HarvestConfig
from crawl.urls import (
    SCHEMES,
    TrackingParams,
    domain_of_normalized,
    extension_of,
    host_in,
    host_of,
    host_of_normalized,
    is_private_host,
    key_of_normalized,
    normalize,
    scheme_of,
)


class Post(NamedTuple):
    """A kept submission."""

    post_id: str
    score: int
    created_utc: int
    subreddit: str
    title: str
    url: str  # normalised


class UrlRow(NamedTuple):
    """One row of the URL table (docs/contracts.md), in its column order."""

    url: str
    url_key: str
    domain: str
    score: int
    post_ids: list[str]
    subreddits: list[str]
    titles: list[str]
    first_created_utc: int
    num_posts: int


# -- reading values ----------------------------------------------------------------------------

_FLOAT_EXACT = 2**53
# The values a kept post may carry, [low, high). No Reddit score comes near 2**31 (the highest
# are below 10**6), and with this bound a URL's summed score (score_rule sum_per_url) stays
# inside the table's int64 however many posts it merges. created_utc: 1970 up to the end of
# year 9999, a time every later stage (Python's datetime included) can represent.
SCORE_RANGE = (-2**31, 2**31)
CREATED_UTC_RANGE = (0, 253402300800)


def parse_int(value) -> int | None:
    """Reddit numbers arrive as int, float or digit string (`int(float(x))`); None if none."""
    if type(value) is int and -_FLOAT_EXACT <= value <= _FLOAT_EXACT:
        return value  # the common case, skipping the float round trip (exact up to 2**53)
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None


def post_id_order(post_id: str) -> tuple[int, str]:
    """Base36 ids sort numerically (= chronologically) by length first, then by digits."""
    return len(post_id), post_id


def parse_record(line: bytes):
    """The JSON value of a line, or None if it is no JSON.

    orjson parses (about 4x faster than `json`); what it rejects goes to `json.loads`, so the
    values `json` alone accepts (NaN, Infinity, 1e400, lone surrogates, a UTF-8 BOM, UTF-16
    lines) still parse as before. Where both accept a line they agree, except that orjson
    reads integers beyond 64 bits as floats, which `parse_int` turns into the same int.
    """
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, [[[[...
        return None


# -- line rules --------------------------------------------------------------------------------

def line_too_long(line: bytes | None) -> str | None:
    """crawl/dumps.py hands over a line beyond `max_line_bytes` as None, unread."""
    return "line_too_long" if line is None else None


def empty_line(stripped_line: bytes) -> str | None:
    return "empty_line" if not stripped_line else None


def malformed_json(record) -> str | None:
    """No JSON, or JSON that is no object (`parse_record` gives None for no JSON)."""
    return "malformed_json" if not isinstance(record, dict) else None


# -- record rules ------------------------------------------------------------------------------

def promoted(record: dict) -> str | None:
    """Ads are not community-voted links."""
    return "promoted" if record.get("promoted") else None


def bad_score(score: int | None) -> str | None:
    """A score that is present but no number (`parse_int` gives None)."""
    return "bad_score" if score is None else None


def bad_value(number: int, valid: tuple[int, int]) -> str | None:
    """A number outside the range [low, high) its column allows (SCORE_RANGE,
    CREATED_UTC_RANGE): 1e20 or 2**63 would not fit the URL table's int64 columns."""
    low, high = valid
    return "bad_value" if not low <= number < high else None


def low_score(score: int, min_score: int) -> str | None:
    """WebText's karma rule."""
    return "low_score" if score < min_score else None


def self_post(record: dict) -> str | None:
    """Self posts link to their own Reddit thread, not to the web."""
    return "self_post" if record.get("is_self") else None


def nsfw(record: dict) -> str | None:
    return "nsfw" if record.get("over_18") else None


def missing_url(record: dict) -> str | None:
    url = record.get("url")
    return "missing_url" if not isinstance(url, str) or not url.strip() else None


def missing_id(record: dict) -> str | None:
    post_id = record.get("id")
    return "missing_id" if not isinstance(post_id, str) or not post_id else None


def bad_created_utc(created_utc: int | None) -> str | None:
    """A creation time that is missing or no number (`parse_int` gives None)."""
    return "bad_created_utc" if created_utc is None else None


def outside_date_window(created_utc: int, after: int | None, before: int | None) -> str | None:
    """Created before `after` (inclusive bound) or at/after `before` (exclusive), in epoch seconds."""
    if (after is not None and created_utc < after) or (before is not None and created_utc >= before):
        return "outside_date_window"
    return None


# -- URL rules ---------------------------------------------------------------------------------

def bad_scheme(raw_url: str) -> str | None:
    return "bad_scheme" if scheme_of(raw_url) not in SCHEMES else None


def wikipedia(host: str, wikipedia_domains: frozenset[str]) -> str | None:
    """GPT-2 removed Wikipedia from WebText because eval sets are built from it."""
    return "wikipedia" if host_in(host, wikipedia_domains) else None


def blocked_domain(host: str, blocked_domains: frozenset[str]) -> str | None:
    """Media and social hosts and Reddit itself: no article text to extract."""
    return "blocked_domain" if host_in(host, blocked_domains) else None


def private_address(host: str) -> str | None:
    """A host that is no public address (localhost, 10.0.0.1, 2130706433): never crawled."""
    return "private_address" if is_private_host(host) else None


def bad_url(url: str | None) -> str | None:
    """A URL that `normalize` rejects (no valid host or port, a host IDNA rejects, ...)."""
    return "bad_url" if url is None else None


def blocked_extension(url: str, blocked_extensions: frozenset[str]) -> str | None:
    """Images, video, audio, archives, documents: no web page."""
    return "blocked_extension" if extension_of(url) in blocked_extensions else None


# -- all record rules in order -----------------------------------------------------------------

def _epoch(when: datetime | None) -> int | None:
    return None if when is None else int(when.timestamp())


class HarvestRules:
    """The record rules of the harvest with their settings, compiled once from the config."""

    def __init__(self, harvest_config: HarvestConfig):
        self.min_score = harvest_config.min_score
        self.score_per_post = harvest_config.score_rule == "max_post"  # else per URL, in `url_row`
        self.drop_self_posts = harvest_config.drop_self_posts
        self.drop_nsfw = harvest_config.drop_nsfw
        self.created_after = _epoch(harvest_config.created_after)
        self.created_before = _epoch(harvest_config.created_before)
        self.blocked_domains = frozenset(harvest_config.blocked_domains)
        self.wikipedia_domains = frozenset(harvest_config.wikipedia_domains)
        self.blocked_extensions = frozenset(harvest_config.blocked_extensions)
        self.tracking = TrackingParams(harvest_config.tracking_params)

    def judge(self, line: bytes | None) -> str | tuple[str, Post]:
        """The first drop reason that applies to one dump line, or (url_key, post) if it is kept."""
        if line is None:
            return line_too_long(line)
        line = line.strip()
        record = parse_record(line) if line else None
        if type(record) is not dict:  # asked only then: two calls per line cost 2% of the harvest
            return empty_line(line) or malformed_json(record)
        score = record.get("score")
        score = 0 if score is None else parse_int(score)  # a missing score counts as 0, None: no number
        reason = (
            promoted(record)
            or bad_score(score)
            or bad_value(score, SCORE_RANGE)
            or (self.score_per_post and low_score(score, self.min_score))
            or (self.drop_self_posts and self_post(record))
            or (self.drop_nsfw and nsfw(record))
            or missing_url(record)
            or missing_id(record)
        )
        if reason:
            return reason
        created_utc = parse_int(record.get("created_utc"))
        reason = (
            bad_created_utc(created_utc)
            or bad_value(created_utc, CREATED_UTC_RANGE)
            or outside_date_window(created_utc, self.created_after, self.created_before)
        )
        if reason:
            return reason
        reason, url = self.judge_url(record["url"])
        if reason:
            return reason
        title, subreddit = record.get("title"), record.get("subreddit")
        post = Post(
            post_id=record["id"],
            score=score,
            created_utc=created_utc,
            subreddit=subreddit if isinstance(subreddit, str) else "",
            title=title if isinstance(title, str) else "",
            url=url,
        )
        return key_of_normalized(url), post

    def judge_url(self, raw_url: str) -> tuple[str | None, str | None]:
        """(drop reason, None) or (None, normalised URL) of a posted URL."""
        raw_url = raw_url.strip()
        reason = bad_scheme(raw_url)
        if reason:
            return reason, None
        posted_host = host_of(raw_url)  # judged before normalising: saves normalising media links
        reason = wikipedia(posted_host, self.wikipedia_domains) or blocked_domain(posted_host, self.blocked_domains)
        if reason:
            return reason, None
        url = normalize(raw_url, self.tracking)
        # localhost and legacy IP forms (2130706433) do not normalise: judge the posted host then
        host = posted_host if url is None else host_of_normalized(url)
        reason = private_address(host) or bad_url(url)
        if not reason and host != posted_host:  # IDNA-encoded or its case changed: the lists may match now
            reason = wikipedia(host, self.wikipedia_domains) or blocked_domain(host, self.blocked_domains)
        reason = reason or blocked_extension(url, self.blocked_extensions)
        return (reason, None) if reason else (None, url)

    def judge_lines(self, lines: list, drops: Counter) -> list[tuple[str, Post]]:
        """Kept (url_key, post) pairs of a batch of lines; drops counted into `drops`."""
        kept = []
        for line in lines:
            result = self.judge(line)
            if type(result) is str:
                drops[result] += 1
            else:
                kept.append(result)
        return kept


# -- posts per URL -----------------------------------------------------------------------------

@dataclass(slots=True)
class UrlPosts:
    """The posts merged under one url_key."""

    seen: int  # posts seen, repeated submission ids included
    by_id: dict[str, Post]  # the highest-scored copy of each submission id


def merge_posts(pairs: Iterable[tuple[str, Post]]) -> dict[str, UrlPosts]:
    """The posts of (url_key, post) pairs per url_key. A repeated submission id keeps its
    highest-scored copy (scores are snapshots, a later dump usually saw more votes)."""
    merged: dict[str, UrlPosts] = {}
    for key, post in pairs:
        entry = merged.get(key)
        if entry is None:
            merged[key] = UrlPosts(1, {post.post_id: post})
            continue
        entry.seen += 1
        kept = entry.by_id.get(post.post_id)
        if kept is None or (post.score, post) > (kept.score, kept):
            entry.by_id[post.post_id] = post
    return merged


def url_row(url_key: str, posts: UrlPosts, score_rule: str, min_score: int, tally: Counter) -> UrlRow | None:
    """The URL table row of one url_key, or None if its posts fall below `min_score` under
    score_rule sum_per_url; its posts are counted into `tally` as kept, duplicate_post or
    low_score."""
    if posts.seen == 1 and score_rule == "max_post":  # most URLs: one post, no choice to make
        (post,) = posts.by_id.values()
        tally["kept"] += 1
        return UrlRow(post.url, url_key, domain_of_normalized(post.url), post.score, [post.post_id],
                      [post.subreddit], [post.title], post.created_utc, 1)
    ordered = sorted(posts.by_id.values(), key=lambda p: post_id_order(p.post_id))
    if posts.seen > len(ordered):
        tally["duplicate_post"] += posts.seen - len(ordered)
    if score_rule == "sum_per_url":
        score = sum(p.score for p in ordered)
        if score < min_score:
            tally["low_score"] += len(ordered)
            return None
    else:
        score = max(p.score for p in ordered)
    tally["kept"] += len(ordered)
    chosen = min(ordered, key=lambda p: (-p.score, p.created_utc, post_id_order(p.post_id)))
    return UrlRow(
        url=chosen.url,
        url_key=url_key,
        domain=domain_of_normalized(chosen.url),
        score=score,
        post_ids=[p.post_id for p in ordered],
        subreddits=sorted({p.subreddit for p in ordered}),
        titles=[p.title for p in ordered],
        first_created_utc=min(p.created_utc for p in ordered),
        num_posts=len(ordered),
    )
