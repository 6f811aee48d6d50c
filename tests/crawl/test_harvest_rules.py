"""The harvest's rules (crawl/harvest_rules.py) on single lines, records and URLs, without Beam."""

import json
import lzma
from collections import Counter
from pathlib import Path

import pytest
import zstandard

from crawl import harvest_rules
from crawl.config import HarvestConfig
from crawl.harvest_rules import (
    CREATED_UTC_RANGE,
    SCORE_RANGE,
    HarvestRules,
    Post,
    UrlPosts,
    UrlRow,
    merge_posts,
    parse_int,
    parse_record,
    url_row,
)
from tests.crawl.submissions import dump_line, submission
from tests.sample.truth import BUNDLED, dump_truth

REPO = Path(__file__).resolve().parents[2]
WIKIPEDIA = frozenset({"wikipedia.org"})
MEDIA = frozenset({"imgur.com", "xn--bcher-kva.example"})

# Each rule: arguments it drops, arguments it passes.
RULE_CASES = [
    (harvest_rules.line_too_long, (None,), (b"{}",)),
    (harvest_rules.empty_line, (b"",), (b"{}",)),
    (harvest_rules.malformed_json, (None,), ({},)),
    (harvest_rules.malformed_json, ([1, 2],), ({"id": "x"},)),
    (harvest_rules.promoted, ({"promoted": True},), ({"promoted": False},)),
    (harvest_rules.bad_score, (None,), (0,)),
    (harvest_rules.bad_value, (2**31, SCORE_RANGE), (2**31 - 1, SCORE_RANGE)),
    (harvest_rules.bad_value, (-2**31 - 1, SCORE_RANGE), (-2**31, SCORE_RANGE)),
    (harvest_rules.bad_value, (-1, CREATED_UTC_RANGE), (0, CREATED_UTC_RANGE)),
    (harvest_rules.bad_value, (10**20, CREATED_UTC_RANGE), (253402300799, CREATED_UTC_RANGE)),
    (harvest_rules.low_score, (2, 3), (3, 3)),
    (harvest_rules.self_post, ({"is_self": True},), ({"is_self": False},)),
    (harvest_rules.nsfw, ({"over_18": True},), ({},)),
    (harvest_rules.missing_url, ({"url": "  "},), ({"url": "http://a.example/"},)),
    (harvest_rules.missing_url, ({"url": 17},), ({"url": "x"},)),  # what kind of URL: the URL rules say
    (harvest_rules.missing_id, ({"id": ""},), ({"id": "x1"},)),
    (harvest_rules.missing_id, ({"id": 7},), ({"id": "0"},)),
    (harvest_rules.bad_created_utc, (None,), (0,)),
    (harvest_rules.outside_date_window, (99, 100, 200), (100, 100, 200)),
    (harvest_rules.outside_date_window, (200, 100, 200), (199, 100, 200)),
    (harvest_rules.outside_date_window, (200, None, 200), (10**12, 100, None)),
    (harvest_rules.bad_scheme, ("ftp://a.example/",), ("HTTPS://a.example/",)),
    (harvest_rules.bad_scheme, ("a.example/no-scheme",), ("http://a.example/",)),
    (harvest_rules.wikipedia, ("de.m.wikipedia.org", WIKIPEDIA), ("wikipedia.org.example", WIKIPEDIA)),
    (harvest_rules.blocked_domain, ("i.imgur.com", MEDIA), ("notimgur.com", MEDIA)),
    (harvest_rules.private_address, ("127.0.0.1",), ("example.com",)),
    (harvest_rules.private_address, ("2130706433",), ("8.8.8.8",)),
    (harvest_rules.private_address, ("localhost",), ("localhost.example",)),
    (harvest_rules.bad_url, (None,), ("http://a.example/",)),
    (harvest_rules.blocked_extension, ("http://a.example/x.PDF", frozenset({"pdf"})),
     ("http://a.example/x.pdf.html", frozenset({"pdf"}))),
    (harvest_rules.blocked_extension, ("http://a.example/x.pdf?page=2", frozenset({"pdf"})),
     ("http://files.pdf/", frozenset({"pdf"}))),  # a host's TLD is no extension
]


@pytest.mark.parametrize("rule, dropped, passed", RULE_CASES,
                         ids=[f"{case[0].__name__}-{i}" for i, case in enumerate(RULE_CASES)])
def test_each_rule_drops_with_its_own_name_as_reason(rule, dropped, passed):
    assert rule(*dropped) == rule.__name__
    assert rule(*passed) is None


def judge(record, config=None):
    """The drop reason of a record (dict) or raw line, or "kept"."""
    result = HarvestRules(config or HarvestConfig()).judge(
        dump_line(record) if isinstance(record, dict) else record)
    return result if isinstance(result, str) else "kept"


def test_a_kept_line_gives_its_url_key_and_post():
    raw = dump_line(submission("x1", "HTTP://WWW.Example.com/a?utm_source=x&amp;b=1#top", 7, created="1500000001",
                               sub="news", title="Grüße"))
    assert HarvestRules(HarvestConfig()).judge(raw) == ("example.com/a?b=1", Post(
        post_id="x1", score=7, created_utc=1500000001, subreddit="news", title="Grüße",
        url="http://www.example.com/a?b=1"))
    key, post = HarvestRules(HarvestConfig()).judge(dump_line(submission("x2", "http://a.example/", sub=None,
                                                                         title=["not", "text"])))
    assert (post.subreddit, post.title) == ("", "")


@pytest.mark.parametrize("record, reason", [
    # the first rule that applies wins
    (submission("x1", "http://a.example/", 1, promoted=True, is_self=True), "promoted"),
    (submission("x1", "http://a.example/", "lots", is_self=True), "bad_score"),
    (submission("x1", "http://a.example/", 2**63, is_self=True), "bad_value"),
    (submission("x1", "http://a.example/", -2**63), "bad_value"),  # not low_score: no plausible score
    (submission("x1", "http://a.example/", 1, is_self=True, over_18=True), "low_score"),
    (submission("x1", ..., is_self=True, over_18=True), "self_post"),
    (submission(..., ..., over_18=True), "nsfw"),
    (submission(..., ..., created="soon"), "missing_url"),
    (submission(..., "ftp://a.example/", created="soon"), "missing_id"),
    (submission("x1", "ftp://a.example/", created="soon"), "bad_created_utc"),
    (submission("x1", "ftp://a.example/", created=1e20), "bad_value"),
    # URL rules: the posted host first, then normalising, then the normalised host
    (submission("x1", "https://en.wikipedia.org/wiki/X.jpg"), "wikipedia"),
    (submission("x1", "http://WIKIPEDIA.org./x"), "wikipedia"),
    (submission("x1", "https://i.imgur.com/abc.jpg"), "blocked_domain"),
    (submission("x1", "http://localhost/x.jpg"), "private_address"),  # no valid host: the posted one counts
    (submission("x1", "http://2130706433/"), "private_address"),
    (submission("x1", "http://192.168.0.1/admin.pdf"), "private_address"),
    (submission("x1", "http://exa mple.com/x.pdf"), "bad_url"),
    (submission("x1", "http://files.example/report.PDF"), "blocked_extension"),
])
def test_rules_apply_in_order(record, reason):
    assert judge(record) == reason


def test_lists_match_the_normalised_host_too():
    config = HarvestConfig(blocked_domains=["xn--bcher-kva.example"], wikipedia_domains=["xn--wik-pma.example"])
    assert judge(submission("x1", "http://bücher.example/a"), config) == "blocked_domain"
    assert judge(submission("x1", "http://wikì.example/a"), config) == "wikipedia"
    assert judge(submission("x1", "http://bücher.example/a")) == "kept"


def test_created_utc_int_float_string():
    for created in (1500000000, 1500000000.0, "1500000000", "1500000000.0"):
        key, post = HarvestRules(HarvestConfig()).judge(dump_line(submission("x1", "http://a.example/",
                                                                             created=created)))
        assert post.created_utc == 1500000000
    for created in ("yesterday", None, [], True, ...):
        assert judge(submission("x1", "http://a.example/", created=created)) == "bad_created_utc"


def test_date_window_bounds():
    config = HarvestConfig(created_after="2017-01-01", created_before="2017-12-01")
    start, end = 1483228800, 1512086400
    assert judge(submission("x1", "http://a.example/", created=start - 1), config) == "outside_date_window"
    assert judge(submission("x1", "http://a.example/", created=start), config) == "kept"
    assert judge(submission("x1", "http://a.example/", created=end - 1), config) == "kept"
    assert judge(submission("x1", "http://a.example/", created=str(end)), config) == "outside_date_window"


def test_rules_can_be_switched_off():
    config = HarvestConfig(drop_nsfw=False, drop_self_posts=False, min_score=0)
    assert judge(submission("x1", "http://a.example/", over_18=True), config) == "kept"
    assert judge(submission("x1", "http://self.example/t", is_self=True), config) == "kept"
    assert judge(submission("x1", "http://a.example/", score=0), config) == "kept"
    assert judge(submission("x1", "http://a.example/", score=-1), config) == "low_score"
    # sum_per_url decides the score per URL after merging: no record is low_score yet
    assert judge(submission("x1", "http://a.example/", score=-5), HarvestConfig(score_rule="sum_per_url")) == "kept"


def test_missing_score_counts_as_zero_and_odd_values():
    assert judge(submission("x1", "http://a.example/", score=...)) == "low_score"
    assert judge(submission("x1", "http://a.example/", score=None)) == "low_score"
    assert judge(submission("x1", "http://a.example/", score="7")) == "kept"
    assert judge(submission("x1", "http://a.example/", score=True)) == "bad_score"
    assert judge(submission("x1", 17)) == "missing_url"
    assert judge(submission("x1", "   ")) == "missing_url"
    assert judge(b"null") == "malformed_json"
    assert judge(b'"just a string"') == "malformed_json"
    assert judge(b"{\"id\": \"x\"} trailing") == "malformed_json"
    assert judge(b"[" * 200_000 + b"]" * 200_000) == "malformed_json"  # deeper than the parser's stack
    assert judge(b'{"id": "x", "score": 1e400, "url": "http://a.example/"}') == "bad_score"
    assert judge(None) == "line_too_long"
    assert judge(b"   \r") == "empty_line"
    assert judge(b"\x00" * 32 + dump_line(submission("x1", "http://a.example/"))) == "malformed_json"


def test_judge_lines_counts_every_drop():
    lines = [dump_line(submission("x1", "http://a.example/")), b"", None, b"[]",
             dump_line(submission("x2", "http://a.example/", 1)), dump_line(submission("x3", "http://b.example/"))]
    drops = Counter()
    kept = HarvestRules(HarvestConfig()).judge_lines(lines, drops)
    assert [(key, post.post_id) for key, post in kept] == [("a.example/", "x1"), ("b.example/", "x3")]
    assert drops == {"empty_line": 1, "line_too_long": 1, "malformed_json": 1, "low_score": 1}


def _all_dump_lines(shared_dir_or_none):
    lines = [dump_line(submission("a1", "http://a.example/", title="Grüße 🎉")), b"[1, 2, 3]", b""]
    if shared_dir_or_none is not None:
        reddit = shared_dir_or_none / "data" / "reddit"
        for name in ("RS_v2_2005-06.xz", "RS_v2_2005-07.xz"):
            if (reddit / name).exists():
                lines += lzma.decompress((reddit / name).read_bytes()).split(b"\n")
    data = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(BUNDLED.dump.read_bytes()).read()
    return lines + data.split(b"\n")


def _json_only(line: bytes):
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def test_orjson_parses_every_dump_line_as_json_does():
    """orjson (with json as fallback) gives the values json gives on every real and sample line."""
    shared = REPO.parent / "shared"
    lines = [raw.strip() for raw in _all_dump_lines(shared if shared.is_dir() else None)]
    assert len(lines) > 200
    for raw in lines:
        assert parse_record(raw) == _json_only(raw), raw[:200]


@pytest.mark.parametrize("raw, reason", [
    (b'{"id": "x", "url": "http://a.example/", "score": NaN, "created_utc": 1}', "bad_score"),
    (b'{"id": "x", "url": "http://a.example/", "score": 9, "created_utc": Infinity}', "bad_created_utc"),
    (b'{"id": "x", "url": "http://a.example/", "score": 9, "created_utc": -1e400}', "bad_created_utc"),
    (b'{"id": "x", "url": "http://a.example/\\ud800", "score": 9, "created_utc": 1}', "bad_url"),
    (b'\xef\xbb\xbf{"id": "x", "url": "http://a.example/", "score": 9, "created_utc": 1}', "kept"),
    (b'{"id": "x", "url": "http://a.example/", "score": 9, "created_utc": 1, "t": "a\tb"}', "malformed_json"),
    (b'{"id": "x", "url": "http://a.example/", "score": 9, "created_utc": 1}\x1c', "malformed_json"),
    (b'{"id": "x", "url": "http://a.example/\xed\xa0\x80", "score": 9, "created_utc": 1}', "bad_url"),
    (b'{"id": "x", "url": "http://a.example/", "score": 9, "created_utc": 1,}', "malformed_json"),
    (b'{"a": ' * 2000 + b"1" + b"}" * 2000, "malformed_json"),  # deeper than orjson's limit
])
def test_values_orjson_rejects_get_the_json_decision(raw, reason):
    assert judge(raw) == reason


@pytest.mark.parametrize("value, expected", [
    (b"123456789012345678901234567890", 123456789012345677877719597056),  # orjson: a float
    (b"-9223372036854775809", -9223372036854775808),
    (b"9007199254740993", 9007199254740992),  # int(float(x)), as before, beyond 2**53
    (b"9007199254740992", 9007199254740992),
    (b'"12"', 12),
    (b"12.9", 12),
])
def test_large_and_odd_numbers_keep_their_int_float_meaning(value, expected):
    assert parse_int(parse_record(value)) == expected


@pytest.mark.parametrize("created, expected", [
    (b'"1500000000"', 1500000000), (b"1500000000.9", 1500000000), (b"0", 0), (b"253402300799.5", 253402300799),
    (b"253402300800", "bad_value"), (b"-1", "bad_value"), (b"1e20", "bad_value"),
    (b"123456789012345678901234567890", "bad_value"), (b"9223372036854775808", "bad_value"),
])
def test_created_utc_within_its_range_is_kept_beyond_it_bad_value(created, expected):
    raw = b'{"id": "x", "url": "http://a.example/", "score": 9, "created_utc": ' + created + b"}"
    result = HarvestRules(HarvestConfig(created_before=None)).judge(raw)  # no date window: the range alone
    assert (result if isinstance(result, str) else result[1].created_utc) == expected


@pytest.mark.parametrize("score, expected", [
    (b"2147483647", "kept"), (b'"2147483647"', "kept"), (b"-2147483648", "low_score"),
    (b"2147483648", "bad_value"), (b"9223372036854775808", "bad_value"), (b"18446744073709551616", "bad_value"),
    (b"1e20", "bad_value"), (b'"1e30"', "bad_value"), (b"-9223372036854775809", "bad_value"),
])
def test_scores_beyond_their_range_are_bad_values_under_either_rule(score, expected):
    raw = b'{"id": "x", "url": "http://a.example/", "score": ' + score + b', "created_utc": 1500000000}'
    assert judge(raw) == expected
    assert judge(raw, HarvestConfig(score_rule="sum_per_url")) == ("kept" if expected == "low_score" else expected)


def test_sample_date_window_matches_the_ground_truth():
    data = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(BUNDLED.dump.read_bytes()).read()

    def kept(config):
        rules = HarvestRules(config)
        return {result[0] for result in map(rules.judge, data.split(b"\n")[:-1]) if not isinstance(result, str)}

    assert kept(HarvestConfig()) == set(dump_truth()["urls"])  # the default window: links up to Dec 2017
    assert kept(HarvestConfig(created_before=None)) == set(dump_truth()["url_keys_without_date_window"])


# -- posts per URL -----------------------------------------------------------------------------

def post(post_id, score, created_utc=1500000000, subreddit="news", title="A title", url="https://a.example/x"):
    return Post(post_id, score, created_utc, subreddit, title, url)


def test_merge_keeps_the_highest_scored_copy_of_a_repeated_submission():
    pairs = [("a.example/x", post("a1", 5, title="first dump")), ("b.example/", post("b1", 3, url="http://b.example/")),
             ("a.example/x", post("a1", 9, title="later dump")), ("a.example/x", post("a1", 7)),
             ("a.example/x", post("a2", 4, url="http://www.a.example/x"))]
    merged = merge_posts(pairs)
    assert merged["a.example/x"] == UrlPosts(4, {"a1": post("a1", 9, title="later dump"),
                                                 "a2": post("a2", 4, url="http://www.a.example/x")})
    assert merged["b.example/"] == UrlPosts(1, {"b1": post("b1", 3, url="http://b.example/")})
    # equal scores: the same copy wins in any order
    copies = [("k", post("a1", 5, title="x")), ("k", post("a1", 5, title="y"))]
    assert merge_posts(copies) == merge_posts(copies[::-1])


def test_url_row_keeps_the_url_of_the_best_post_and_counts_its_posts():
    posts = merge_posts([
        ("a.example/x", post("100", 7, created_utc=1499999999, subreddit="news", title="third",
                             url="http://a.example/x")),
        ("a.example/x", post("zz", 20, created_utc=1500000200, subreddit="Python", title="second",
                             url="https://www.a.example/x")),
        ("a.example/x", post("a2", 20, created_utc=1500000100, subreddit="Python", title="first",
                             url="https://a.example/x")),
        ("a.example/x", post("a2", 3, title="stale copy")),
    ])["a.example/x"]
    tally = Counter()
    row = url_row("a.example/x", posts, "max_post", 3, tally)
    assert row == UrlRow(
        url="https://a.example/x",  # score 20 twice: the earlier post's variant
        url_key="a.example/x", domain="a.example", score=20,
        post_ids=["a2", "zz", "100"],  # base36 order: "100" comes after "zz"
        subreddits=["Python", "news"], titles=["first", "second", "third"],
        first_created_utc=1499999999, num_posts=3,
    )
    assert tally == {"kept": 3, "duplicate_post": 1}


def test_url_row_sum_per_url():
    posts = merge_posts([("s.example/", post("d1", 2, url="http://s.example/")),
                         ("s.example/", post("d2", 1, url="https://s.example/"))])["s.example/"]
    tally = Counter()
    row = url_row("s.example/", posts, "sum_per_url", 3, tally)
    assert (row.score, row.url, row.post_ids, tally) == (3, "http://s.example/", ["d1", "d2"], {"kept": 2})
    tally = Counter()
    assert url_row("s.example/", posts, "sum_per_url", 4, tally) is None
    assert tally == {"low_score": 2}


def test_the_one_post_shortcut_gives_the_row_of_the_general_path():
    posts = UrlPosts(1, {"a1": post("a1", 5, url="https://www.a.example/x")})
    one_post, general = Counter(), Counter()
    assert url_row("a.example/x", posts, "max_post", 3, one_post) == url_row(
        "a.example/x", posts, "sum_per_url", 3, general)
    assert one_post == general == {"kept": 1}
