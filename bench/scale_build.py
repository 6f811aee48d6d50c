"""Build on ONE WARC file, 1 worker vs 2: does the read side spread one big file over workers?

    .venv/bin/python -m bench.scale_build [--copies C] [--workers 1 2] [--stage build|read_extract] [--repeats R]

Before the offset index (shards/warc_reader.py) a WARC file was one worker's job; now the file
is indexed once, cut into ranges of whole fetch groups, and the ranges are reshuffled before
reading and extraction. Target (issue 15): 2 workers >= 1.7x one worker.

Input: the 990 real pages of the shared extraction-evaluation set (~145 KB of HTML each,
`../shared/data/extraction-eval`), each written `--copies` times under distinct URLs into one
per-record-gzip WARC with warcio, in our crawler's layout (request, response, metadata record
with the Reddit provenance). The WARC is cached under /tmp. Timed: `run_build` end to end
(index, read, extract, filter, dedup, split, Parquet shards, manifest) with
`--direct_running_mode=multi_processing --direct_num_workers=N`, wall seconds (`--stage
read_extract`: only ReadWarc -> ReadBodies -> ExtractPages, the part this change
parallelises). The machine's load average is recorded before and after each run: on a shared
machine a loaded run says little, rerun when it is quiet.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

REPO = Path(__file__).resolve().parents[1]
EVAL_SET = REPO.parent / "shared" / "data" / "extraction-eval" / "pages.tar.gz"
CACHE = Path(tempfile.gettempdir()) / "webtext-scale-build"
RESULTS = REPO / "bench" / "results" / "scale_build.json"  # one file per stage: scale_build[_read_extract].json


def eval_pages() -> list[tuple[str, bytes]]:
    """(file name, HTML bytes) of the evaluation pages, unpacked once into the cache."""
    html_dir = CACHE / "html"
    if not html_dir.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tarfile.open(EVAL_SET) as tar:
            tar.extractall(CACHE, members=[m for m in tar.getmembers() if m.name.startswith(("html/", "./html/"))],
                           filter="data")
        if not html_dir.is_dir():
            nested = next(CACHE.rglob("html"))
            nested.rename(html_dir)
    return [(path.name, path.read_bytes()) for path in sorted(html_dir.iterdir()) if path.is_file()]


def write_warc(path: Path, pages: list[tuple[str, bytes]], copies: int) -> int:
    """One WARC of every page `copies` times (our crawler's record layout); returns the page count."""
    count = 0
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        writer = WARCWriter(fh, gzip=True, warc_version="1.1")
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "bench.scale_build"}))
        for copy in range(copies):
            for n, (_name, html) in enumerate(pages):
                url = f"https://site{n % 97}.example/{copy}/page-{n}"
                date = f"2026-11-20T10:{copy:02d}:{n % 60:02d}Z"
                writer.write_record(writer.create_warc_record(
                    url, "request", warc_headers_dict={"WARC-Date": date},
                    http_headers=StatusAndHeaders("GET / HTTP/1.1", [("Host", url.split("/")[2])],
                                                  is_http_request=True)))
                response = writer.create_warc_record(
                    url, "response", payload=io.BytesIO(html), length=len(html), warc_headers_dict={"WARC-Date": date},
                    http_headers=StatusAndHeaders("200 OK", [("Content-Type", "text/html"),
                                                             ("Content-Length", str(len(html)))], protocol="HTTP/1.1"))
                writer.write_record(response)
                fields = (f"WebText-Source-URL: {url}\r\nWebText-Post-Ids: p{copy}x{n}\r\nWebText-Subreddits: news\r\n"
                          f"WebText-Score: {3 + n % 50}\r\nWebText-First-Created-UTC: {1_500_000_000 + n}\r\n"
                          "WebText-Fetch-Outcome: ok\r\nWebText-Source: live\r\n").encode()
                writer.write_record(writer.create_warc_record(
                    url, "metadata", payload=io.BytesIO(fields), length=len(fields),
                    warc_content_type="application/warc-fields",
                    warc_headers_dict={"WARC-Date": date,
                                       "WARC-Concurrent-To": response.rec_headers.get_header("WARC-Record-ID")}))
                count += 1
    tmp.rename(path)
    return count


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def _cpu_seconds() -> float:
    """CPU of this process plus its finished children (SDK workers, their extraction children)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_build(warc: Path, workers: int) -> dict:
    from shards.build import run_build
    from shards.cli import dataset_config
    from webtext.config import load_config

    config = load_config()
    out = CACHE / f"dataset-{workers}w"
    shutil.rmtree(out, ignore_errors=True)
    load_before = _load()
    started, cpu = time.perf_counter(), _cpu_seconds()
    manifest = run_build(dataset_config(config), config.beam, str(warc), str(out),
                         ["--direct_running_mode=multi_processing", f"--direct_num_workers={workers}"], force=True)
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    read = manifest["stages"]["read"]
    # cores_used > 1 with one worker: its extraction child already runs beside it, so on a
    # 2-core machine 2 workers can gain at most 2 / cores_used.
    return {"workers": workers, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "cores_used": round(cpu / wall, 2),
            "pages_read": read["out"],
            "rows": manifest["rows"], "load_before": load_before, "load_after": _load()}


def timed_read_extract(warc: Path, workers: int) -> dict:
    """The read side alone: ReadWarc (index, spread ranges, read) -> ReadBodies -> ExtractPages,
    no later stage."""
    import apache_beam as beam

    from core.beam import KEPT, collect_stage_counts, pipeline_options
    from extract.pipeline import ExtractPages
    from shards.warc_source import ReadBodies, ReadWarc, list_warc_inputs
    from webtext.config import load_config

    config = load_config()
    load_before = _load()
    started, cpu = time.perf_counter(), _cpu_seconds()
    options = pipeline_options(config.beam, ["--direct_running_mode=multi_processing",
                                             f"--direct_num_workers={workers}"])
    with beam.Pipeline(options=options) as pipeline:
        read = pipeline | ReadWarc(list_warc_inputs([str(warc)]))
        read[KEPT] | beam.ParDo(ReadBodies()) | ExtractPages(config.extract) | beam.Map(len)
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    counts = collect_stage_counts(pipeline.result)
    return {"workers": workers, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "cores_used": round(cpu / wall, 2),
            "pages_read": counts["read"].records_out, "documents": counts["filter"].records_out,
            "load_before": load_before, "load_after": _load()}


def run(copies: int = 3, workers: tuple[int, ...] = (1, 2), stage: str = "build", repeats: int = 1) -> dict:
    """Time the build (`stage` "build") or its read + extract part ("read_extract") of one WARC
    of 990 x `copies` real pages with each worker count, `repeats` rounds interleaved (1, 2, 1,
    2, ...); the speedup compares each count's fastest run, the least disturbed by other load."""
    if not EVAL_SET.exists():
        return {"skipped": f"{EVAL_SET} is absent"}
    warc = CACHE / f"eval-x{copies}.warc.gz"
    pages = eval_pages()
    if not warc.exists():
        write_warc(warc, pages, copies)
    timed = timed_build if stage == "build" else timed_read_extract
    runs = [timed(warc, n) for _round in range(repeats) for n in workers]
    by_workers = {n: min(r["wall_s"] for r in runs if r["workers"] == n) for n in workers}
    result = {"stage": stage, "warc": str(warc), "warc_bytes": os.path.getsize(warc), "pages": len(pages) * copies,
              "cpu_count": os.cpu_count(), "runs": runs}
    if 1 in by_workers and 2 in by_workers:
        result["speedup_2_vs_1"] = round(by_workers[1] / by_workers[2], 2)
        result["target"] = ">= 1.7"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3, help="times each of the 990 pages is written (default 3)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--stage", choices=["build", "read_extract"], default="build",
                        help="time the whole build (default) or only read + extract")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds; the fastest run of each counts")
    args = parser.parse_args()
    result = run(args.copies, tuple(args.workers), args.stage, args.repeats)
    path = RESULTS if args.stage == "build" else RESULTS.with_name(f"scale_build_{args.stage}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
