"""The scale benchmark (issue 15): the measurements behind docs/scale.md.

    .venv/bin/python -m bench scale            # everything (tens of minutes on the 2-core box)
    .venv/bin/python -m bench.bench_scale --only tokenize hosts

Runs, each where its module exists:

- `bench/scale_harvest.py` run(): peak RSS of harvest on synthetic dumps of 1M and 10M records
  (target: 10M <= 1.5x 1M);
- `bench/scale_crawl.py` run(): peak RSS of one crawl shard (`--shard 0/1000`) over URL tables
  of 1M and 10M rows (target: 10M <= 1.2x 1M and <= 1 GiB);
- `bench/scale_build.py` run(): build on one WARC of real-size pages, 1 vs 2 workers, with
  shared cores and with one core per worker (target >= 1.7x);
- tokenize, here: `tokenize_shards` with one worker, in this process, on the visible text of
  the 990 real pages of ../shared/data/extraction-eval (lxml's text_content: real languages
  and markup-free words, a 8,192-token vocabulary learned from them; without ../shared,
  bench/bench_tokenize.py's synthetic documents), tokens per wall and per CPU second, bytes per
  token and the process's peak RSS;
- hosts: the host distribution of the real Pushshift sample's harvested links and the crawl's
  politeness floor projected to 45M links (bench/host_distribution.py).

Writes bench/results/scale.json (one key per part, plus the machine's CPU count and load).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.fsio import atomic_write_text

RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"
SCALE_MODULES = {"harvest": "bench.scale_harvest", "crawl": "bench.scale_crawl", "build": "bench.scale_build"}
PARTS = [*SCALE_MODULES, "tokenize", "hosts"]


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def run_scale_module(name: str) -> dict | None:
    """`run()` of bench/scale_<name>.py with its defaults, or None if the module is not there."""
    try:
        module = importlib.import_module(SCALE_MODULES[name])
    except ModuleNotFoundError as exc:
        if exc.name != SCALE_MODULES[name]:
            raise
        return None
    return module.run()


def page_texts() -> list[str] | None:
    """The visible text of the real evaluation pages (None without ../shared)."""
    import lxml.html

    from bench.scale_build import EVAL_SET, eval_pages

    if not Path(EVAL_SET).exists():
        return None
    texts = []
    for _name, html in eval_pages():
        try:
            page = lxml.html.fromstring(html)
        except (ValueError, lxml.etree.ParserError):
            continue
        for code in page.xpath("//script|//style|//noscript"):
            code.drop_tree()
        text = " ".join(page.text_content().split())
        if text:
            texts.append(text)
    return texts


# The tokenize stage alone, one worker, in a process of its own (its rusage is the stage's).
TOKENIZE_CHILD = """
import json, sys
from training.config import TokenizerConfig
from training.tokenize import tokenize_shards
root = sys.argv[1]
config = TokenizerConfig(splits=["train"], shard_tokens=1_000_000, workers=1)
manifest = tokenize_shards(root + "/dataset", root + "/tok", root + "/tokens", config, progress=False)
print(json.dumps(manifest["splits"]["train"]["tokens"]))
"""


def measure_tokenize(vocab: int = 8192) -> dict:
    """Tokens per second of the whole tokenize stage (Parquet read, encode, shard writes) with
    one worker, in a child process: wall and CPU time (its rusage), and its peak RSS."""
    import subprocess
    import sys

    from bench.bench_tokenize import synthetic_texts
    from training.config import TokenizerConfig
    from training.tokenizer import train_tokenizer

    texts = page_texts()
    source = "extraction-eval pages" if texts else "synthetic"
    texts = texts or synthetic_texts(4000)
    docs = len(texts)
    text_bytes = sum(len(text.encode()) for text in texts)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "dataset" / "train").mkdir(parents=True)
        for part in range(4):
            pq.write_table(pa.table({"text": texts[part::4]}), root / "dataset" / "train" / f"part-{part}.parquet",
                           row_group_size=250)
        train_tokenizer(iter(texts), TokenizerConfig(vocab_size=vocab)).save(root / "tok")
        wall = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", TOKENIZE_CHILD, str(root)], stdout=subprocess.PIPE, text=True)
        out = child.stdout.read()
        _pid, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - wall
        assert os.waitstatus_to_exitcode(status) == 0, "tokenize child failed"
    tokens, cpu = json.loads(out), usage.ru_utime + usage.ru_stime
    return {
        "source": source, "documents": docs, "text_bytes": text_bytes, "tokens": tokens, "vocab_size": vocab,
        "bytes_per_token": round(text_bytes / tokens, 3), "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
        "tokens_per_s": round(tokens / wall), "tokens_per_cpu_s": round(tokens / cpu),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "load_after": _load(),
    }


def measure_hosts() -> dict:
    """Host distribution of the real sample's harvested links; None without ../shared."""
    from bench.host_distribution import DEFAULT_DUMPS, PAPER_LINKS, host_counts, summary
    from crawl.config import CrawlConfig, HarvestConfig

    if not all(Path(dump).exists() for dump in DEFAULT_DUMPS):
        return {"skipped": "../shared/data/reddit is absent"}
    hosts, lines = host_counts(DEFAULT_DUMPS, HarvestConfig())
    return summary(hosts, lines, PAPER_LINKS, CrawlConfig().download_delay, top=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=PARTS, help="parts to run (default: all)")
    args = parser.parse_args(argv or [])
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}  # parts not rerun keep their figures
    results["machine"] = {"cpus": os.cpu_count(), "load_before": _load()}
    for part in args.only:
        started = time.perf_counter()
        if part in SCALE_MODULES:
            figures = run_scale_module(part)
            if figures is None:
                print(f"{part}: {SCALE_MODULES[part]} not found, skipped")
                continue
        elif part == "tokenize":
            figures = measure_tokenize()
        else:
            figures = measure_hosts()
        results[part] = figures
        print(f"{part} ({time.perf_counter() - started:.0f} s): {json.dumps(figures)[:400]}", flush=True)
        atomic_write_text(str(RESULTS), json.dumps(results, indent=2) + "\n")  # after each part: a long run
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
