"""`webtext demo`: every stage end to end on the bundled offline sample.

It runs exactly the commands a user would (`webtext harvest`, `crawl --replay`, `build`,
`tokenizer train`, `tokenize`, `train`, `sample`), each in its own process with the same
`--config`/`--set` arguments, plus the demo-scale overrides below, then prints one table of
per-stage counts. The crawl goes through the replay server on 127.0.0.1: nothing leaves the
machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from webtext.stats import StageCounts, format_counts_table

REPO = Path(__file__).resolve().parent.parent
SAMPLE_DUMP = REPO / "crawl" / "sample" / "reddit" / "RS_sample.zst"
SAMPLE_WEB = REPO / "crawl" / "sample" / "web"

# Sized so the whole demo takes a few minutes on 2 CPU cores; user --set arguments win.
DEMO_OVERRIDES = [
    "crawl.download_timeout=2",  # the sample's slow page must time out quickly
    "crawl.retry_backoff_base=0.5",
    "tokenizer.vocab_size=2048",
    "model.preset=tiny",
    "train.batch_tokens=4096",
    "train.micro_batch_size=16",
    "train.max_steps=300",
    "train.warmup_steps=30",
    "train.learning_rate=3e-3",
    "train.min_lr=3e-4",
    "train.eval_interval=100",
    "train.eval_batches=8",
    "train.checkpoint_interval=100",
    "train.log_interval=20",
    "sample.max_tokens=60",
]
DEMO_PROMPT = "The history of the"


def _webtext(args: list[str], common: list[str]) -> None:
    cmd = [sys.executable, "-m", "webtext", *args, *common]
    print(f"\n$ webtext {' '.join(args)}", flush=True)
    started = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


def _stage_counts(path: Path) -> dict[str, StageCounts]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {name: StageCounts.from_json(name, c) for name, c in data.get("stages", {}).items()}


def run_demo(args, cfg) -> int:
    out = Path(args.out)
    common = [f"--config={args.config}"] if args.config else []
    for override in DEMO_OVERRIDES + list(args.overrides):
        common += ["--set", override]
    started = time.perf_counter()
    try:
        _webtext(["harvest", "--dumps", str(SAMPLE_DUMP), "--out", str(out / "urls")], common)
        _webtext(["crawl", "--urls", str(out / "urls"), "--out", str(out / "crawl"), "--replay", str(SAMPLE_WEB)], common)
        _webtext(["build", "--warc", str(out / "crawl"), "--out", str(out / "dataset")], common)
        _webtext(["tokenizer", "train", "--shards", str(out / "dataset"), "--out", str(out / "tokenizer")], common)
        _webtext(["tokenize", "--shards", str(out / "dataset"), "--tokenizer", str(out / "tokenizer"), "--out", str(out / "tokens")], common)
        _webtext(["train", "--tokens", str(out / "tokens"), "--out", str(out / "run")], common)
        _webtext(["sample", "--checkpoint", str(out / "run"), "--prompt", DEMO_PROMPT], common)
    except subprocess.CalledProcessError as exc:
        print(f"webtext demo: stage failed (exit {exc.returncode}): {' '.join(exc.cmd[3:5])}", file=sys.stderr)
        return exc.returncode or 1
    counts: dict[str, StageCounts] = {}
    counts.update(_stage_counts(out / "urls" / "harvest_stats.json"))
    counts.update(_stage_counts(out / "crawl" / "crawl_stats.json"))
    manifest = out / "dataset" / "manifest.json"
    if manifest.exists():
        counts.update(_stage_counts_from_manifest(manifest))
    print("\nPer-stage counts (records in / out / dropped by reason):")
    print(format_counts_table(counts))
    _print_training_summary(out / "run" / "log.jsonl")
    print(f"\nDemo finished in {time.perf_counter() - started:.0f} s; outputs under {out}/")
    return 0


def _stage_counts_from_manifest(path: Path) -> dict[str, StageCounts]:
    data = json.loads(path.read_text())
    stages = data.get("counts", data.get("stages", {}))
    if "stages" in stages:
        stages = stages["stages"]
    return {name: StageCounts.from_json(name, c) for name, c in stages.items()}


def _print_training_summary(log_path: Path) -> None:
    if not log_path.exists():
        return
    vals = [json.loads(line) for line in log_path.read_text().splitlines() if '"val' in line]
    if vals:
        first, last = vals[0], vals[-1]
        key = next(k for k in ("val_loss", "loss") if k in last)
        print(f"\nValidation loss: {first[key]:.3f} (step {first.get('step')}) -> {last[key]:.3f} (step {last.get('step')})")


def register(subparsers, common) -> None:
    p = subparsers.add_parser(
        "demo", parents=[common],
        help="run every stage on the bundled offline sample (harvest, crawl, build, tokenize, train, sample)",
        description=__doc__,
    )
    p.add_argument("--out", default="out/demo", help="work directory (default: out/demo)")
    p.set_defaults(func=run_demo)
