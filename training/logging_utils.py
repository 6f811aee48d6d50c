"""Run logs: JSONL records (+ TensorBoard when installed), the loss-curve PNG, and the
measured GEMM peak that MFU is reported against."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch

from core.fsio import atomic_write_text

log = logging.getLogger(__name__)
LOG_FILE = "log.jsonl"
TENSORBOARD_VERSION = "2.21.0"  # installs beside our pinned dependencies (checked with pip)


def read_jsonl_log(path: str | Path) -> list[dict]:
    """Records of a run log; a torn last line (the process died mid-write) is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                log.warning("%s: dropping torn last line %d", path, number)
                break
            raise ValueError(f"{path}:{number}: not valid JSON") from None
    return records


class RunLogger:
    """Appends one JSON object per line to RUNDIR/log.jsonl and mirrors scalars to TensorBoard."""

    def __init__(self, run_dir: str | Path, resume_step: int | None = None, tensorboard: bool = True):
        self.path = Path(run_dir) / LOG_FILE
        if resume_step is not None:
            # a killed run may have logged steps past its last checkpoint: forget them
            kept = [r for r in read_jsonl_log(self.path) if r.get("step", 0) <= resume_step]
            atomic_write_text(str(self.path), "".join(json.dumps(r) + "\n" for r in kept))
        elif self.path.exists():
            self.path.unlink()
        self._fh = open(self.path, "a", encoding="utf-8")
        self._tb = _tensorboard_writer(Path(run_dir) / "tb") if tensorboard else None
        self.tensorboard_dir = Path(run_dir) / "tb" if self._tb is not None else None

    def write(self, kind: str, step: int, **fields) -> None:
        record = {"kind": kind, "step": step, **fields}
        self._fh.write(json.dumps(record) + "\n")
        self._fh.flush()
        if self._tb is not None:
            for key, value in fields.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


def _tensorboard_writer(directory: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("train.tensorboard is true but the tensorboard package is not installed "
                    "(pip install tensorboard==%s): logging to log.jsonl only", TENSORBOARD_VERSION)
        return None
    return SummaryWriter(str(directory))


def plot_loss_curve(records: list[dict], out_png: str | Path) -> None:
    """Train and validation loss against step, written with the Agg backend (no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in records if r.get("kind") == "train"]
    val = [(r["step"], r["loss"]) for r in records if r.get("kind") == "val"]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    if train:
        ax.plot(*zip(*train), label="train", linewidth=1.2)
    if val:
        ax.plot(*zip(*val), "o-", label="validation", linewidth=1.2, markersize=4)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / token)")
    ax.set_title("GPT-2 training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = Path(out_png).with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out_png)


def measure_gemm_flops(device: torch.device, dtype: torch.dtype = torch.float32, n: int | None = None,
                       seconds: float = 1.0) -> float:
    """Sustained FLOP/s of back-to-back n x n matmuls on this device, with the threads training
    uses: the peak MFU is measured against (the trainer's log and bench_train alike). Sustained,
    not the best single call, so a lucky turbo burst does not set the bar. Its own generator, so
    measuring does not move the training RNG streams."""
    n = n or (4096 if device.type == "cuda" else 2048)
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
    per_sync = 10 if device.type == "cuda" else 1  # keep the GPU queue full between clock reads
    torch.mm(a, b)  # warm up kernels / thread pool
    _sync(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(per_sync):
            torch.mm(a, b)
        _sync(device)
        count += per_sync
    return count * 2 * n**3 / (time.perf_counter() - start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
