"""Crawler throughput and CPU cost per page against the loopback replay server.

    .venv/bin/python -m bench.bench_crawl [--pages 2000]

The replay server runs in this process; `webtext crawl` runs as a child, so
getrusage(RUSAGE_CHILDREN) is the crawler's CPU alone. A baseline crawl of a few pages in the
same process measures the fixed cost (imports, reactor, robots.txt); the marginal CPU per page
is (cpu_big - cpu_base) / (pages_big - pages_base). The same pair of runs with plain Scrapy
(default settings, no-op callback) gives the floor, reported as a ratio.
Target: <= 2 ms CPU per page.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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
    import pyarrow as pa
    import pyarrow.parquet as pq

    directory.mkdir(parents=True)
    n = len(urls)
    pq.write_table(pa.table({
        "url": urls, "url_key": [u.split("://", 1)[1] for u in urls], "domain": [u.split("/")[2] for u in urls],
        "score": pa.array([3] * n, pa.int64()), "post_ids": [["abc123"]] * n, "subreddits": [["news"]] * n,
        "titles": [["a title"]] * n, "first_created_utc": pa.array([1_500_000_000] * n, pa.int64()),
        "num_posts": pa.array([1] * n, pa.int64()),
    }), directory / "urls-00000.parquet")


# Plain Scrapy over the same pages: default components (CONCURRENT_ITEMS=1 as ours, see
# crawl/crawler.py), no robots.txt, no WARC, a no-op callback: the floor of any Scrapy crawler.
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


def _plain_scrapy(work: Path, n_pages: int) -> dict:
    from crawl.replay import serve

    web = work / f"plainweb{n_pages}"
    urls = _web(web, n_pages)
    _url_table(work / f"plainurls{n_pages}", urls)
    with serve(web) as server:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _PLAIN_SCRAPY, str(work / f"plainurls{n_pages}" / "urls-00000.parquet"),
                               server.proxy_url], cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        served = len(server.request_log)
    if proc.returncode != 0 or served != n_pages:
        raise RuntimeError(f"plain Scrapy crawl failed ({served} of {n_pages} served):\n{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"pages": n_pages, "ok": served, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
            "crawl_s": None, "pages_per_s": None}


def _crawl(work: Path, n_pages: int) -> dict:
    """One crawl of n_pages in a child process: wall seconds, child CPU seconds, outcomes."""
    from crawl.replay import serve

    web = work / f"web{n_pages}"
    urls = _web(web, n_pages)
    _url_table(work / f"urls{n_pages}", urls)
    out = work / f"out{n_pages}"
    with serve(web) as server:
        static = json.dumps({h: "127.0.0.1" for h in server.hosts})
        cmd = [sys.executable, "-m", "webtext.cli", "crawl", "--urls", str(work / f"urls{n_pages}"), "--out", str(out)]
        for s in [f"crawl.proxy={server.proxy_url}", f"crawl.static_hosts={static}", "crawl.resolve_dns=false",
                  "crawl.allow_loopback=true", "crawl.download_delay=0", "crawl.autothrottle=false",
                  "crawl.concurrent_requests=32", "crawl.concurrent_requests_per_domain=4"]:
            cmd += ["--set", s]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"crawl of {n_pages} pages failed:\n{proc.stdout}\n{proc.stderr}")
    stats = json.loads((out / "crawl_stats.json").read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"pages": n_pages, "ok": stats["stages"]["crawl"]["out"], "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3), "crawl_s": stats["this_run"]["seconds"],
            "pages_per_s": stats["this_run"]["pages_per_second"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=2000, help="pages in the measured crawl")
    parser.add_argument("--baseline-pages", type=int, default=HOSTS, help="pages in the fixed-cost baseline crawl")
    args = parser.parse_args(argv or [])
    with tempfile.TemporaryDirectory(prefix="bench_crawl.") as tmp:
        base = _crawl(Path(tmp), args.baseline_pages)
        big = _crawl(Path(tmp), args.pages)
        plain_base = _plain_scrapy(Path(tmp), args.baseline_pages)
        plain = _plain_scrapy(Path(tmp), args.pages)
    marginal_ms = (big["cpu_s"] - base["cpu_s"]) / (big["pages"] - base["pages"]) * 1000
    plain_ms = (plain["cpu_s"] - plain_base["cpu_s"]) / (plain["pages"] - plain_base["pages"]) * 1000
    result = {
        "baseline": base, "measured": big, "plain_scrapy_baseline": plain_base, "plain_scrapy": plain,
        "cpu_ms_per_page_marginal": round(marginal_ms, 3),
        "plain_scrapy_cpu_ms_per_page_marginal": round(plain_ms, 3),
        "cpu_ratio_vs_plain_scrapy": round(marginal_ms / plain_ms, 3),
        "cpu_ms_per_page_including_startup": round(big["cpu_s"] / big["pages"] * 1000, 3),
        "target_cpu_ms_per_page": TARGET_CPU_MS_PER_PAGE,
        "meets_target": marginal_ms <= TARGET_CPU_MS_PER_PAGE,
        "cpu_ratio_measured_vs_baseline": round(big["cpu_s"] / base["cpu_s"], 3),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    print(f"{'run':<10}{'pages':>8}{'ok':>8}{'wall s':>9}{'crawl s':>9}{'pages/s':>9}{'cpu s':>8}")
    for name, run in (("baseline", base), ("measured", big), ("plain-base", plain_base), ("plain", plain)):
        crawl_s = f"{run['crawl_s']:>9.2f}" if run["crawl_s"] is not None else f"{'-':>9}"
        rate = f"{run['pages_per_s']:>9.1f}" if run["pages_per_s"] is not None else f"{'-':>9}"
        print(f"{name:<10}{run['pages']:>8}{run['ok']:>8}{run['wall_s']:>9.2f}{crawl_s}{rate}{run['cpu_s']:>8.2f}")
    print(f"marginal CPU per page: {marginal_ms:.3f} ms (target <= {TARGET_CPU_MS_PER_PAGE} ms: "
          f"{'met' if result['meets_target'] else 'NOT met'}); "
          f"including startup: {result['cpu_ms_per_page_including_startup']:.3f} ms")
    print(f"plain Scrapy (no robots, no WARC, no-op callback): {plain_ms:.3f} ms per page; "
          f"webtext crawl / plain Scrapy = {result['cpu_ratio_vs_plain_scrapy']:.2f}x")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
