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


@pytest.fixture(autouse=True)
def _guard_stays_installed():
    yield
    assert os.environ.get(netguard.ENV_VAR) == "loopback", "a test removed the network guard"
