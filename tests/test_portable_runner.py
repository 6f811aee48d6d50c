"""Beam's portability protocol, which Dataflow, Flink and Spark run Python pipelines through:
harvest and build with `--runner=PortableRunner --job_endpoint=embed --environment_type=EXTERNAL`
against a Beam worker pool on 127.0.0.1, output byte-identical to the local runner's.

The worker pool (`apache_beam.runners.worker.worker_pool_main`) starts each SDK worker as a
`python` process found on PATH, so it runs with this venv's bin/ first: the workers then have
Beam and webtext. The local runs are the end-to-end test's (tests/test_end_to_end.py `built`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.beam import pipeline_options
from core.beam_config import BeamConfig
from shards.manifest import read_manifest
from tests.s3 import free_port
from tests.test_end_to_end import BUILD_SETTINGS, DUMP, built  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 60


@pytest.fixture(scope="module")
def worker_pool(tmp_path_factory):
    """The worker pool's port; the pool and the workers it started are ended afterwards."""
    port = free_port()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = tmp_path_factory.mktemp("worker-pool") / "pool.log"
    with open(log, "wb") as sink:
        pool = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                                 f"--service_port={port}"], cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own process group: its workers go with it
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert pool.poll() is None, f"worker pool exited: {log.read_text()[-2000:]}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "worker pool not listening"
                time.sleep(0.2)
        yield port
    finally:
        os.killpg(pool.pid, 15)
        pool.wait(timeout=30)


def _portable(port: int) -> list[str]:
    return ["--", "--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=EXTERNAL",
            f"--environment_config=127.0.0.1:{port}"]


def _webtext(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "webtext", *args], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, f"webtext {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"


def _files(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*.parquet"))
            if not any(part.startswith(".") for part in path.relative_to(root).parts)}


def test_a_portable_runner_passes_through_unchanged():
    args = _portable(1234)[1:]
    options = pipeline_options(BeamConfig(), args).get_all_options(drop_default=True)
    assert options["runner"] == "PortableRunner" and options["job_endpoint"] == "embed"
    assert options["environment_type"] == "EXTERNAL" and options["environment_config"] == "127.0.0.1:1234"
    assert "direct_num_workers" not in options  # local-runner settings stay local


def test_harvest_and_build_on_the_portable_runner_match_the_local_runner(worker_pool, built, tmp_path):
    local = built["out"]
    _webtext("harvest", "--dumps", str(DUMP), "--out", str(tmp_path / "urls"), *_portable(worker_pool))
    assert _files(tmp_path / "urls") == _files(local / "urls")

    _webtext("build", "--warc", str(local / "crawl"), "--out", str(tmp_path / "dataset"), *BUILD_SETTINGS,
             *_portable(worker_pool))
    assert _files(tmp_path / "dataset") == _files(local / "dataset")
    portable, direct = read_manifest(str(tmp_path / "dataset")), read_manifest(str(local / "dataset"))
    assert portable["stages"] == direct["stages"] and portable["shards"] == direct["shards"]
