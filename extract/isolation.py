"""Per-page time limit for extraction: the work runs in a child process that is killed on overrun.

Extractors are pure-Python/lxml code that can loop for minutes on pathological HTML or crash
the interpreter. signal.alarm only works in the main thread, and Beam runs DoFns on worker
threads, so each `IsolatedExtractor` (one per DoFn instance) owns a child process started with
subprocess (no fork of a threaded parent, no re-import of the parent's __main__) and talks to it
over two pipes. On timeout the child is killed and a fresh one started for the next page.

Pages can be queued (`submit`) so that the child already extracts the next page while the
caller handles the last result: extraction and the caller's own work (Beam, language
identification, quality rules) overlap instead of taking turns. Pages go to the child as raw
bytes in a small frame, written without blocking, so a busy or hung child can never stall the
caller past the time limit; results come back pickled, in submission order.

Run as `python -m extract.isolation READ_FD WRITE_FD` only by `IsolatedExtractor`.
"""

from __future__ import annotations

import collections
import fcntl
import os
import select
import struct
import subprocess
import sys
import time
from multiprocessing.connection import Connection

from extract.config import ExtractConfig
from extract.extractors import PageOutcome, extract_page

_READY = "ready"
_WARM_UP_PAGE = b"<html><head><title>t</title></head><body><article><p>warm up</p></article></body></html>"
_FRAME = struct.Struct("!QII")  # body length, content type length, URL length
_ABSENT = 0xFFFFFFFF  # length that stands for None
PIPE_BYTES = 1 << 20  # pipe capacity asked for, so that a typical page fits in it whole


class WorkerStartError(RuntimeError):
    """The extraction child did not start: an installation problem, not a bad page."""


def _encode(text: str | None) -> bytes | None:
    return None if text is None else text.encode("utf-8", "surrogatepass")


def _frame(body: bytes, content_type: str | None, url: str | None) -> bytes:
    parts = [_encode(content_type), _encode(url)]
    lengths = [_ABSENT if part is None else len(part) for part in parts]
    return b"".join([_FRAME.pack(len(body), *lengths), body, *(part for part in parts if part)])


def _read_frame(inbox) -> tuple[bytes, str | None, str | None]:
    """One page from the parent; EOFError when the parent closed the pipe or died."""

    def read(size: int) -> bytes:
        data = inbox.read(size)
        if len(data) < size:
            raise EOFError("parent closed the pipe")
        return data

    body_length, *lengths = _FRAME.unpack(read(_FRAME.size))
    body = read(body_length)
    content_type, url = (
        None if length == _ABSENT else read(length).decode("utf-8", "surrogatepass") for length in lengths
    )
    return body, content_type, url


class IsolatedExtractor:
    """`extract_page` in a child process with `config.timeout_seconds` per page.

    Either call it (one page, synchronously) or `submit` pages and take their outcomes with
    `next_result`, oldest first; a page's time limit runs from when the child can start it.
    """

    def __init__(self, config: ExtractConfig):
        self.config = config
        self._process: subprocess.Popen | None = None
        self._from_child: Connection | None = None
        self._to_child: int | None = None
        self._outbox = bytearray()  # framed pages not yet written into the pipe
        self._pending: collections.deque = collections.deque()  # [tag, frame, sent_at], oldest first
        self._last_result_at = 0.0

    @property
    def in_flight(self) -> int:
        """Pages submitted whose outcome `next_result` has not returned yet."""
        return len(self._pending)

    def __call__(self, body: bytes, content_type: str | None, url: str | None) -> PageOutcome:
        if self._pending:
            raise RuntimeError("IsolatedExtractor called with pages still in flight")
        self.submit(body, content_type, url)
        return self.next_result()[1]

    def submit(self, body: bytes, content_type: str | None, url: str | None, tag=None) -> None:
        """Queue a page for the child; `tag` comes back with its outcome."""
        if self._process is None:
            self._start()
        frame = _frame(body, content_type, url)
        self._pending.append([tag, frame, time.monotonic()])
        self._outbox += frame
        self._write_some()

    def next_result(self):
        """(tag, outcome) of the oldest submitted page. A page that overruns its time limit or
        kills the child gets its outcome here, and the pages queued behind it go to a new child."""
        tag, _, sent_at = self._pending[0]
        # The child starts a page once it has sent the previous result: the limit runs from then.
        deadline = max(sent_at, self._last_result_at) + self.config.timeout_seconds
        child_lost = True
        try:
            if self._wait_for_result(deadline):
                outcome, child_lost = self._from_child.recv(), False
            else:
                outcome = PageOutcome("extract_timeout", error=f"no result within {self.config.timeout_seconds:g} s")
        except (EOFError, OSError) as error:
            exit_code = self._process.poll() if self._process else None
            outcome = PageOutcome("extract_error", error=f"extraction process died (exit code {exit_code}): {error!r}")
        self._pending.popleft()
        self._last_result_at = time.monotonic()
        if child_lost:
            self._restart()
        else:
            self._write_some()
        return tag, outcome

    def _wait_for_result(self, deadline: float) -> bool:
        """Keep writing queued pages until a result (or EOF) is readable; False at the deadline."""
        while True:
            self._write_some()
            remaining = max(deadline - time.monotonic(), 0.0)  # past the deadline: look once more
            poller = select.poll()
            poller.register(self._from_child.fileno(), select.POLLIN)
            if self._outbox:
                poller.register(self._to_child, select.POLLOUT)
            if any(descriptor == self._from_child.fileno() for descriptor, _ in poller.poll(remaining * 1000)):
                return True
            if remaining == 0.0:
                return False

    def _write_some(self) -> None:
        """Write as much of the outbox as the pipe takes now, never blocking."""
        try:
            while self._outbox:
                del self._outbox[: os.write(self._to_child, self._outbox)]
        except BlockingIOError:
            pass
        except BrokenPipeError:  # the child is gone; reading its result will say so
            self._outbox.clear()

    def _restart(self) -> None:
        """Replace a lost child and hand it the pages the old one had queued."""
        pending = list(self._pending)
        self.close()
        if pending:
            self._start()
            now = time.monotonic()
            for tag, frame, _ in pending:
                self._pending.append([tag, frame, now])
                self._outbox += frame
            self._write_some()

    def _start(self) -> None:
        parent_read, child_write = os.pipe()
        child_read, parent_write = os.pipe()
        try:
            fcntl.fcntl(parent_write, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:  # a smaller pipe only means more turns of writing, never a stall
            pass
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "extract.isolation", str(child_read), str(child_write)],
            pass_fds=(child_read, child_write),
            stdin=subprocess.DEVNULL,
            stdout=2,  # stray prints from extractors go to stderr, never into our caller's stdout
            env=env,
        )
        os.close(child_read)
        os.close(child_write)
        self._from_child = Connection(parent_read, writable=False)
        self._to_child = parent_write
        try:
            os.write(parent_write, self.config.model_dump_json().encode() + b"\n")
            if not self._from_child.poll(self.config.worker_start_seconds) or self._from_child.recv() != _READY:
                raise WorkerStartError(f"extraction process not ready within {self.config.worker_start_seconds:g} s")
        except (EOFError, OSError) as error:
            self.close()
            raise WorkerStartError(f"extraction process failed to start: {error!r}") from error
        except WorkerStartError:
            self.close()
            raise
        os.set_blocking(parent_write, False)
        self._last_result_at = time.monotonic()

    def close(self) -> None:
        """Stop the child (killed if busy) and forget queued pages; the next page starts a new one."""
        self._pending.clear()
        self._outbox.clear()
        if self._process is None:
            return
        self._from_child.close()
        os.close(self._to_child)
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._process = self._from_child = self._to_child = None

    def __enter__(self) -> "IsolatedExtractor":
        return self

    def __exit__(self, *exception_info) -> None:
        self.close()


def _serve(inbox, outbox: Connection) -> None:
    config = ExtractConfig.model_validate_json(inbox.readline())
    extract_page(_WARM_UP_PAGE, None, None, config)  # import the extractors before saying ready
    outbox.send(_READY)
    while True:
        try:
            body, content_type, url = _read_frame(inbox)
        except EOFError:  # the parent closed the pipe or died
            return
        outbox.send(extract_page(body, content_type, url, config))


if __name__ == "__main__":
    from core import netguard

    netguard.install_if_requested()
    _serve(os.fdopen(int(sys.argv[1]), "rb"), Connection(int(sys.argv[2]), readable=False))
