"""Peak memory of one crawl shard against the size of the URL table (issue 15).

    .venv/bin/python -m bench.scale_crawl [--sizes 1000000 10000000] [--shard 0/1000]

Synthetic URL tables in harvest's schema (crawl/harvest.py URL_SCHEMA, files of FILE_ROWS rows
sorted by url_key, plus the `_harvest_stats.json` of a completed harvest) are written once and
cached under the system temp dir. Each is crawled by one `webtext crawl --shard 0/1000`
process into a fresh folder; every URL is on a reserved `.invalid` host and DNS is off
(`crawl.resolve_dns=false`), so each of its ~N/1000 URLs ends as a `dns` outcome without a
packet leaving the machine, and the whole path runs: table validation, shard selection,
resume state, the lazy row stream into the spider, log and stats. The peak RSS of that process
(os.wait4's rusage) is the figure. Target: at 10M rows <= 1.2x the 1M figure and <= 1 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "bench" / "results" / "scale_crawl.json"
CACHE = Path(tempfile.gettempdir()) / "webtext-bench-scale-crawl"
FILE_ROWS = 1_000_000  # rows per urls-*.parquet file
HOSTS = 100_000
TARGET_RATIO, TARGET_MB = 1.2, 1024.0
SETTINGS = ["crawl.resolve_dns=false", "crawl.obey_robots=false", "crawl.retry_times=0", "crawl.download_delay=0",
            "crawl.autothrottle=false", "crawl.concurrent_requests=64", "crawl.concurrent_requests_per_domain=8"]


def url_table(rows: int) -> Path:
    """A completed harvest output of `rows` synthetic URLs (written on first use, then cached)."""
    directory = CACHE / f"urls-{rows}"
    if (directory / "_harvest_stats.json").exists():
        return directory
    import pyarrow as pa
    import pyarrow.parquet as pq

    from core.stats import StageCounts, write_stats_json
    from crawl.harvest import URL_SCHEMA, url_file_name
    from crawl.url_table import STATS_FILE

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    files = -(-rows // FILE_ROWS)
    for index in range(files):
        ids = range(index, rows, files)  # as harvest spreads rows over files, each file sorted by url_key
        keys = sorted(f"h{i % HOSTS}.invalid/story/{i:09d}-a-headline-of-some-length.html" for i in ids)
        n = len(keys)
        table = pa.table({
            "url": ["http://" + key for key in keys],
            "url_key": keys,
            "domain": [key.split("/", 1)[0] for key in keys],
            "score": pa.array([3 + (i % 500) for i in range(n)], pa.int64()),
            "post_ids": [[f"{i:x}"] for i in range(n)],
            "subreddits": [["news"]] * n,
            "titles": [["A headline of an ordinary length for a link"]] * n,
            "first_created_utc": pa.array([1_300_000_000 + i for i in range(n)], pa.int64()),
            "num_posts": pa.array([1] * n, pa.int64()),
        }, schema=URL_SCHEMA)
        pq.write_table(table, directory / url_file_name(index, files), compression="zstd")
        del table, keys
    write_stats_json(directory / STATS_FILE, {"harvest": StageCounts("harvest", rows, rows)},
                     {"urls": rows, "complete": True})
    return directory


def crawl_peak_rss(urls: Path, shard: str) -> dict:
    """Crawl `shard` of `urls` in a child process; its peak RSS (MB), wall time and stats."""
    out = Path(tempfile.mkdtemp(prefix="scale-crawl-out-"))
    cmd = [sys.executable, "-m", "webtext.cli", "crawl", "--urls", str(urls), "--out", str(out), "--shard", shard]
    for setting in SETTINGS:
        cmd += ["--set", setting]
    try:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        output = proc.stdout.read().decode()
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - started
        name = "crawl_stats.json" if shard.endswith("/1") else f"crawl_stats-{_tag(shard)}.json"
        if proc.returncode != 0:
            raise RuntimeError(f"crawl exited {proc.returncode}:\n{output[-3000:]}")
        stats = json.loads((out / name).read_text())
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "seconds": round(seconds, 1),
            "shard_urls": stats["urls"], "outcomes": stats["stages"]["crawl"]["dropped"]}


def _tag(shard: str) -> str:
    index, count = shard.split("/")
    return f"{int(index):05d}-of-{int(count):05d}"


def run(sizes: tuple[int, int] = (1_000_000, 10_000_000), shard: str = "0/1000") -> dict:
    small, large = sizes
    runs = {rows: crawl_peak_rss(url_table(rows), shard) for rows in sizes}
    ratio = runs[large]["peak_rss_mb"] / runs[small]["peak_rss_mb"]
    return {
        "rss_1m_mb": runs[small]["peak_rss_mb"], "rss_10m_mb": runs[large]["peak_rss_mb"], "ratio": round(ratio, 3),
        "targets": {"ratio_max": TARGET_RATIO, "rss_max_mb": TARGET_MB},
        "met": ratio <= TARGET_RATIO and runs[large]["peak_rss_mb"] <= TARGET_MB,
        "shard": shard, "rows": list(sizes), "runs": {str(rows): result for rows, result in runs.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[1_000_000, 10_000_000])
    parser.add_argument("--shard", default="0/1000")
    args = parser.parse_args()
    result = run(tuple(args.sizes), args.shard)
    RESULT.parent.mkdir(exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
