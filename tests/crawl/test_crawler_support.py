"""Builders shared by the crawler tests (no tests here): sample webs in the replay format,
URL tables, CLI runs, WARC reading."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from warcio.archiveiterator import ArchiveIterator

from core.stats import StageCounts, write_stats_json
from crawl.url_table import STATS_FILE

REPO = Path(__file__).resolve().parents[2]

# Settings the replay sample's expected outcomes assume, plus no politeness waits.
TEST_SETTINGS = [
    "crawl.download_timeout=2", "crawl.max_body_bytes=2000000", "crawl.retry_backoff_base=0.05",
    "crawl.download_delay=0", "crawl.autothrottle=false", "crawl.log_flush_seconds=1",
]

PAGE = b"<!doctype html><html><head><title>%s</title></head><body><p>Text of %s.</p></body></html>"


def write_web(web_dir: Path, hosts: dict, routes: dict, pages: dict[str, bytes], offsite: dict | None = None) -> Path:
    """A sample web in the replay server's format (routes.json + pages/)."""
    (web_dir / "pages").mkdir(parents=True, exist_ok=True)
    for name, body in pages.items():
        (web_dir / "pages" / name).write_bytes(body)
    doc = {"version": 1, "hosts": hosts, "routes": routes, "offsite": offsite or {}}
    (web_dir / "routes.json").write_text(json.dumps(doc, indent=1))
    return web_dir


def generated_web(web_dir: Path, n_pages: int, hosts: int = 4, slow_seconds: float | None = None) -> tuple[Path, list[str]]:
    """`n_pages` small OK pages spread over `hosts` hosts (optionally each answering slowly)."""
    host_names = [f"site{i}.example" for i in range(hosts)]
    routes, urls = {}, []
    for i in range(n_pages):
        key = f"{host_names[i % hosts]}/p/{i}.html"
        route = {"body": "page.html", "expect": "ok"}
        if slow_seconds:
            route["fault"] = {"kind": "slow", "seconds": slow_seconds}
        routes[key] = route
        urls.append("http://" + key)
    write_web(web_dir, {h: {"robots": None} for h in host_names}, routes, {"page.html": PAGE % (b"p", b"p")})
    return web_dir, urls


def write_url_table(directory: Path, urls: list[str], files: int = 1) -> Path:
    """A URL table as `webtext harvest` writes it (docs/contracts.md), split over `files` files,
    with the stats file that marks it complete."""
    directory.mkdir(parents=True, exist_ok=True)
    for part in range(files):
        chunk = urls[part::files]
        table = pa.table({
            "url": chunk,
            "url_key": [u.split("://", 1)[1].removeprefix("www.") for u in chunk],
            "domain": [u.split("/")[2] for u in chunk],
            "score": pa.array([3 + i for i in range(len(chunk))], pa.int64()),
            "post_ids": [[f"p{i:x}", f"q{i:x}"] for i in range(len(chunk))],
            "subreddits": [["news", "science"]] * len(chunk),
            "titles": [["one", "two"]] * len(chunk),
            "first_created_utc": pa.array([1_500_000_000 + i for i in range(len(chunk))], pa.int64()),
            "num_posts": pa.array([2] * len(chunk), pa.int64()),
        })
        pq.write_table(table, directory / f"urls-{part:05d}.parquet")
    mark_harvest_complete(directory, len(urls))  # last, as the harvest does
    return directory


def mark_harvest_complete(directory: Path, urls: int) -> None:
    """_harvest_stats.json as a completed `webtext harvest` of `urls` URLs leaves it."""
    write_stats_json(directory / STATS_FILE, {"harvest": StageCounts("harvest", urls, urls)},
                     {"urls": urls, "complete": True})


def crawl_cli(*args: str, settings: list[str] = (), timeout: float = 90, wait: bool = True,
              beam_args: list[str] = ()):
    """`webtext crawl ...` in a subprocess of its own (the Twisted reactor cannot restart);
    `beam_args` (e.g. S3 options) go after `--`."""
    cmd = [sys.executable, "-m", "webtext.cli", "crawl", *args]
    for s in [*TEST_SETTINGS, *settings]:
        cmd += ["--set", s]
    if beam_args:
        cmd += ["--", *beam_args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def read_log(out: Path) -> list[dict]:
    rows = []
    for part in sorted(glob.glob(str(out / "crawl_log" / "*.parquet"))):
        rows.extend(pq.read_table(part).to_pylist())
    return rows


def warc_records(out: Path) -> list[dict]:
    """Every record of every WARC file; warcio raises on any invalid file."""
    records = []
    for path in sorted(glob.glob(str(out / "warc" / "*.warc.gz"))):
        with open(path, "rb") as fh:
            it = ArchiveIterator(fh, check_digests=True)
            for record in it:
                body = record.content_stream().read()
                records.append({
                    "file": os.path.basename(path), "offset": it.get_record_offset(),
                    "type": record.rec_type, "headers": dict(record.rec_headers.headers),
                    "http": record.http_headers, "body": body,
                })
    return records


def warc_fields(block: bytes) -> dict[str, str]:
    """The `Name: value` lines of an application/warc-fields block (a metadata record's)."""
    lines = block.decode("utf-8").split("\r\n")
    assert lines[-1] == "", "a field line without its CRLF"
    return dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "") for line in lines[:-1])
