"""The bundled offline sample (sample/): built on demand, deterministic, realistic, and its ground truth true."""

from __future__ import annotations

import difflib
import html
import ipaddress
import json
import re
import shutil
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import py3langid
import pytest
import zstandard

from crawl.replay import OUTCOMES, load_routes
from sample import generate
from sample.bundled import STAMP, ensure_built
from tests.sample.truth import BUNDLED, dump_truth, expected_outcomes

SAMPLE = BUNDLED.folder
DUMP = BUNDLED.dump
WEB = BUNDLED.web
TRUTH = dump_truth()
ROUTES_DOC = json.loads((WEB / "routes.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dump_lines() -> list[bytes]:
    with zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(DUMP.open("rb")) as reader:
        data = reader.read()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_regenerating_gives_identical_bytes(tmp_path):
    generate.generate(tmp_path)
    fresh, bundled = _files(tmp_path), _files(SAMPLE)
    del bundled[STAMP], bundled[".lock"]
    assert sorted(fresh) == sorted(bundled)
    assert [name for name in fresh if fresh[name] != bundled[name]] == []


def test_a_build_is_reused_while_current_and_rebuilt_when_not(tmp_path):
    sample = ensure_built(tmp_path)
    built = _files(tmp_path)
    page = next((sample.web / "pages").rglob("*.html"))
    stamp = json.loads((tmp_path / STAMP).read_text())
    assert sorted(stamp["files"]) == sorted(set(built) - {STAMP, ".lock"})
    mtime = page.stat().st_mtime_ns
    assert ensure_built(tmp_path) == sample and page.stat().st_mtime_ns == mtime  # current: kept

    page.write_text("edited by hand")  # an edited file
    (sample.web / "stray.html").write_text("left over")  # a file no build wrote
    ensure_built(tmp_path)
    assert _files(tmp_path) == built

    (tmp_path / STAMP).write_text(json.dumps({**stamp, "inputs": "an older generator"}))
    ensure_built(tmp_path)
    assert _files(tmp_path) == built  # rebuilt: the stamp names the current inputs again

    shutil.rmtree(sample.web)  # a half-deleted build, and a partial one left by an interrupted run
    (tmp_path / ".partial" / "web").mkdir(parents=True)
    ensure_built(tmp_path)
    assert _files(tmp_path) == built


def test_dump_declares_a_2gib_window_like_the_real_dumps():
    data = DUMP.read_bytes()
    assert zstandard.get_frame_parameters(data).window_size == 2**31
    with pytest.raises(zstandard.ZstdError, match="too much memory"):
        zstandard.ZstdDecompressor().stream_reader(DUMP.open("rb")).read()


# -- the ground truth agrees with the records (an independent classifier) ---------------------

BLOCKED = ("imgur.com", "youtube.com", "youtu.be", "reddit.com", "redd.it", "twitter.com", "x.com",
           "gfycat.com", "instagram.com", "facebook.com")


def _classify(line: bytes) -> str:
    if not line.strip():
        return "empty_line"
    try:
        rec = json.loads(line)
    except ValueError:
        return "malformed_json"
    if rec.get("promoted"):
        return "promoted"
    if int(rec["score"]) < 3:
        return "low_score"
    if rec["is_self"]:
        return "self_post"
    if rec["over_18"]:
        return "nsfw"
    if not rec["url"]:
        return "missing_url"
    parts = urlsplit(html.unescape(rec["url"]))
    if parts.scheme not in ("http", "https"):
        return "bad_scheme"
    host = parts.hostname
    try:
        if not ipaddress.ip_address(host).is_global:
            return "private_address"
    except ValueError:
        pass
    if host.endswith("wikipedia.org"):
        return "wikipedia"
    if any(host == d or host.endswith("." + d) for d in BLOCKED):
        return "blocked_domain"
    if re.search(r"\.(pdf|jpg|png)$", parts.path):
        return "blocked_extension"
    if int(float(rec["created_utc"])) >= TRUTH["rules"]["date_window_end_utc"]:
        return "outside_date_window"
    return "kept"


def test_every_line_has_the_category_the_truth_says(dump_lines):
    records = TRUTH["records"]
    assert len(dump_lines) == len(records) == TRUTH["totals"]["lines"]
    assert [_classify(line) for line in dump_lines] == [r["category"] for r in records]
    assert Counter(r["category"] for r in records) == {k: v for k, v in TRUTH["totals"]["by_category"].items() if v}
    for line, rec in zip(dump_lines, records):
        if rec["id"] and rec["category"] != "malformed_json":
            assert json.loads(line)["id"] == rec["id"]


def _url_key(url: str) -> str:
    parts = urlsplit(html.unescape(url))
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if not k.startswith("utm_") and k != "fbclid"))
    key = parts.hostname.encode("idna").decode() + parts.path + (f"?{query}" if query else "")
    return key.removeprefix("www.")


def test_url_table_is_the_kept_posts_grouped(dump_lines):
    kept = [json.loads(line) for line, r in zip(dump_lines, TRUTH["records"])
            if TRUTH["categories"][r["category"]]["kept"]]
    groups: dict[str, list[dict]] = {}
    for rec in kept:
        groups.setdefault(_url_key(rec["url"]), []).append(rec)
    assert sorted(groups) == sorted(TRUTH["urls"]) and len(groups) == TRUTH["totals"]["urls"]
    for key, recs in groups.items():
        row = TRUTH["urls"][key]
        assert row["score"] == max(r["score"] for r in recs) and row["num_posts"] == len(recs)
        assert sorted(row["post_ids"]) == sorted(r["id"] for r in recs)
        assert row["first_created_utc"] == min(int(float(r["created_utc"])) for r in recs)
    late = {_url_key(json.loads(line)["url"]) for line, r in zip(dump_lines, TRUTH["records"])
            if r["category"] == "outside_date_window"}
    assert all(int(float(r["created_utc"])) < TRUTH["rules"]["date_window_end_utc"] for r in kept)
    assert set(TRUTH["url_keys_without_date_window"]) == set(groups) | late and late - set(groups)


def test_dump_covers_the_real_world_quirks(dump_lines):
    raw = b"\n".join(dump_lines)
    recs = [json.loads(line) for line in dump_lines if line.startswith(b"{") and line.endswith(b"}")]
    urls = [r["url"] for r in recs if isinstance(r.get("url"), str)]
    types = Counter(type(r["created_utc"]).__name__ for r in recs)
    assert types["str"] >= 1 and types["float"] >= 1 and types["int"] > 100
    assert b"\\/" in raw and any(line.startswith(b"\x00" * 16) for line in dump_lines) and b"" in dump_lines
    assert any(r.get("author") == "[deleted]" for r in recs) and any(r.get("selftext") == "[removed]" for r in recs)
    assert any("&amp;" in u for u in urls) and any("utm_" in u for u in urls) and any("fbclid" in u for u in urls)
    assert any("#" in u for u in urls) and any("bücher.example" in u for u in urls)
    assert any(r.get("url") is None and "url" in r for r in recs)
    assert min(r["score"] for r in recs if "score" in r) < 0 and max(r["score"] for r in recs if "score" in r) > 1000
    for needle in ["ftp://", "mailto:", "javascript:", "127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]",
                   "en.m.wikipedia.org", "de.wikipedia.org", "i.redd.it", "v.redd.it", "youtube.com", "x.com/",
                   "twitter.com", "reddit.com/r/", "vanished-site.example"]:
        assert any(needle in u for u in urls), needle
    self_posts = [r for r in recs if r.get("is_self")]
    assert self_posts and all(r["domain"] == "self." + r["subreddit"] for r in self_posts)
    assert any(r.get("promoted") and "score" not in r and "subreddit" not in r for r in recs)
    key = next(k for k, row in TRUTH["urls"].items() if row["num_posts"] >= 4)
    spellings = {u for u in urls if u.startswith("http") and _url_key(u) == key}
    assert any(u.startswith("https://") for u in spellings) and any("//www." in u for u in spellings)
    assert any(u.startswith("http://") for u in spellings) and any("#" in u for u in spellings)
    assert any(len(row["subreddits"]) >= 2 for row in TRUTH["urls"].values())


# -- the dump and the sample web fit together ----------------------------------------------------

def test_every_harvested_url_is_served_with_its_expected_outcome():
    routes = load_routes(WEB)
    expected = expected_outcomes(WEB)
    for key, row in TRUTH["urls"].items():
        parts = urlsplit(row["url"])
        route = routes.lookup(parts.hostname, parts.path + (f"?{parts.query}" if parts.query else ""))
        if row["page_kind"] == "unknown_host":
            assert route is None and parts.hostname not in routes.hosts, key
            assert ROUTES_DOC["offsite"][row["url"]] == "dns"
        else:
            assert route is not None and ROUTES_DOC["routes"][route.key]["expect"] == row["expected_outcome"], key
        assert expected[row["url"]] == row["expected_outcome"]
    assert {row["expected_outcome"] for row in TRUTH["urls"].values()} >= {
        "ok", "robots", "timeout", "too_large", "not_html", "http_4xx", "http_5xx", "dns",
        "blocked_address", "redirect_loop", "too_many_redirects", "connection"}


def test_expected_outcomes_cover_the_vocabulary():
    expected = expected_outcomes(WEB)
    assert set(expected.values()) == OUTCOMES
    assert expected["http://news.example/2017/01/with-statement-context-managers.html"] == "ok"
    assert expected["http://faults.test/hops/00.html"] == "too_many_redirects"
    assert "http://faults.test/hops/05.html" not in expected  # mid-chain: depends on the redirect cap


def test_sample_web_is_big_and_varied_enough():
    routes = ROUTES_DOC["routes"]
    html_pages = [k for k, r in routes.items() if "body" in r and r.get("headers", {}).get(
        "Content-Type", "text/html").startswith("text/html") and r["body"].endswith((".html", ".htm"))]
    assert len(html_pages) >= 150 and len(ROUTES_DOC["hosts"]) >= 20
    kinds = Counter(r["note"] for r in routes.values())
    for kind in ["exact_duplicate", "near_duplicate", "wikipedia", "wikipedia_mirror", "lang_de", "lang_fr",
                 "lang_es", "bot_check", "paywall", "very_short", "boilerplate_only", "spam", "crawl_delay",
                 "robots_disallowed", "idn_host"]:
        assert kinds[kind] >= 1, kind
    referenced = {r["body"] for r in routes.values() if "body" in r}
    assert referenced == set(_files(WEB / "pages"))  # no stale or missing files
    size = sum(p.stat().st_size for d in ("web", "reddit") for p in (SAMPLE / d).rglob("*") if p.is_file())
    assert size < 5_000_000
    hosts = {k.split("/", 1)[0] for k in html_pages}
    assert all(host.endswith((".example", ".test", ".wikipedia.org")) for host in hosts)


def _text(body: bytes) -> str:
    """The article's paragraphs (long runs of text, not the cookie banner), whatever the template."""
    runs = re.split(r"<[^>]+>", body.decode("utf-8"))
    return html.unescape(" ".join(r for r in runs if len(r) > 100 and "cookies" not in r))


def test_duplicates_are_exact_or_near():
    routes = ROUTES_DOC["routes"]
    pages = WEB / "pages"
    articles = {k: r for k, r in routes.items() if r["note"] == "article"}
    for key, route in routes.items():
        if route["note"] == "exact_duplicate":
            twins = [k for k, r in articles.items() if r["body"] == route["body"]]
            assert len(twins) == 1 and twins[0].split("/")[0] != key.split("/")[0]
    near = [k for k, r in routes.items() if r["note"] == "near_duplicate"]
    assert len(near) >= 3
    for key in near:
        slug = key.rsplit("/", 1)[1].removesuffix(".html")
        originals = [k for k in articles if re.search(rf"[/=]{re.escape(slug)}(/|\.html?|&|$)", k)]
        assert len(originals) == 1, key
        a = _text((pages / routes[originals[0]]["body"]).read_bytes()).split()
        b = _text((pages / routes[key]["body"]).read_bytes()).split()
        changed = 1 - difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
        assert 0.002 < changed < 0.06, (key, changed)  # 0.5% of article words, plus other chrome


def test_foreign_pages_are_in_their_language():
    routes = ROUTES_DOC["routes"]
    for key, route in routes.items():
        if route["note"].startswith("lang_"):
            text = re.sub(r"<[^>]+>", " ", (WEB / "pages" / route["body"]).read_text(encoding="utf-8"))
            paragraphs = " ".join(p for p in text.split("\n") if len(p) > 200)
            assert py3langid.classify(paragraphs)[0] == route["note"][len("lang_"):], key
