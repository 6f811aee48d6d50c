"""Archive recovery's cost: CPU per page of the archive path vs the live path on the same pages,
and pages/s from a local pywb.

    .venv/bin/python -m bench.bench_archive [--pages 400] [--repeats 3]

The same pages are crawled three ways, each crawler a child process (getrusage(RUSAGE_CHILDREN)
around it is the crawler's CPU alone; pywb's and the servers' CPU is not counted): `live`
through the replay server (crawl.source: live), `wayback` from pywb's `wayback` (CDX + id_
replay) and `commoncrawl` from pywb's `warcserver` (CDX) plus a byte-range server in this
process. A baseline crawl of a few pages gives the fixed cost; the marginal CPU per page is
(cpu_big - cpu_base) / (pages_big - pages_base), the least of --repeats interleaved runs.
Archive requests go one at a time (the archive slot); requests_per_second is set high here, so
pages/s is what one connection to a local pywb gives (a public archive at the default 1.0
request/s: 0.5 pages/s, two requests per page). pywb comes from .venv-pywb (`make pywb`).
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
from io import BytesIO
from pathlib import Path

from bench.bench_crawl import PAGE, _url_table, _web

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "bench" / "results" / "archive.json"
PYWB_BIN = Path(os.environ.get("WEBTEXT_PYWB_BIN", REPO / ".venv-pywb" / "bin"))
PATHS = ("live", "wayback", "commoncrawl")
SETTINGS = {"download_delay": 0, "autothrottle": False, "concurrent_requests": 32, "concurrent_requests_per_domain": 4,
            "allow_loopback": True, "resolve_dns": False, "log_flush_seconds": 5}


def _collection(root: Path, urls_by_size: dict[int, list[str]]) -> None:
    """A pywb collection `web` with one 2017 capture of every URL."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    body = PAGE % 0
    with open(root / "pages.warc.gz", "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for url in sorted({url for urls in urls_by_size.values() for url in urls}):
            http = StatusAndHeaders("200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(body)))],
                                    protocol="HTTP/1.1")
            writer.write_record(writer.create_warc_record(url, "response", payload=BytesIO(body), http_headers=http,
                                                          warc_headers_dict={"WARC-Date": "2017-06-01T00:00:00Z"}))
    for args in (["init", "web"], ["add", "web", str(root / "pages.warc.gz")]):
        subprocess.run([str(PYWB_BIN / "wb-manager"), *args], cwd=root, check=True, capture_output=True)


def _start(command: str, root: Path, probe: str) -> tuple[subprocess.Popen, str]:
    from urllib.request import urlopen

    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    process = subprocess.Popen([str(PYWB_BIN / command), "-p", str(port), "-b", "127.0.0.1"], cwd=root,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urlopen(f"http://127.0.0.1:{port}{probe}", timeout=2):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pywb {command} did not start")
            time.sleep(0.2)


def _range_server(folder: Path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Ranges(BaseHTTPRequestHandler):
        def do_GET(self):
            data = (folder / self.path.lstrip("/")).read_bytes()
            first, _, last = self.headers["Range"].removeprefix("bytes=").partition("-")
            part = data[int(first):int(last) + 1]
            self.send_response(206)
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            self.wfile.write(part)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ranges)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _crawl(path: str, work: Path, n_pages: int, run: int, endpoints: dict) -> dict:
    """One crawl of n_pages in a child process: child CPU seconds and the crawl's own pages/s."""
    out = work / f"out-{path}-{n_pages}-{run}"
    settings = dict(SETTINGS)
    cmd = [sys.executable, "-m", "webtext.cli", "crawl", "--urls", str(work / f"urls{n_pages}"), "--out", str(out)]
    if path == "live":
        cmd += ["--replay", str(work / f"web{n_pages}")]
    else:
        settings.update({"source": "archive", "archive.kind": path, "archive.requests_per_second": 10000})
        if path == "wayback":
            settings.update({"archive.cdx_url": f"{endpoints['wayback']}/web/cdx",
                             "archive.replay_url": endpoints["wayback"] + "/web/{timestamp}id_/{url}"})
        else:
            settings.update({"archive.cdx_url": f"{endpoints['warcserver']}/web/index", "archive.data_url": endpoints["data"]})
    for key, value in settings.items():
        cmd += ["--set", f"crawl.{key}={json.dumps(value)}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{path} crawl failed:\n{proc.stdout}\n{proc.stderr}")
    stats = json.loads((out / "crawl_stats.json").read_text())
    if stats["stages"]["crawl"]["out"] != n_pages:
        raise RuntimeError(f"{path} crawl of {n_pages} pages got {stats['stages']['crawl']}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"pages": n_pages, "cpu_s": round(cpu, 3), "pages_per_s": stats["this_run"]["pages_per_second"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=400, help="pages in the measured crawl")
    parser.add_argument("--baseline-pages", type=int, default=50, help="pages in the fixed-cost baseline crawl")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each crawl (the least CPU counts)")
    args = parser.parse_args(argv or [])
    if not 50 <= args.baseline_pages < args.pages or args.repeats < 1:
        parser.error("need 50 <= --baseline-pages < --pages and --repeats >= 1")
    sizes = (args.baseline_pages, args.pages)
    load_before = os.getloadavg()
    runs = {(path, n): [] for path in PATHS for n in sizes}
    with tempfile.TemporaryDirectory(prefix="bench_archive.") as tmp:
        work = Path(tmp)
        urls = {n: _web(work / f"web{n}", n) for n in sizes}
        for n in sizes:
            _url_table(work / f"urls{n}", urls[n])
        _collection(work, urls)
        wayback, wayback_url = _start("wayback", work, "/web/cdx?url=http://x.example/")
        warcserver, warcserver_url = _start("warcserver", work, "/web/index?url=http://x.example/")
        ranges = _range_server(work / "collections" / "web" / "archive")
        endpoints = {"wayback": wayback_url, "warcserver": warcserver_url,
                     "data": f"http://127.0.0.1:{ranges.server_address[1]}/"}
        try:
            for run in range(args.repeats):
                for path in PATHS:
                    for n in sizes:
                        runs[(path, n)].append(_crawl(path, work, n, run, endpoints))
        finally:
            ranges.shutdown()
            for process in (wayback, warcserver):
                process.terminate()
                process.wait(timeout=20)
    best = {key: min(value, key=lambda r: r["cpu_s"]) for key, value in runs.items()}
    marginal = {path: (best[(path, args.pages)]["cpu_s"] - best[(path, args.baseline_pages)]["cpu_s"])
                / (args.pages - args.baseline_pages) * 1000 for path in PATHS}
    result = {
        "pages": args.pages, "baseline_pages": args.baseline_pages, "repeats": args.repeats,
        "cpu_ms_per_page_marginal": {path: round(value, 3) for path, value in marginal.items()},
        "archive_vs_live_cpu_ratio": {path: round(marginal[path] / marginal["live"], 2) for path in PATHS[1:]},
        "pages_per_s": {path: max(r["pages_per_s"] for r in runs[(path, args.pages)]) for path in PATHS},
        "runs": {f"{path}-{n}": value for (path, n), value in runs.items()},
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'path':<12}{'CPU ms/page':>12}{'vs live':>9}{'pages/s':>9}")
    for path in PATHS:
        ratio = result["archive_vs_live_cpu_ratio"].get(path, 1.0)
        print(f"{path:<12}{marginal[path]:>12.2f}{ratio:>9.2f}{result['pages_per_s'][path]:>9.1f}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
