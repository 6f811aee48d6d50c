"""Dataset build throughput: what the Beam pipeline costs over reading the WARC files.

    .venv/bin/python -m bench.bench_build [--pages N] [--files K]

Writes a synthetic crawl with the crawl stage's own WARC writer (N distinct article pages of
~600 words in K files, each with the WebText-* provenance headers), then times, in this process:

- `warcio loop`: iterating the files and reading every response body (the floor),
- `read stage`: the build's WARC source alone on the DirectRunner (`ReadWarc`: index, spread ranges,
  read the records; then `ReadBodies`: read each page's body again, as the build does before extraction),
- `build`: `run_build` end to end (extract, filter, Wikipedia, exact + near dedup, split,
  Parquet shards, manifest and card) with one worker.

Rates are pages per wall second and per CPU second (this process plus its finished children:
the extractor runs in a child process); the ratios compare CPU against the `warcio loop`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path

import apache_beam as beam
from warcio.archiveiterator import ArchiveIterator

from core.beam import KEPT, collect_stage_counts, pipeline_options
from core.beam_config import BeamConfig
from crawl.warc import FetchedPage, WarcWriter
from shards.build import run_build
from shards.cli import dataset_config
from shards.warc_source import ReadBodies, ReadWarc, find_warc_files, relative_name
from webtext.config import load_config

RESULTS = Path(__file__).resolve().parent / "results" / "build.json"
WORDS = ("the city council river market school museum library harbor ferry train station bakery farmer "
         "orchard drought rain winter summer concert orchestra student teacher team robot comet planet "
         "telescope forest frog species scientist study report budget street bridge road traffic cyclist "
         "runner marathon record season game player coach chess tournament software release editor "
         "version feature update community volunteer lighthouse island coast storm weather history "
         "exhibit map century village festival night dinner recipe bread flour price cost grant plan "
         "vote election mayor neighbor family children parent hospital doctor nurse patient health").split()
VERBS = "said announced built opened closed voted found studied visited planned expected reported".split()


def _paragraph(rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
        words.insert(2, rng.choice(VERBS))
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)


def write_crawl(root: str, pages: int, files: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    per_file = -(-pages // files)
    for f in range(files):
        writer = WarcWriter(os.path.join(root, "warc"), f"bench{f:03d}", max_bytes=1 << 40, software_info={})
        for n in range(f * per_file, min(pages, (f + 1) * per_file)):
            body = "".join(f"<p>{_paragraph(rng, 5)}</p>" for _ in range(8))
            html = (f"<html><head><title>Story {n}</title></head><body><nav>Home News</nav>"
                    f"<article><h1>Story number {n}</h1>{body}</article><footer>Contact</footer></body></html>")
            url = f"https://news{n % 50}.example/story/{n}"
            writer.write(FetchedPage(
                source_url=url, final_url=url, status=200,
                response_headers=[("Content-Type", "text/html; charset=utf-8")], body=html.encode(),
                request_method="GET", request_headers=[], fetch_time="2026-01-01T00:00:00.000000Z",
                ip_address=None, redirects=[], post_ids=[f"p{n}"], subreddits=["news"], score=3 + n % 20,
                first_created_utc=1_500_000_000 + n))
        writer.close()


def time_warcio(files: list[str]) -> int:
    pages = 0
    for path in files:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type == "response":
                    record.content_stream().read()
                    pages += 1
    return pages


def time_read_stage(files: list[str], root: str) -> int:
    with beam.Pipeline(options=pipeline_options(BeamConfig())) as pipeline:
        read = pipeline | ReadWarc([(path, relative_name(path, root)) for path in files])
        read[KEPT] | beam.ParDo(ReadBodies()) | beam.Map(len)
    return collect_stage_counts(pipeline.result)["read"].records_out


def _cpu_seconds() -> float:
    """CPU of this process plus finished children (the extractor runs in a child process)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed(fn, *args):
    started, cpu = time.perf_counter(), _cpu_seconds()
    result = fn(*args)
    return result, time.perf_counter() - started, _cpu_seconds() - cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--files", type=int, default=4)
    args = parser.parse_args(argv or [])
    with tempfile.TemporaryDirectory() as tmp:
        write_crawl(tmp, args.pages, args.files)
        root = os.path.join(tmp, "warc")
        files = find_warc_files(root)
        n_loop, t_loop, cpu_loop = _timed(time_warcio, files)
        n_read, t_read, cpu_read = _timed(time_read_stage, files, root)
        config = load_config()
        manifest, t_build, cpu_build = _timed(run_build, dataset_config(config), config.beam, tmp,
                                              os.path.join(tmp, "dataset"), [], True)
    rows = [
        ("warcio loop", n_loop, t_loop, cpu_loop),
        ("read stage", n_read, t_read, cpu_read),
        ("build", args.pages, t_build, cpu_build),
    ]
    print(f"{'variant':<14}{'pages':>7}{'wall s':>9}{'CPU s':>9}{'pages/s':>9}{'pages/CPU s':>13}{'x loop (CPU)':>14}")
    results = {"pages": args.pages, "files": args.files, "documents_out": manifest["rows"], "variants": {}}
    for name, n, seconds, cpu in rows:
        ratio = cpu / cpu_loop
        print(f"{name:<14}{n:>7}{seconds:>9.2f}{cpu:>9.2f}{n / seconds:>9.0f}{n / cpu:>13.0f}{ratio:>14.1f}")
        results["variants"][name] = {"pages": n, "wall_seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
                                     "pages_per_wall_s": round(n / seconds, 1), "pages_per_cpu_s": round(n / cpu, 1),
                                     "cpu_vs_warcio_loop": round(ratio, 2)}
    print(f"documents written: {manifest['rows']} of {args.pages} pages")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
