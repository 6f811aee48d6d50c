"""The link-rot report (crawl/report.py): every number from crawl logs with known outcomes, domains,
post years and sources; logs of older versions; the Markdown and PNG files; and a real crawl
(single and sharded) writing it into crawl_stats.json."""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from datetime import datetime, timezone

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawl import report
from crawl.crawl_log import SCHEMA, log_parts
from crawl.urls import domain
from tests.crawl.test_crawler_support import PAGE, crawl_cli, read_log, write_url_table, write_web
from webtext.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def epoch(year: int) -> int:
    return int(datetime(year, 6, 1, tzinfo=timezone.utc).timestamp())


def row(url: str, outcome: str, source: str | None = "live", year: int | None = None) -> dict:
    return {"url": url, "final_url": url, "outcome": outcome, "source": source,
            "first_created_utc": epoch(year) if year else None,
            "warc_file": "x.warc.gz" if outcome == "ok" else None, "warc_offset": 0 if outcome == "ok" else None}


def write_part(log_dir, name: str, rows: list[dict], schema: pa.Schema = SCHEMA) -> str:
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / name
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return str(path)


# 10 URLs over 4 domains and the years 2010, 2015 and unknown, in two parts.
PART_ONE = [
    row("https://www.news.com/a", "ok", "live", 2010),
    row("https://news.com/b", "ok", "archive", 2010),
    row("https://news.com/c", "http_4xx", "live", 2010),
    row("http://NEWS.com:8080/d", "dns", "live", 2015),
    row("https://blog.org/1", "ok", None, 2015),  # source null: a live fetch
]
PART_TWO = [
    row("https://blog.org/2", "timeout", "live", 2015),
    row("https://blog.org/3", "archive_missing", "archive", None),
    row("http://[2001:db8::1]:8000/x", "ok", "archive", 2015),
    row("https://solo.net/", "http_4xx", "live", None),
    row("https://news.com/e", "http_4xx", "live", 2015),
]


@pytest.fixture
def two_parts(tmp_path):
    log_dir = tmp_path / "crawl" / "crawl_log"
    write_part(log_dir, "crawl-00000-of-00001-20260101T000000Z-aaaaaa-00000.parquet", PART_ONE)
    write_part(log_dir, "crawl-00000-of-00001-20260101T000000Z-aaaaaa-00001.parquet", PART_TWO)
    return tmp_path / "crawl"


def test_every_number_of_the_report(two_parts):
    got = report.crawl_report(log_parts(str(two_parts / "crawl_log")), top_domains=2)
    assert got["log_parts"] == 2
    assert (got["urls"], got["ok_live"], got["recovered_from_archive"], got["lost"]) == (10, 2, 2, 6)
    assert (got["recovered_share"], got["lost_share"]) == (0.2, 0.6)
    assert got["outcomes"] == {"http_4xx": 3, "ok": 4, "archive_missing": 1, "dns": 1, "timeout": 1}
    assert list(got["outcomes"]) == ["ok", "http_4xx", "archive_missing", "dns", "timeout"]  # most first, then by name
    years = {entry["year"]: entry for entry in got["by_year"]}
    assert list(years) == ["2010", "2015", "unknown"]
    assert {year: (e["urls"], e["ok_live"], e["recovered_from_archive"], e["lost"]) for year, e in years.items()} == {
        "2010": (3, 1, 1, 1), "2015": (5, 1, 1, 3), "unknown": (2, 0, 0, 2)}
    assert years["2015"]["outcomes"] == {"ok": 2, "dns": 1, "http_4xx": 1, "timeout": 1}
    assert years["2015"]["lost_share"] == 0.6 and years["2010"]["recovered_share"] == round(1 / 3, 6)
    assert got["domains"] == 4 and got["top_domains"] == 2
    assert [(e["domain"], e["urls"], e["ok_live"], e["recovered_from_archive"], e["lost"]) for e in got["by_domain"]] == [
        ("news.com", 5, 1, 1, 3), ("blog.org", 3, 1, 0, 2)]
    assert got["by_domain"][0]["outcomes"] == {"http_4xx": 2, "dns": 1, "ok": 2}
    other = got["other_domains"]  # [2001:db8::1] and solo.net
    assert (other["domains"], other["urls"], other["ok_live"], other["recovered_from_archive"], other["lost"]) == (2, 2, 0, 1, 1)
    assert other["outcomes"] == {"http_4xx": 1, "ok": 1}
    assert sum(e["urls"] for e in got["by_domain"]) + other["urls"] == got["urls"] == sum(e["urls"] for e in got["by_year"])


def test_domains_are_the_url_tables_domains():
    """The vectorised host parsing gives what crawl.urls.domain gives the harvested URL."""
    urls = ["https://www.news.com/a", "http://news.com:8080/d", "http://[2001:db8::1]:8000/x", "http://[2001:db8::1]/y",
            "https://blog.org", "https://www.sub.blog.org/?q=1", "http://user@host.example/", "https://WWW.Upper.COM/x",
            "http://xn--bcher-kva.example/#frag", "https://10.0.0.1:443/z"]
    assert report._domains(pa.array(urls)).to_pylist() == [domain(url) for url in urls]
    assert report._domains(pa.array(["not a url", None], pa.string())).to_pylist() == ["", ""]


def test_years_outside_reddits_time_are_unknown():
    times = pa.array([epoch(2005), 0, -5, None, 253402300799, 253402300800], pa.int64())
    assert report._years(times).to_pylist() == ["2005", "unknown", "unknown", "unknown", "9999", "unknown"]


def test_top_domains_are_ranked_by_urls_then_name(tmp_path):
    rows = [row(f"https://{name}/{i}", "ok") for name, n in (("b.com", 2), ("a.com", 2), ("c.com", 3), ("d.com", 1))
            for i in range(n)]
    part = write_part(tmp_path, "crawl-00000-of-00001-r-00000.parquet", rows)
    got = report.crawl_report([part], top_domains=3)
    assert [e["domain"] for e in got["by_domain"]] == ["c.com", "a.com", "b.com"]
    assert got["other_domains"]["domains"] == 1 and got["other_domains"]["urls"] == 1
    everything = report.crawl_report([part], top_domains=10)
    assert len(everything["by_domain"]) == 4
    assert everything["other_domains"] == {"domains": 0, **report.summarise([])}


def test_logs_of_older_versions_read_as_live_with_unknown_years(tmp_path):
    """Parts written before archive recovery lack source, capture_time and first_created_utc."""
    old_schema = pa.schema([field for field in SCHEMA if field.name not in ("source", "capture_time", "first_created_utc")])
    old_rows = [{key: value for key, value in r.items() if key in old_schema.names}
                for r in (row("https://old.com/1", "ok", "archive"), row("https://old.com/2", "dns"))]
    old = write_part(tmp_path, "crawl-00000-of-00001-a-00000.parquet", old_rows, old_schema)
    new = write_part(tmp_path, "crawl-00000-of-00001-b-00000.parquet", [row("https://new.com/1", "ok", "archive", 2012)])
    got = report.crawl_report([old, new], top_domains=5)
    assert (got["urls"], got["ok_live"], got["recovered_from_archive"], got["lost"]) == (3, 1, 1, 1)
    assert [(e["year"], e["urls"], e["ok_live"], e["lost"]) for e in got["by_year"]] == [("2012", 1, 0, 0), ("unknown", 2, 1, 1)]
    assert [(e["domain"], e["ok_live"]) for e in got["by_domain"]] == [("old.com", 1), ("new.com", 0)]


def test_many_batches_merge_to_the_same_counts(tmp_path, monkeypatch):
    """Batches far smaller than the log and merges after every few of them: the counts equal a
    plain group-by of all rows."""
    monkeypatch.setattr(report, "BATCH_ROWS", 7)
    monkeypatch.setattr(report, "MERGE_ROWS", 5)
    outcomes = ["ok", "dns", "http_4xx", "timeout"]
    rows = [row(f"https://d{i % 13}.com/{i}", outcomes[i % 4], "archive" if i % 3 == 0 else "live", 2008 + i % 5)
            for i in range(300)]
    parts = [write_part(tmp_path, f"crawl-00000-of-00001-r-{n:05d}.parquet", rows[n::3]) for n in range(3)]
    got = report.crawl_report(parts, top_domains=20)
    frame = pd.DataFrame(rows)
    frame["domain"] = frame["url"].map(domain)
    truth = frame.groupby("domain").outcome.value_counts()
    assert {e["domain"]: e["outcomes"] for e in got["by_domain"]} == {
        name: dict(truth[name]) for name in frame["domain"].unique()}
    recovered = frame[(frame.outcome == "ok") & (frame.source == "archive")]
    assert got["recovered_from_archive"] == len(recovered) == 25
    assert {e["year"]: e["recovered_from_archive"] for e in got["by_year"]} == {
        str(2008 + y): int(n) for y, n in Counter(int(u.rsplit("/", 1)[1]) % 5 for u in recovered.url).items()}


def test_an_unreadable_part_is_a_one_line_error(tmp_path):
    part = tmp_path / "crawl-00000-of-00001-r-00000.parquet"
    part.write_bytes(b"PAR1 not parquet")
    with pytest.raises(ValueError, match=f"crawl log part {part} is unreadable"):
        report.crawl_report([str(part)], top_domains=3)


def test_the_markdown_and_the_chart(two_parts):
    got = report.write_crawl_report(str(two_parts), top_domains=2)
    assert got == report.crawl_report(log_parts(str(two_parts / "crawl_log")), 2)
    chart = (two_parts / report.REPORT_CHART).read_bytes()
    assert chart.startswith(PNG_SIGNATURE) and len(chart) > 10_000
    markdown = (two_parts / report.REPORT_MARKDOWN).read_text()
    assert ("10 URLs in the crawl log (2 part(s)):\n2 (20.0%) fetched live,\n2 (20.0%) recovered from a web archive,\n"
            "6 (60.0%) lost for good (no page, live or archived).\n") in markdown
    assert f"![link rot by Reddit post year and domain]({report.REPORT_CHART})" in markdown
    for line in ("| `ok` | 4 | 40.0% |",
                 "| `http_4xx` | 3 | 30.0% |",
                 "| 2010 | 3 | 1 | 1 | 1 | 33.3% | http_4xx 1 |",
                 "| 2015 | 5 | 1 | 1 | 3 | 60.0% | dns 1, http_4xx 1, timeout 1 |",
                 "| unknown | 2 | 0 | 0 | 2 | 100.0% | archive_missing 1, http_4xx 1 |",
                 "## Top 2 of 4 domains",
                 "| 1 | `news.com` | 5 | 1 | 1 | 3 | 60.0% | http_4xx 2, dns 1 |",
                 "| 2 | `blog.org` | 3 | 1 | 0 | 2 | 66.7% | archive_missing 1, timeout 1 |",
                 "|  | 2 other domains | 2 | 0 | 1 | 1 | 50.0% | http_4xx 1 |"):
        assert line + "\n" in markdown, line


def test_an_empty_log_gives_an_empty_report(tmp_path):
    got = report.write_crawl_report(str(tmp_path), top_domains=5)
    assert got == {"urls": 0, "ok_live": 0, "recovered_from_archive": 0, "lost": 0, "recovered_share": 0.0,
                   "lost_share": 0.0, "outcomes": {}, "by_year": [], "top_domains": 5, "domains": 0, "by_domain": [],
                   "other_domains": {"domains": 0, **report.summarise([])}, "log_parts": 0}
    assert (tmp_path / report.REPORT_CHART).read_bytes().startswith(PNG_SIGNATURE)
    assert "No URLs." in (tmp_path / report.REPORT_MARKDOWN).read_text()


def webtext(*args: str) -> tuple[int, str, str]:
    """`webtext ARGS` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_the_crawl_report_command_adds_the_report_to_an_older_crawl_folder(two_parts):
    stats_path = two_parts / report.CRAWL_STATS
    stats_path.write_text(json.dumps({"stages": {"crawl": {"in": 10}}, "complete": True}))  # no crawl_report yet
    code, out, err = webtext("crawl-report", str(two_parts), "--set", "crawl.report_top_domains=1")
    assert code == 0, err
    assert out == (f"10 URLs: 2 fetched live, 2 (20.0%) recovered from a web archive, 6 (60.0%) lost for good; "
                   f"see {two_parts / report.REPORT_MARKDOWN} and {report.REPORT_CHART}\n")
    stats = json.loads(stats_path.read_text())
    assert stats["stages"] == {"crawl": {"in": 10}} and stats["complete"] is True
    assert stats["crawl_report"] == report.crawl_report(log_parts(str(two_parts / "crawl_log")), 1)
    assert [e["domain"] for e in stats["crawl_report"]["by_domain"]] == ["news.com"]
    assert (two_parts / report.REPORT_CHART).read_bytes().startswith(PNG_SIGNATURE)
    assert "## Top 1 of 4 domains" in (two_parts / report.REPORT_MARKDOWN).read_text()


@pytest.mark.parametrize("content, message", [
    (None, "crawl_stats.json not found: {dir} is not the --out folder of a finished `webtext crawl`"),
    ("{half", "crawl_stats.json is not valid JSON (Expecting property name"),
    ("[1, 2]", "crawl_stats.json holds no JSON object; rerun `webtext crawl` into {dir} to rewrite it"),
])
def test_the_crawl_report_command_without_readable_stats_is_one_line(tmp_path, content, message):
    if content is not None:
        (tmp_path / report.CRAWL_STATS).write_text(content)
    code, out, err = webtext("crawl-report", str(tmp_path))
    assert code == 1 and out == ""
    assert err.startswith("webtext crawl-report: error: ") and err.count("\n") == 1
    assert message.format(dir=tmp_path) in err
    assert not (tmp_path / report.REPORT_MARKDOWN).exists()


def test_a_real_crawl_writes_the_report_single_and_sharded(tmp_path):
    """Two shards one after the other, then a resume without --shard: the combined stats carry the
    report over the shards that ran, per-shard stats none, and a single-shard run's stats its own."""
    routes = {f"site{i % 2}.example/p{i}.html": {"body": "page.html", "expect": "ok"} for i in range(6)}
    routes["site0.example/gone.html"] = {"status": 404, "expect": "http_4xx"}
    web = write_web(tmp_path / "web", {"site0.example": {"robots": None}, "site1.example": {"robots": None}}, routes,
                    {"page.html": PAGE % (b"p", b"p")}, {"http://unknown-host.example/page": "dns"})
    urls = sorted(["http://" + key for key in routes] + ["http://unknown-host.example/page"])
    write_url_table(tmp_path / "urls", urls)
    table_path = tmp_path / "urls" / "urls-00000.parquet"  # posts of 2009 and 2016, alternately
    table = pq.read_table(table_path)
    years = [2009 if i % 2 else 2016 for i in range(table.num_rows)]
    pq.write_table(table.set_column(table.schema.get_field_index("first_created_utc"), "first_created_utc",
                                    pa.array([epoch(y) for y in years], pa.int64())), table_path)
    out = tmp_path / "out"

    def run(*extra: str) -> dict:
        result = crawl_cli("--urls", str(tmp_path / "urls"), "--out", str(out), "--replay", str(web), *extra,
                           settings=["crawl.report_top_domains=2"])
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads((out / "crawl_stats.json").read_text())

    first = run("--shard", "0/2")
    shard_urls = {r["url"] for r in read_log(out)}
    assert 0 < len(shard_urls) < len(urls)
    assert first["crawl_report"]["urls"] == len(shard_urls) == first["stages"]["crawl"]["in"]
    combined = run("--shard", "1/2")
    assert "crawl_report" not in json.loads((out / "crawl_stats-00000-of-00002.json").read_text())
    single = run()  # everything is logged: resumes with nothing to fetch
    by_year = {url: year for url, year in zip(table.column("url").to_pylist(), years)}
    for stats in (combined, single):
        got = stats["crawl_report"]
        crawl = stats["stages"]["crawl"]
        assert got == report.crawl_report(log_parts(str(out / "crawl_log")), 2)
        assert (got["urls"], got["ok_live"], got["lost"]) == (crawl["in"], crawl["out"], crawl["dropped_total"]) == (8, 6, 2)
        assert got["recovered_from_archive"] == 0 and got["outcomes"] == {"ok": 6, "dns": 1, "http_4xx": 1}
        assert [(e["domain"], e["urls"], e["lost"]) for e in got["by_domain"]] == [("site0.example", 4, 1), ("site1.example", 3, 0)]
        assert (got["other_domains"]["domains"], got["other_domains"]["outcomes"]) == (1, {"dns": 1})
        assert {e["year"]: e["urls"] for e in got["by_year"]} == {str(y): n for y, n in Counter(by_year.values()).items()}
    assert (out / report.REPORT_CHART).read_bytes().startswith(PNG_SIGNATURE)
    assert "| 1 | `site0.example` | 4 | 3 | 0 | 1 | 25.0% | http_4xx 1 |" in (out / report.REPORT_MARKDOWN).read_text()
