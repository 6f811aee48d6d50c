"""A process-wide guard that refuses every connection and DNS lookup off loopback.

Tests install it (and export WEBTEXT_NETWORK_GUARD=loopback so that subprocesses started
through the CLI install it too): any attempt to reach a non-loopback address raises
`NetworkGuardError` instead of sending traffic off the machine.
"""

from __future__ import annotations

import ipaddress
import os
import socket

ENV_VAR = "WEBTEXT_NETWORK_GUARD"
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class NetworkGuardError(ConnectionRefusedError):
    pass


def _is_loopback_host(host) -> bool:
    if host is None:
        return True  # getaddrinfo(None, port) means a local wildcard/bind address
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").lower()
    if host in _LOOPBACK_NAMES or host in ("", "0.0.0.0", "::"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _check_address(address) -> None:
    if isinstance(address, tuple) and address:
        if not _is_loopback_host(address[0]):
            raise NetworkGuardError(f"network guard: connection to {address!r} refused (loopback only)")


def install() -> None:
    if getattr(socket, "_webtext_guarded", False):
        return
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback_host(host):
            raise NetworkGuardError(f"network guard: DNS lookup of {host!r} refused (loopback only)")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check_address(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check_address(address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket._webtext_guarded = True  # type: ignore[attr-defined]
    os.environ[ENV_VAR] = "loopback"


def install_if_requested() -> None:
    if os.environ.get(ENV_VAR) == "loopback":
        install()
