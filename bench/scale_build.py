"""Build on ONE WARC file, 1 worker vs 2: does the read side spread one big file over workers?

    .venv/bin/python -m bench.scale_build [--copies C] [--workers 1 2] [--stage build|read_extract]
                                          [--repeats R] [--cores-per-worker K [K ...]]

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
parallelises).

Each run is a fresh process, in one of two settings (`--cores-per-worker`, both by default):
  0  every run may use all of the machine's cores (the "shared" setting). A worker's extraction
     child runs beside it, so one worker already uses ~1.13 cores: on a 2-core machine two
     workers can gain at most 2 / 1.13 = 1.77x, whatever the split.
  K  a run with N workers is confined to N x K cores (CPU affinity of the whole process tree:
     runner, workers, extraction children), as on a cluster where each worker brings its own
     cores; this measures how the work is split, not how many cores the machine has left over.
The load average is recorded before and after each run: on a shared machine a loaded run says
little, rerun when it is quiet.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
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


TIMED = {"build": "timed_build", "read_extract": "timed_read_extract"}  # stage -> function run per process


def setting_name(cores_per_worker: int) -> str:
    return "shared cores" if cores_per_worker == 0 else f"{cores_per_worker} core(s) per worker"


def run_in_process(warc: Path, workers: int, stage: str, cores: list[int] | None) -> dict:
    """One timed run in a fresh Python process, confined to `cores` (None: no confinement)
    before it starts any thread, so that runs share no warm state and every process the run
    starts inherits the affinity."""
    confine = "" if cores is None else f"import os; os.sched_setaffinity(0, {cores!r}); "
    code = (f"{confine}import json; from pathlib import Path; from bench.scale_build import {TIMED[stage]}; "
            f"print(json.dumps({TIMED[stage]}(Path({str(warc)!r}), {workers})))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{stage} run with {workers} worker(s) failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["cores"] = "all" if cores is None else ",".join(map(str, cores))
    print(f"{stage}, {workers} worker(s), cores {result['cores']}: {result['wall_s']} s wall, "
          f"{result['cpu_s']} CPU-s", file=sys.stderr, flush=True)
    return result


def check_settings(workers: tuple[int, ...], cores_per_worker: tuple[int, ...], cores: int) -> None:
    """ValueError naming the flag when a worker count or core setting cannot be run here."""
    if not workers or min(workers) < 1:
        raise ValueError(f"--workers must be counts >= 1, got {list(workers)}")
    for per_worker in cores_per_worker:
        if per_worker < 0:
            raise ValueError(f"--cores-per-worker must be >= 0 (0 = shared cores), got {per_worker}")
        if per_worker * max(workers) > cores:
            raise ValueError(f"--cores-per-worker {per_worker} with {max(workers)} workers needs "
                             f"{per_worker * max(workers)} cores; this process may use {cores}")


def run(copies: int = 3, workers: tuple[int, ...] = (1, 2), stage: str = "build", repeats: int = 1,
        cores_per_worker: tuple[int, ...] = (0, 1)) -> dict:
    """Time the build (`stage` "build") or its read + extract part ("read_extract") of one WARC
    of 990 x `copies` real pages with each worker count in each core setting, `repeats` rounds
    interleaved (shared 1, 2, confined 1, 2, shared 1, ...); each setting's speedup compares each
    count's fastest run, the least disturbed by other load, and each round's ratio is listed."""
    if not EVAL_SET.exists():
        return {"skipped": f"{EVAL_SET} is absent"}
    available = sorted(os.sched_getaffinity(0))
    check_settings(workers, cores_per_worker, len(available))
    warc = CACHE / f"eval-x{copies}.warc.gz"
    pages = eval_pages()
    if not warc.exists():
        write_warc(warc, pages, copies)
    settings = {per_worker: [] for per_worker in cores_per_worker}
    for _round in range(repeats):
        for per_worker, runs in settings.items():
            for n in workers:
                cores = available[:n * per_worker] if per_worker else None
                runs.append(run_in_process(warc, n, stage, cores))
    result = {"stage": stage, "warc": str(warc), "warc_bytes": os.path.getsize(warc), "pages": len(pages) * copies,
              "cpu_count": os.cpu_count(), "target": ">= 1.7", "settings": []}
    for per_worker, runs in settings.items():
        setting = {"cores_per_worker": per_worker, "name": setting_name(per_worker), "runs": runs}
        if 1 in workers and 2 in workers:
            fastest = {n: min(r["wall_s"] for r in runs if r["workers"] == n) for n in (1, 2)}
            setting["speedup_2_vs_1"] = round(fastest[1] / fastest[2], 2)
            walls = {n: [r["wall_s"] for r in runs if r["workers"] == n] for n in (1, 2)}
            setting["round_speedups"] = [round(one / two, 2) for one, two in zip(walls[1], walls[2])]
        result["settings"].append(setting)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=3, help="times each of the 990 pages is written (default 3)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--stage", choices=["build", "read_extract"], default="build",
                        help="time the whole build (default) or only read + extract")
    parser.add_argument("--repeats", type=int, default=1, help="interleaved rounds; the fastest run of each counts")
    parser.add_argument("--cores-per-worker", type=int, nargs="+", default=[0, 1],
                        help="core settings to measure: 0 = every run may use all cores, K = a run with N "
                             "workers is confined to N x K cores (default: 0 1)")
    args = parser.parse_args()
    try:
        check_settings(tuple(args.workers), tuple(args.cores_per_worker), len(os.sched_getaffinity(0)))
    except ValueError as error:
        parser.error(str(error))
    result = run(args.copies, tuple(args.workers), args.stage, args.repeats, tuple(args.cores_per_worker))
    path = RESULTS if args.stage == "build" else RESULTS.with_name(f"scale_build_{args.stage}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
