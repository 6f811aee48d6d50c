"""Crawler throughput and CPU cost per page against the loopback replay server.

    .venv/bin/python -m bench.bench_crawl [--pages 2000]

The replay server runs in this process; `webtext crawl` runs as a child, so
getrusage(RUSAGE_CHILDREN) is the crawler's CPU alone. A baseline crawl of a few pages in the
same process measures the fixed cost (imports, reactor, robots.txt); the marginal CPU per page
is (cpu_big - cpu_base) / (pages_big - pages_base). Target: <= 2 ms CPU per page.
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


def _crawl(work: Path, n_pages: int) -> dict:
    """One crawl of n_pages in a child process: wall seconds, child CPU seconds, outcomes."""
    from crawl.replay import serve

    web = work / f"web{n_pages}"
    urls = _web(web, n_pages)
    _url_table(work / f"urls{n_pages}", urls)
    out = work / f"out{n_pages}"
    with serve(web) as server:
        static = json.dumps({h: "127.0.0.1" for h in server.hosts})
        cmd = [sys.executable, "/tmp/h3/wt.py", "crawl", "--urls", str(work / f"urls{n_pages}"), "--out", str(out)]
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
    marginal_ms = (big["cpu_s"] - base["cpu_s"]) / (big["pages"] - base["pages"]) * 1000
    result = {
        "baseline": base, "measured": big,
        "cpu_ms_per_page_marginal": round(marginal_ms, 3),
        "cpu_ms_per_page_including_startup": round(big["cpu_s"] / big["pages"] * 1000, 3),
        "target_cpu_ms_per_page": TARGET_CPU_MS_PER_PAGE,
        "meets_target": marginal_ms <= TARGET_CPU_MS_PER_PAGE,
        "cpu_ratio_measured_vs_baseline": round(big["cpu_s"] / base["cpu_s"], 3),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
    }
    print(f"{'run':<10}{'pages':>8}{'ok':>8}{'wall s':>9}{'crawl s':>9}{'pages/s':>9}{'cpu s':>8}")
    for name, run in (("baseline", base), ("measured", big)):
        print(f"{name:<10}{run['pages']:>8}{run['ok']:>8}{run['wall_s']:>9.2f}{run['crawl_s']:>9.2f}"
              f"{run['pages_per_s']:>9.1f}{run['cpu_s']:>8.2f}")
    print(f"marginal CPU per page: {marginal_ms:.3f} ms (target <= {TARGET_CPU_MS_PER_PAGE} ms: "
          f"{'met' if result['meets_target'] else 'NOT met'}); "
          f"including startup: {result['cpu_ms_per_page_including_startup']:.3f} ms")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
