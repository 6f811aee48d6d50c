"""DDP on CPU: `torchrun --nproc_per_node=2` with gloo (loopback only) trains the same model
as one process with the same global batch, and only rank 0 writes."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.train_fixtures import tiny_config
from training.checkpoint import load_checkpoint
from training.logging_utils import read_jsonl_log
from training.train import train

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {"max_steps": 6, "eval_interval": 3, "checkpoint_interval": 3}


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_match_one_process(corpus, tmp_path):
    tokens, tokenizer = corpus
    config, overrides = tiny_config(dropout=0.0, **SETTINGS)  # per-rank dropout streams differ by design
    single = tmp_path / "single"
    train(config.train, config.model, tokens, single, tokenizer_dir=tokenizer)

    ddp = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
               "--master_addr=127.0.0.1", f"--master_port={free_loopback_port()}",
               "-m", "webtext.cli", "train", "--tokens", str(tokens), "--out", str(ddp), "--tokenizer", str(tokenizer)]
    for override in overrides + [f"train.{k}={v}" for k, v in SETTINGS.items()]:
        command += ["--set", override]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    out = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    one = [r for r in read_jsonl_log(single / "log.jsonl") if r["kind"] in ("train", "val")]
    two = [r for r in read_jsonl_log(ddp / "log.jsonl") if r["kind"] in ("train", "val")]
    assert [(r["kind"], r["step"]) for r in one] == [(r["kind"], r["step"]) for r in two]
    for a, b in zip(one, two):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-5), (a, b)
    config_record = read_jsonl_log(ddp / "log.jsonl")[0]
    assert config_record["world_size"] == 2 and config_record["grad_accum"] == 1
    saved = load_checkpoint(ddp)
    assert saved["world_size"] == 2 and len(saved["rng"]) == 2 and saved["cursor"] == 6 * 8
    assert out.stdout.count("stopped by max_steps") == 1  # only rank 0 reports
    assert sorted(p.name for p in ddp.iterdir()) == ["ckpt-00000003.pt", "ckpt-00000006.pt", "log.jsonl", "loss.png"]
