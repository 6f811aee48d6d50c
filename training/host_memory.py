"""glibc malloc settings for training on CPU.

A training step frees and reallocates the same large buffers every step (the 2 x 1024 x 50257
fp32 logits alone are 412 MB at gpt2-117m). glibc serves blocks over its mmap threshold (at
most 32 MB) with a fresh mapping and unmaps it on free, so on every step the kernel faults in
and zeroes hundreds of MB again: ~400k page faults and ~1.5 s of system time in an 11 s
gpt2-117m step on 2 cores. Two settings remove that work:

- `keep_freed_memory()`: `mallopt(M_MMAP_MAX, 0)` and a 2 GiB `M_TRIM_THRESHOLD`, so large
  blocks come from the heap and freed ones stay mapped for the next step. The Trainer applies
  it when it trains on CPU; it works at any point in a process. Its price is memory: glibc
  2.36's posix_memalign (torch aligns to 64 bytes) cannot reuse a freed block of exactly the
  size asked for, so the heap grows for a few steps until freed blocks merge into ones that
  fit (+6-12% peak RSS measured, then flat).
- huge pages: glibc's `glibc.malloc.hugetlb=1` tunable (glibc >= 2.35) madvises malloc's
  heap for transparent huge pages: 512x fewer faults and TLB misses on the same memory; with
  both, a settled step takes 0-100 page faults. A tunable is read only when a process starts, so
  `webtext train` restarts itself once with it added to GLIBC_TUNABLES
  (`relaunch_with_huge_pages`, called by the command before it imports torch).

WEBTEXT_MALLOC_TUNING=0 in the environment turns both off (1, the default, keeps them on; any
other value is an error rather than a guess). Elsewhere (macOS, musl, CUDA training) nothing
changes.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys

log = logging.getLogger(__name__)

HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb"
OPT_OUT = "WEBTEXT_MALLOC_TUNING"
_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_MAX = -4
_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: the largest it can say


def _glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")  # None or ValueError elsewhere
    except (AttributeError, ValueError, OSError):
        return False


def _opted_in(environ) -> bool:
    value = environ.get(OPT_OUT, "1").strip()
    if value not in ("0", "1"):
        raise ValueError(f"{OPT_OUT}={environ[OPT_OUT]!r}: use 0 to turn the CPU malloc settings off, "
                         "or 1 (the default) to keep them")
    return value == "1"


def enabled() -> bool:
    return _opted_in(os.environ) and _glibc()  # a typo in the opt-out is an error everywhere


def keep_freed_memory() -> bool:
    """Serve large blocks from the heap and keep freed memory mapped; False where not applied."""
    if not enabled():
        return False
    libc = ctypes.CDLL(None)
    applied = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1
    if not applied:
        log.warning("mallopt refused the CPU training settings; glibc defaults stay")
    return applied


def huge_pages_environ(environ: dict[str, str]) -> dict[str, str] | None:
    """`environ` with glibc's huge-page tunable added, or None where nothing is to change:
    not glibc, opted out, or GLIBC_TUNABLES already says something about huge pages (the
    user's own choice, or this process is the restarted one)."""
    if not _opted_in(environ) or not _glibc():
        return None
    tunables = environ.get("GLIBC_TUNABLES", "")
    if HUGE_PAGES_TUNABLE in tunables:
        return None
    added = f"{HUGE_PAGES_TUNABLE}=1"
    return {**environ, "GLIBC_TUNABLES": f"{tunables}:{added}" if tunables else added}


def relaunch_with_huge_pages(command: str) -> None:
    """Restart this process (same pid, same command line, under torchrun too) with the
    huge-page tunable set, when it was started as `webtext COMMAND`. Returns where there is
    nothing to change, and in a program that runs the command in-process (a test calling
    `webtext.cli.main`, a notebook): restarting that program is not the command's to do.
    ValueError for a bad WEBTEXT_MALLOC_TUNING."""
    environ = huge_pages_environ(dict(os.environ))
    if environ is None or sys.argv[1:2] != [command]:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, sys.orig_argv, environ)


def describe(kept_freed_memory: bool) -> dict:
    """What this process runs with, for the run log (numbers are only comparable alike):
    `kept_freed_memory` is what `keep_freed_memory()` returned, False where it was not called."""
    return {"glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""), "malloc_tuning": kept_freed_memory}
