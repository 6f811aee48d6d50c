"""Harvest throughput: records per second per core, inner loop and whole Beam pipeline.

    .venv/bin/python -m bench.bench_harvest [--records N] [--in-memory-records M]

Generates a synthetic Pushshift dump (1M records by default: a large dump, so that the
pipeline's fixed start-up of ~0.5 CPU s weighs as little as on real months of 10M+ records;
2018-style records with the full field set, written as .zst with a 2 GiB window) whose mix
follows modern dumps: most submissions score 1-2, about 40% are self posts, a third of link
posts go to image/video/social hosts, a few percent are NSFW or crossposts that nest a copy of
their parent. Then it times, in this process:

- `decompress+split`: reading the dump into lines (the floor every variant pays),
- on the first `--in-memory-records` lines, held in memory:
- `json.loads all`: parsing every line with the standard library (results discarded, as a
  streaming reader would), the naive approach's cost before any rule runs: the baseline,
- `orjson.loads all`: the same with orjson, the parser the harvest uses,
- `filter`: the harvest rules on lines already in memory (`HarvestRules.judge_lines`),
- `read+filter`: decompress, split and filter in one loop, what one Beam worker does per dump
  minus Beam itself,
- `pipeline`: `run_harvest` end to end on the DirectRunner with one worker (shuffle, merge,
  Parquet, counters and Beam's own overhead included): the figure the target applies to,

and the real 2005 Pushshift sample (../shared, if present), where 71% of records pass the
score rule, so far more URLs are normalised per record than in modern dumps. Rates are per
CPU second of this process (= per core) and per wall second; the ratios compare against
`json.loads all` of the same run, so a loaded machine shifts rates but hardly ratios.
"""

from __future__ import annotations

import argparse
import json
import lzma
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson
import zstandard

from crawl.config import HarvestConfig
from crawl.dumps import iter_line_batches
from crawl.harvest import run_harvest
from crawl.harvest_rules import HarvestRules
from sample.generate import base36
from webtext.config import load_config

RESULTS = Path(__file__).resolve().parent / "results" / "harvest.json"
SHARED_REDDIT = Path(__file__).resolve().parents[2] / "shared" / "data" / "reddit"
TARGET = 50_000  # records/s per core (the target)

NEWS_HOSTS = [f"www.news{i}.example" for i in range(300)] + [f"blog{i}.example.org" for i in range(300)]
MEDIA_URLS = ["https://i.imgur.com/{id}.jpg", "https://i.redd.it/{id}.png", "https://www.youtube.com/watch?v={id}",
              "https://twitter.com/user/status/{n}", "https://gfycat.com/{id}", "https://v.redd.it/{id}"]
SUBREDDITS = ["news", "worldnews", "politics", "technology", "science", "AskReddit", "pics", "funny",
              "gaming", "programming", "Python", "europe", "Futurology", "books", "history"]


def _record(n: int, rng: random.Random) -> dict:
    post_id = base36(60_000_000 + n)
    sub = rng.choice(SUBREDDITS)
    roll = rng.random()
    score = 1 if roll < 0.55 else 2 if roll < 0.65 else rng.randint(3, 40) if roll < 0.9 else rng.randint(41, 30_000)
    is_self = rng.random() < 0.4
    title = " ".join(rng.choice(["Breaking", "analysis", "of", "the", "new", "report", "Grüße", "über",
                                 "why", "city", "council", "votes", "東京", "science"]) for _ in range(rng.randint(4, 14)))
    if is_self:
        url = f"https://www.reddit.com/r/{sub}/comments/{post_id}/some_title/"
        domain = f"self.{sub}"
    elif rng.random() < 0.33:
        url = rng.choice(MEDIA_URLS).format(id=post_id + "AbC", n=900_000_000_000 + n)
        domain = url.split("/")[2]
    else:
        host = rng.choice(NEWS_HOSTS)
        article = n if rng.random() > 0.1 else rng.randrange(max(n, 1))  # some links are reposted
        url = f"http://{host}/2018/03/story-{article}.html"
        if rng.random() < 0.2:
            url += "?utm_source=reddit&amp;utm_medium=social&amp;id=" + str(article)
        domain = host.removeprefix("www.")
    record = {
        "archived": False, "author": f"user{rng.randrange(10**6)}", "author_flair_css_class": None,
        "author_flair_text": None, "brand_safe": True, "can_gild": True, "contest_mode": False,
        "created_utc": 1519862400 + n * 13, "distinguished": None, "domain": domain, "edited": False,
        "gilded": 0, "hidden": False, "hide_score": False, "id": post_id, "is_crosspostable": True,
        "is_reddit_media_domain": domain in ("i.redd.it", "v.redd.it"), "is_self": is_self,
        "is_video": False, "link_flair_css_class": None, "link_flair_richtext": [], "link_flair_text": None,
        "locked": False, "media": None, "media_embed": {}, "no_follow": score < 3, "num_comments": rng.randrange(200),
        "num_crossposts": 0, "over_18": rng.random() < 0.05, "parent_whitelist_status": "all_ads",
        "permalink": f"/r/{sub}/comments/{post_id}/some_title/", "pinned": False, "retrieved_on": 1520467337 + n,
        "rte_mode": "markdown", "score": score, "secure_media": None, "secure_media_embed": {},
        "selftext": (" ".join(["lorem ipsum dolor sit amet"] * rng.randint(5, 60))) if is_self else "",
        "send_replies": True, "spoiler": False, "stickied": False, "subreddit": sub,
        "subreddit_id": "t5_2qh" + base36(SUBREDDITS.index(sub)), "subreddit_name_prefixed": f"r/{sub}",
        "subreddit_subscribers": 1_000_000, "subreddit_type": "public", "suggested_sort": None,
        "thumbnail": "self" if is_self else "default", "thumbnail_height": None, "thumbnail_width": None,
        "title": title, "url": url, "whitelist_status": "all_ads",
    }
    if rng.random() < 0.03:  # a crosspost nests its parent, with the parent's own score/is_self/url
        parent = {k: record[k] for k in ("id", "score", "is_self", "over_18", "url", "title", "subreddit")}
        parent.update(score=rng.randint(1, 5000), id=base36(50_000_000 + n))
        record["crosspost_parent"] = "t3_" + parent["id"]
        record["crosspost_parent_list"] = [parent]
    return record


def make_dump(path: Path, records: int, seed: int = 2018) -> int:
    rng = random.Random(seed)
    params = zstandard.ZstdCompressionParameters.from_level(3, window_log=31, enable_ldm=True)
    compressor = zstandard.ZstdCompressor(compression_params=params)
    with open(path, "wb") as fh, compressor.stream_writer(fh, closefd=False) as writer:  # size unknown: 2 GiB window
        for n in range(records):
            writer.write(json.dumps(_record(n, rng), separators=(",", ":"), sort_keys=True).encode() + b"\n")
    return path.stat().st_size


def harvest_config() -> HarvestConfig:
    """The defaults, without the date bound: the synthetic posts are from 2018, after the
    default harvest.created_before, which would drop every one of them."""
    return HarvestConfig(created_before=None)


def timed(fn, repeat: int = 1) -> tuple[float, float, object]:
    """(cpu seconds, wall seconds, result) of the fastest of `repeat` runs."""
    best = None
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        result = fn()
        run = (time.process_time() - cpu, time.perf_counter() - wall, result)
        if best is None or run[0] < best[0]:
            best = run
    return best


def _lines(path: Path):
    """The batches of lines of a dump, read with the default harvest config's sizes."""
    config = harvest_config()
    return iter_line_batches(str(path), config.read_chunk_bytes, config.max_line_bytes, config.zstd_window_log_max)


def _filter_all(rules: HarvestRules, lines: list) -> int:
    return len(rules.judge_lines(lines, Counter()))


def _measure(name: str, records: int, fn, repeat: int = 1) -> dict:
    cpu, wall, _ = timed(fn, repeat)
    return {"variant": name, "records": records, "cpu_s": round(cpu, 4), "wall_s": round(wall, 4),
            "records_per_cpu_s": round(records / max(cpu, 1e-9)), "records_per_wall_s": round(records / max(wall, 1e-9))}


def _parse_all(loads, lines: list) -> None:
    for line in lines:
        if line:
            loads(line)


def _read_and_filter(path: Path) -> int:
    rules, kept = HarvestRules(harvest_config()), 0
    for lines in _lines(path):
        kept += len(rules.judge_lines(lines, Counter()))
    return kept


def bench_lines(label: str, lines: list, repeat: int) -> list[dict]:
    rules = HarvestRules(harvest_config())
    return [
        _measure(f"{label}: json.loads all", len(lines), lambda: _parse_all(json.loads, lines), repeat),
        _measure(f"{label}: orjson.loads all", len(lines), lambda: _parse_all(orjson.loads, lines), repeat),
        _measure(f"{label}: filter", len(lines), lambda: _filter_all(rules, lines), repeat),
    ]


def _count_lines(path: Path) -> int:
    return sum(len(lines) for lines in _lines(path))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records in the generated dump")
    parser.add_argument("--in-memory-records", type=int, default=200_000,
                        help="lines held in memory for the parse/filter-only variants")
    args = parser.parse_args(argv or [])
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench_harvest_") as tmp:
        dump = Path(tmp) / "RS_2018-03.zst"
        size = make_dump(dump, args.records)
        results.append(_measure("synthetic: decompress+split", args.records, lambda: _count_lines(dump)))
        lines = []
        for batch in _lines(dump):
            lines.extend(batch[: args.in_memory_records - len(lines)])
            if len(lines) >= args.in_memory_records:
                break
        results += bench_lines("synthetic", lines, repeat=2)
        lines.clear()
        results.append(_measure("synthetic: read+filter (no Beam)", args.records, lambda: _read_and_filter(dump), 2))
        config = load_config(None, ["beam.direct_num_workers=1", "beam.direct_running_mode=in_memory",
                                    "harvest.created_before=null"])
        stats = {}
        results.append(_measure(
            "synthetic: pipeline (DirectRunner, 1 worker)", args.records,
            lambda: stats.update(run_harvest([str(dump)], str(Path(tmp) / "out"), config.harvest, config.beam)), 2))
        kept_posts, urls = stats["counts"]["harvest"].records_out, stats["urls"]
    if (SHARED_REDDIT / "RS_v2_2005-07.xz").exists():
        real = [x for name in ("RS_v2_2005-06.xz", "RS_v2_2005-07.xz")
                for x in lzma.decompress((SHARED_REDDIT / name).read_bytes()).split(b"\n") if x]
        results += bench_lines("real 2005 sample (x20)", real * 20, repeat=2)

    baseline = {result["variant"].split(":")[0]: result["records_per_cpu_s"] for result in results if result["variant"].endswith(": json.loads all")}
    for result in results:
        base = baseline.get(result["variant"].split(":")[0])
        result["vs_json_loads_all"] = round(result["records_per_cpu_s"] / base, 2) if base else None
    pipeline = next(result for result in results if "pipeline" in result["variant"])
    summary = {
        "records": args.records, "dump_bytes": size, "kept_posts": kept_posts, "urls": urls,
        "target_records_per_cpu_s": TARGET,
        "pipeline_records_per_cpu_s": pipeline["records_per_cpu_s"],
        "meets_target": pipeline["records_per_cpu_s"] >= TARGET,
        "results": results,
    }
    print(f"{'variant':<48}{'rec/s/core':>12}{'rec/s wall':>12}{'x json.loads':>14}")
    for result in results:
        ratio = "" if result["vs_json_loads_all"] is None else f"{result['vs_json_loads_all']:.2f}"
        print(f"{result['variant']:<48}{result['records_per_cpu_s']:>12,}{result['records_per_wall_s']:>12,}{ratio:>14}")
    print(f"{args.records:,} records ({size / 1e6:.1f} MB .zst) -> {kept_posts:,} kept posts, {urls:,} URLs; "
          f"pipeline {pipeline['records_per_cpu_s']:,} records/s per core (target {TARGET:,})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
