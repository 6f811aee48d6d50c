"""Crawler throughput and CPU cost per page against the loopback replay server.

    .venv/bin/python -m bench.bench_crawl [--pages 2000] [--repeats 5]

The replay server runs in this process; each crawler runs as a child, so
getrusage(RUSAGE_CHILDREN) is the crawler's CPU alone. A baseline crawl of a few pages in the
same process measures the fixed cost (imports, event loop, robots.txt); the marginal CPU per page
is (cpu_big - cpu_base) / (pages_big - pages_base). Three crawlers run over the same pages:
`webtext crawl`; plain Scrapy with DEFAULT settings and a no-op callback (the reference floor,
reported as a ratio); and "lean" Scrapy: our exact Scrapy settings and components
(crawl/crawler.py:scrapy_settings) with a no-op callback, i.e. without our spider's per-page
work (WARC, crawl log, progress). Every run is repeated --repeats times, interleaved, and the
least CPU of each is used (the machine may be shared; interference only ever adds CPU time);
medians are reported too. Target: <= 2 ms CPU per page.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "bench" / "results" / "crawl.json"
TARGET_CPU_MS_PER_PAGE = 2.0
HOSTS = 50
PAGE = (b"<!doctype html><html><head><title>Page %d</title></head><body><article>"
        + b"<p>Some ordinary paragraph text of a news article, repeated a little.</p>" * 40
        + b"</article></body></html>")


def _web(directory: Path, n_pages: int) -> list[str]:
    pages = directory / "pages"
    pages.mkdir(parents=True)
    (pages / "page.html").write_bytes(PAGE % 0)
    hosts = [f"site{i}.example" for i in range(HOSTS)]
    routes = {f"{hosts[i % HOSTS]}/story/{i}.html": {"body": "page.html"} for i in range(n_pages)}
    doc = {"version": 1, "hosts": {h: {"robots": "User-agent: *\nAllow: /\n"} for h in hosts}, "routes": routes}
    (directory / "routes.json").write_text(json.dumps(doc))
    return ["http://" + key for key in routes]


def _url_table(directory: Path, urls: list[str]) -> None:
    """A URL table as a finished `webtext harvest` leaves it (crawl refuses anything less)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.stats import StageCounts, write_stats_json
    from crawl.url_table import STATS_FILE

    directory.mkdir(parents=True)
    n = len(urls)
    pq.write_table(pa.table({
        "url": urls, "url_key": [u.split("://", 1)[1] for u in urls], "domain": [u.split("/")[2] for u in urls],
        "score": pa.array([3] * n, pa.int64()), "post_ids": [["abc123"]] * n, "subreddits": [["news"]] * n,
        "titles": [["a title"]] * n, "first_created_utc": pa.array([1_500_000_000] * n, pa.int64()),
        "num_posts": pa.array([1] * n, pa.int64()),
    }), directory / "urls-00000.parquet")
    write_stats_json(directory / STATS_FILE, {"harvest": StageCounts("harvest", n, n)},
                     {"urls": n, "complete": True})


# The crawl knobs of every run (the rest are defaults): no politeness waits, loopback allowed.
CRAWL_SETTINGS = {"download_delay": 0, "autothrottle": False, "concurrent_requests": 32,
                  "concurrent_requests_per_domain": 4, "allow_loopback": True, "resolve_dns": False}

# Plain Scrapy over the same pages: default components (CONCURRENT_ITEMS=1 as ours, see
# crawl/crawler.py), no robots.txt, no WARC, a no-op callback: the reference floor.
_PLAIN_SCRAPY = """
import sys, pyarrow.parquet as pq, scrapy
from scrapy.crawler import CrawlerProcess
urls, proxy = pq.read_table(sys.argv[1], columns=["url"]).column("url").to_pylist(), sys.argv[2]
class Plain(scrapy.Spider):
    name = "plain"
    async def start(self):
        for url in urls:
            yield scrapy.Request(url, meta={"proxy": proxy}, dont_filter=True)
    def parse(self, response):
        pass
process = CrawlerProcess({"LOG_LEVEL": "WARNING", "CONCURRENT_REQUESTS": 32, "CONCURRENT_REQUESTS_PER_DOMAIN": 4,
                          "TELNETCONSOLE_ENABLED": False, "CONCURRENT_ITEMS": 1})
process.crawl(Plain)
process.start()
"""

# Lean Scrapy: exactly our Scrapy settings and components (reactor, middlewares incl. robots.txt
# and the address guard, scheduler, download handler), but a no-op callback instead of our spider.
_LEAN_SCRAPY = """
import json, sys, pyarrow.parquet as pq, scrapy
from scrapy.crawler import AsyncCrawlerProcess
from crawl.config import CrawlConfig
from crawl.crawler import scrapy_settings
urls = pq.read_table(sys.argv[1], columns=["url"]).column("url").to_pylist()
config = CrawlConfig(**json.loads(sys.argv[2]))
class Lean(scrapy.Spider):
    name = "lean"
    async def start(self):
        for url in urls:
            yield scrapy.Request(url, dont_filter=True)
    def parse(self, response):
        pass
process = AsyncCrawlerProcess(scrapy_settings(config, loopback_hosts=frozenset(config.static_hosts)))
process.crawl(Lean)
process.start()
"""

CRAWLERS = ("webtext", "plain", "lean")


def _command(crawler: str, work: Path, n_pages: int, settings: dict, run: int) -> list[str]:
    table = str(work / f"urls{n_pages}" / "urls-00000.parquet")
    if crawler == "plain":
        return [sys.executable, "-c", _PLAIN_SCRAPY, table, settings["proxy"]]
    if crawler == "lean":
        return [sys.executable, "-c", _LEAN_SCRAPY, table, json.dumps(settings)]
    cmd = [sys.executable, "-m", "webtext.cli", "crawl", "--urls", str(work / f"urls{n_pages}"),
           "--out", str(work / f"out{n_pages}-{run}")]
    for key, value in settings.items():
        cmd += ["--set", f"crawl.{key}={json.dumps(value)}"]
    return cmd


def _crawl(crawler: str, work: Path, n_pages: int, run: int) -> dict:
    """One crawl of n_pages in a child process: wall seconds, child CPU seconds, pages fetched."""
    from crawl.replay import serve

    with serve(work / f"web{n_pages}") as server:
        settings = {**CRAWL_SETTINGS, "proxy": server.proxy_url, "static_hosts": {h: "127.0.0.1" for h in server.hosts}}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(_command(crawler, work, n_pages, settings, run), cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        served = sum(not url.endswith("/robots.txt") for _, url in server.request_log)
    crawl_s = pages_per_s = None
    if crawler == "webtext" and proc.returncode == 0:
        stats = json.loads((work / f"out{n_pages}-{run}" / "crawl_stats.json").read_text())
        served, crawl_s, pages_per_s = (stats["stages"]["crawl"]["out"], stats["this_run"]["seconds"],
                                        stats["this_run"]["pages_per_second"])
    if proc.returncode != 0 or served != n_pages:
        raise RuntimeError(f"{crawler} crawl of {n_pages} pages failed ({served} fetched):\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"pages": n_pages, "ok": served, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "crawl_s": crawl_s, "pages_per_s": pages_per_s}


def _least(runs: list[dict]) -> dict:
    return {**min(runs, key=lambda r: r["cpu_s"]), "cpu_s_all": [r["cpu_s"] for r in runs]}


def _marginal_ms(base: dict, big: dict) -> float:
    return (big["cpu_s"] - base["cpu_s"]) / (big["pages"] - base["pages"]) * 1000


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000, help="pages in the measured crawl")
    parser.add_argument("--baseline-pages", type=int, default=HOSTS, help="pages in the fixed-cost baseline crawl")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each crawl (the least CPU counts)")
    args = parser.parse_args(argv or [])
    if not HOSTS <= args.baseline_pages < args.pages or args.repeats < 1:
        parser.error(f"need {HOSTS} <= --baseline-pages < --pages and --repeats >= 1")
    load_before = os.getloadavg()
    runs: dict[tuple[str, int], list[dict]] = {(c, n): [] for c in CRAWLERS for n in (args.baseline_pages, args.pages)}
    with tempfile.TemporaryDirectory(prefix="bench_crawl.") as tmp:
        work = Path(tmp)
        for n in (args.baseline_pages, args.pages):
            _url_table(work / f"urls{n}", _web(work / f"web{n}", n))
        for run in range(args.repeats):
            for crawler in CRAWLERS:
                for n in (args.baseline_pages, args.pages):
                    runs[(crawler, n)].append(_crawl(crawler, work, n, run))
    best = {key: _least(value) for key, value in runs.items()}
    marginal = {c: _marginal_ms(best[(c, args.baseline_pages)], best[(c, args.pages)]) for c in CRAWLERS}
    median = {c: (statistics.median(r["cpu_s"] for r in runs[(c, args.pages)])
                  - statistics.median(r["cpu_s"] for r in runs[(c, args.baseline_pages)]))
              / (args.pages - args.baseline_pages) * 1000 for c in CRAWLERS}
    base, big = best[("webtext", args.baseline_pages)], best[("webtext", args.pages)]
    result = {
        "baseline": base, "measured": big,
        "plain_scrapy_baseline": best[("plain", args.baseline_pages)], "plain_scrapy": best[("plain", args.pages)],
        "lean_scrapy_baseline": best[("lean", args.baseline_pages)], "lean_scrapy": best[("lean", args.pages)],
        "repeats": args.repeats,
        "cpu_ms_per_page_marginal": round(marginal["webtext"], 3),
        "plain_scrapy_cpu_ms_per_page_marginal": round(marginal["plain"], 3),
        "lean_scrapy_cpu_ms_per_page_marginal": round(marginal["lean"], 3),
        "median_cpu_ms_per_page_marginal": {c: round(v, 3) for c, v in median.items()},
        "cpu_ratio_vs_plain_scrapy": round(marginal["webtext"] / marginal["plain"], 3),
        "cpu_ratio_vs_lean_scrapy": round(marginal["webtext"] / marginal["lean"], 3),
        "cpu_ms_per_page_including_startup": round(big["cpu_s"] / big["pages"] * 1000, 3),
        "target_cpu_ms_per_page": TARGET_CPU_MS_PER_PAGE,
        "meets_target": marginal["webtext"] <= TARGET_CPU_MS_PER_PAGE,
        "cpu_ratio_measured_vs_baseline": round(big["cpu_s"] / base["cpu_s"], 3),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
    }
    print(f"{'run':<12}{'pages':>7}{'ok':>7}{'wall s':>8}{'crawl s':>9}{'pages/s':>9}{'cpu s (least of runs)':>34}")
    for (crawler, n), run in best.items():
        crawl_s = f"{run['crawl_s']:>9.2f}" if run["crawl_s"] is not None else f"{'-':>9}"
        rate = f"{run['pages_per_s']:>9.1f}" if run["pages_per_s"] is not None else f"{'-':>9}"
        cpus = ", ".join(f"{c:.2f}" for c in run["cpu_s_all"])
        print(f"{crawler:<12}{n:>7}{run['ok']:>7}{run['wall_s']:>8.2f}{crawl_s}{rate}{run['cpu_s']:>8.2f}  ({cpus})")
    print(f"marginal CPU per page: webtext crawl {marginal['webtext']:.3f} ms (target <= {TARGET_CPU_MS_PER_PAGE} ms: "
          f"{'met' if result['meets_target'] else 'NOT met'}; median of runs {median['webtext']:.3f} ms); "
          f"including startup: {result['cpu_ms_per_page_including_startup']:.3f} ms")
    print(f"plain Scrapy, default settings, no-op callback: {marginal['plain']:.3f} ms "
          f"(webtext crawl / plain = {result['cpu_ratio_vs_plain_scrapy']:.2f}x)")
    print(f"lean Scrapy, our settings and components, no-op callback: {marginal['lean']:.3f} ms "
          f"(webtext crawl / lean = {result['cpu_ratio_vs_lean_scrapy']:.2f}x)")
    print(f"load average before/after: {result['machine']['loadavg_before']} / {result['machine']['loadavg_after']}")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
