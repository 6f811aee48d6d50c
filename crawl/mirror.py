"""A crawl into an object store (`webtext crawl --out s3://... | gs://...`): crawl locally, publish after.

Object stores have no locks, no fsync and no truncate, on which resuming a crawl relies. So a
crawl whose `--out` is remote runs in a local work folder (`crawl.local_work_dir`, default a
folder under the system temp dir named after a hash of `--out`) with the local logic unchanged,
and this module moves files between the two:

- `sync_down`, before the crawl: the remote's log parts the work folder lacks are downloaded
  (parts are immutable, so a name present is complete), so resuming skips every URL any machine
  published, under any `--shard` setting.
- `publish`, at the end, under the shard's lock: in an order that never shows a log row whose
  WARC bytes are missing: the shard's WARC files first, then its log parts (listed before the
  WARC files were uploaded), then its stats and report files last. Each object appears whole
  or not at all (an upload completes or leaves nothing), and a file already there with the same
  size is skipped, so a publish that failed midway is completed by rerunning the crawl. The WARC
  files and log parts published are then deleted locally: the work folder keeps only work the
  remote lacks (a killed run's), and the next run downloads the remote's parts again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile

from core import fsio
from crawl.url_table import file_sizes, list_files

log = logging.getLogger(__name__)

COPY_CHUNK = 8 << 20


def default_work_dir(out: str) -> str:
    """The local work folder of a remote `out` when crawl.local_work_dir is null."""
    digest = hashlib.sha256(out.rstrip("/").encode("utf-8")).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"webtext-crawl-{digest}")


def _sizes(directory: str, pattern: str) -> dict[str, int]:
    """File name -> size in `directory` (local or remote) for names matching `pattern`."""
    return {path.rsplit("/", 1)[-1]: size for path, size in file_sizes(directory, pattern).items()}


def _copy(source: str, target: str) -> None:
    """Copy one file (local or remote) so that `target` appears complete or not at all."""
    with fsio.open_read(source) as src, fsio.atomic_open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, COPY_CHUNK)


def sync_down(out: str, work: str) -> int:
    """Download the log parts of the remote `out` that `work` lacks; how many were downloaded."""
    local_log = os.path.join(work, "crawl_log")
    os.makedirs(local_log, exist_ok=True)
    present = set(os.listdir(local_log))
    missing = [path for path in list_files(fsio.join(out, "crawl_log"), "crawl-*.parquet")
               if path.rsplit("/", 1)[-1] not in present]
    for path in missing:
        _copy(path, os.path.join(local_log, path.rsplit("/", 1)[-1]))
    if missing:
        log.info("downloaded %d crawl log parts from %s", len(missing), out)
    return len(missing)


def _forget_published_parts(work: str, remote_log: str) -> None:
    """Delete the local copies of log parts the remote holds (same name and size): the next run
    downloads them again (`sync_down`). The work folder then holds only work not yet published,
    so a remote that was emptied or replaced since is never mistaken for one that holds it."""
    on_remote = _sizes(remote_log, "crawl-*.parquet")
    local_log = os.path.join(work, "crawl_log")
    for name in os.listdir(local_log):
        path = os.path.join(local_log, name)
        if on_remote.get(name) == os.path.getsize(path):
            os.unlink(path)


def publish(work: str, out: str, tags: list[str], stats_files: list[str]) -> dict[str, int]:
    """Upload the WARC files and log parts of the shards `tags` that `out` lacks, then
    `stats_files` (names in `work`); returns how many files of each kind were uploaded. Call it
    holding the locks of `tags` (no crawl of them may be writing)."""
    remote_warc, remote_log = fsio.join(out, "warc"), fsio.join(out, "crawl_log")
    published_parts = _sizes(remote_log, "crawl-*.parquet")
    parts = [name for tag in tags for name in sorted(os.listdir(os.path.join(work, "crawl_log")))
             if name.startswith(f"crawl-{tag}-") and name.endswith(".parquet") and name not in published_parts]
    published_warcs = _sizes(remote_warc, "crawl-*.warc.gz")
    warc_dir = os.path.join(work, "warc")
    warcs = [name for tag in tags for name in sorted(os.listdir(warc_dir) if os.path.isdir(warc_dir) else [])
             if name.startswith(f"crawl-{tag}-") and name.endswith(".warc.gz")]
    uploaded = {"warc_files": 0, "log_parts": 0, "stats_files": 0}
    for name in warcs:  # every byte the listed parts refer to is in these files now
        path = os.path.join(warc_dir, name)
        if published_warcs.get(name) != os.path.getsize(path):
            _copy(path, fsio.join(remote_warc, name))
            uploaded["warc_files"] += 1
    for name in parts:
        _copy(os.path.join(work, "crawl_log", name), fsio.join(remote_log, name))
        uploaded["log_parts"] += 1
    for name in stats_files:
        if os.path.exists(os.path.join(work, name)):
            _copy(os.path.join(work, name), fsio.join(out, name))
            uploaded["stats_files"] += 1
    for name in warcs:
        os.unlink(os.path.join(warc_dir, name))
    _forget_published_parts(work, remote_log)
    log.info("published to %s: %s", out, uploaded)
    return uploaded
