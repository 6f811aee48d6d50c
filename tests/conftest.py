"""Test-wide fixtures. Every test runs behind the loopback-only network guard."""

import os
from pathlib import Path

import pytest

from core import netguard

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"

netguard.install()  # also exported to subprocesses through WEBTEXT_NETWORK_GUARD


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/ is absent")
    return SHARED


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 server (moto's, on 127.0.0.1) with one bucket: tests/s3.py."""
    from tests.s3 import S3Server

    server = S3Server.start(tmp_path_factory.mktemp("moto") / "server.log")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _guard_stays_installed():
    yield
    assert os.environ.get(netguard.ENV_VAR) == "loopback", "a test removed the network guard"
