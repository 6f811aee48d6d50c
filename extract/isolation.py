"""Per-page time limit for extraction: the work runs in a child process that is killed on overrun.

Extractors are pure-Python/lxml code that can loop for minutes on pathological HTML or crash
the interpreter. signal.alarm only works in the main thread, and Beam runs DoFns on worker
threads, so each `IsolatedExtractor` (one per DoFn instance) owns a child process started with
subprocess (no fork of a threaded parent, no re-import of the parent's __main__) and talks to it
over two pipes. On timeout the child is killed and a fresh one started for the next page.

Run as `python -m extract.isolation READ_FD WRITE_FD` only by `IsolatedExtractor`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from multiprocessing.connection import Connection

from extract.config import ExtractConfig
from extract.extractors import PageOutcome, extract_page

_READY = "ready"
_WARM_UP_PAGE = b"<html><head><title>t</title></head><body><article><p>warm up</p></article></body></html>"


class WorkerStartError(RuntimeError):
    """The extraction child did not start: an installation problem, not a bad page."""


class IsolatedExtractor:
    """`extract_page` in a child process with `cfg.timeout_seconds` per page."""

    def __init__(self, cfg: ExtractConfig):
        self.cfg = cfg
        self._proc: subprocess.Popen | None = None
        self._to_child: Connection | None = None
        self._from_child: Connection | None = None

    def __call__(self, body: bytes, content_type: str | None, url: str | None) -> PageOutcome:
        if self._proc is None:
            self._start()
        try:
            self._to_child.send((body, content_type, url))
            if not self._from_child.poll(self.cfg.timeout_seconds):
                self.close()
                return PageOutcome("extract_timeout", error=f"no result within {self.cfg.timeout_seconds:g} s")
            return self._from_child.recv()
        except (EOFError, OSError) as exc:
            code = self._proc.poll() if self._proc else None
            self.close()
            return PageOutcome("extract_error", error=f"extraction process died (exit code {code}): {exc!r}")

    def _start(self) -> None:
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "extract.isolation", str(child_read), str(child_write)],
            pass_fds=(child_read, child_write),
            stdin=subprocess.DEVNULL,
            stdout=2,  # stray prints from extractors go to stderr, never into our caller's stdout
            env=env,
        )
        os.close(child_read)
        os.close(child_write)
        self._from_child = Connection(parent_read, writable=False)
        self._to_child = Connection(parent_write, readable=False)
        try:
            self._to_child.send(self.cfg.model_dump())
            if not self._from_child.poll(self.cfg.worker_start_seconds) or self._from_child.recv() != _READY:
                raise WorkerStartError(f"extraction process not ready within {self.cfg.worker_start_seconds:g} s")
        except (EOFError, OSError) as exc:
            self.close()
            raise WorkerStartError(f"extraction process failed to start: {exc!r}") from exc
        except WorkerStartError:
            self.close()
            raise

    def close(self) -> None:
        """Stop the child (killed if busy); the next call starts a new one."""
        if self._proc is None:
            return
        for conn in (self._to_child, self._from_child):
            conn.close()
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._proc = self._to_child = self._from_child = None

    def __enter__(self) -> "IsolatedExtractor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _serve(inbox: Connection, outbox: Connection) -> None:
    cfg = ExtractConfig.model_validate(inbox.recv())
    extract_page(_WARM_UP_PAGE, None, None, cfg)  # import the extractors before saying ready
    outbox.send(_READY)
    while True:
        try:
            body, content_type, url = inbox.recv()
        except EOFError:  # the parent closed the pipe or died
            return
        outbox.send(extract_page(body, content_type, url, cfg))


if __name__ == "__main__":
    from webtext import netguard

    netguard.install_if_requested()
    _serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
