"""The crawl's politeness floor: how the harvested links spread over hosts.

The crawler waits `crawl.download_delay` seconds between two requests to one host, so the host
with the most URLs bounds the crawl's wall time from below, however many machines crawl:
floor = largest host queue x delay. This script applies the harvest's own rules (crawl/
harvest_rules.py: score, self posts, blocked domains, URL normalisation, one row per url_key)
to real Pushshift dumps, counts the distinct URLs per host (the host Scrapy keys its per-host
slot on) and projects the floor for a table of `--links` URLs, assuming the same host shares.

    python -m bench.host_distribution [DUMP...] [--links 45000000] [--top 10]

Defaults: the real sample in ../shared/data/reddit. Writes bench/results/host_distribution.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from core.fsio import atomic_write_text
from crawl.config import HarvestConfig
from crawl.dumps import iter_line_batches, resolve_dumps
from crawl.harvest_rules import HarvestRules
from crawl.urls import host_of_normalized

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DUMPS = [str(REPO.parent / "shared" / "data" / "reddit" / "RS_2005-06_07.long31.zst")]
RESULTS = REPO / "bench" / "results" / "host_distribution.json"
PAPER_LINKS = 45_000_000


def host_counts(dumps: list[str], config: HarvestConfig) -> tuple[Counter, int]:
    """(distinct harvested URLs per host, dump lines read), by the harvest's rules."""
    rules = HarvestRules(config)
    urls: dict[str, str] = {}  # url_key -> normalised URL: one row per url_key, as the URL table
    lines = 0
    for dump in resolve_dumps(dumps):
        for batch in iter_line_batches(dump, config.read_chunk_bytes, config.max_line_bytes,
                                       config.zstd_window_log_max):
            lines += len(batch)
            for url_key, post in rules.judge_lines(batch, Counter()):
                urls.setdefault(url_key, post.url)
    return Counter(host_of_normalized(url) for url in urls.values()), lines


def summary(hosts: Counter, lines: int, links: int, delay: float, top: int) -> dict:
    total = sum(hosts.values())
    largest = hosts.most_common(1)[0][1] if hosts else 0
    share = largest / total if total else 0.0
    projected_queue = share * links
    return {
        "dump_lines": lines,
        "urls": total,
        "hosts": len(hosts),
        "top_hosts": [{"host": host, "urls": n, "share": round(n / total, 5)} for host, n in hosts.most_common(top)],
        "largest_host_share": round(share, 5),
        "herfindahl": round(sum((n / total) ** 2 for n in hosts.values()), 5) if total else 0.0,
        "hosts_with_one_url": sum(1 for n in hosts.values() if n == 1),
        "download_delay_s": delay,
        "floor_here_s": largest * delay,
        "projection": {
            "links": links,
            "largest_host_queue": round(projected_queue),
            "floor_s": round(projected_queue * delay),
            "floor_days": round(projected_queue * delay / 86400, 1),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dumps", nargs="*", default=DEFAULT_DUMPS)
    parser.add_argument("--links", type=int, default=PAPER_LINKS, help="URL table size to project to")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--delay", type=float, default=None, help="seconds per host (default crawl.download_delay)")
    args = parser.parse_args(argv)
    from crawl.config import CrawlConfig

    delay = CrawlConfig().download_delay if args.delay is None else args.delay
    hosts, lines = host_counts(args.dumps, HarvestConfig())
    result = {"dumps": [Path(d).name for d in args.dumps], **summary(hosts, lines, args.links, delay, args.top)}
    atomic_write_text(str(RESULTS), json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
