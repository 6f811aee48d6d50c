"""The loopback-only network guard every test runs behind (installed in tests/conftest.py).

Each check targets a public address or name and must be stopped before anything is sent: the
guard raises at connect()/getaddrinfo(), in this process and in `webtext` subprocesses.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import aiohttp
import pytest

from core.netguard import NetworkGuardError

PUBLIC_IP = "93.184.215.14"  # example.com's address: never reached, the guard stops it first


def test_blocking_connects_to_public_addresses_are_refused():
    for family, address in ((socket.AF_INET, (PUBLIC_IP, 80)), (socket.AF_INET6, ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", 80))):
        with socket.socket(family, socket.SOCK_STREAM) as sock, pytest.raises(NetworkGuardError):
            sock.connect(address)
    with socket.socket() as sock, pytest.raises(NetworkGuardError):
        sock.connect_ex((PUBLIC_IP, 443))


def test_dns_lookups_of_public_names_are_refused():
    with pytest.raises(NetworkGuardError):
        socket.getaddrinfo("example.com", 80)


def test_loopback_stays_usable():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
    assert socket.getaddrinfo("localhost", 80)


def test_the_crawlers_asyncio_connections_are_guarded_too():
    """aiohttp (Scrapy's download handler) connects through asyncio's non-blocking connect."""
    async def fetch():
        async with aiohttp.ClientSession() as session:
            await session.get(f"http://{PUBLIC_IP}/", timeout=aiohttp.ClientTimeout(total=5))

    with pytest.raises(aiohttp.ClientConnectorError) as caught:
        asyncio.run(fetch())
    assert isinstance(caught.value.__cause__, NetworkGuardError)


def test_subprocesses_inherit_the_guard_through_the_environment():
    """`webtext` (webtext/cli.py) and extraction workers call install_if_requested at start."""
    code = ("import socket, core.netguard as g; g.install_if_requested(); "
            f"socket.create_connection(('{PUBLIC_IP}', 80), timeout=5)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "NetworkGuardError" in result.stderr, result.stderr[-2000:]
