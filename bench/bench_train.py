"""Trainer throughput: our GPT-2 training step against transformers' GPT2LMHeadModel, MFU
against a GEMM peak measured in the same run, and the token loader against the trainer.

    .venv/bin/python -m bench.bench_train [--setups gpt2-117m,toy] [--rounds 3] [--steps 1] [--compile]

Each setup times both models at the same config: the paper's smallest GPT-2 (`gpt2-117m`: 12
layers, 768 wide, block 1024, the model the issue describes; 2 sequences per step) and the
earlier toy shape (6 layers, 384 wide, block 256; 8 sequences), vocab 50257, fp32 on CPU, the
same batches, the same fused AdamW (decay on matrices only; transformers' Trainer default too)
and clipping. Ours runs through `Trainer._train_step` (data gather included) in a process set up
as `webtext train` sets up its own: glibc's huge-page tunable at start, the Trainer's malloc
settings (training/host_memory.py). transformers runs in a process of its own as its users run
it, and once more in a process given our malloc settings, which shows how much of the speedup
those settings are. Each variant has its own process (glibc reads tunables only at start);
rounds alternate between them so that load on a shared machine hits them alike, and a speedup
is the median of the per-round ratios. MFU uses PaLM's count (6N + 12*L*d*T per token,
attention over the full T although the causal kernel skips masked blocks) against
`measure_gemm_flops` (sustained 2048^3 fp32 matmuls, same threads) measured in every process
before and after every round, the best of those being the peak: load can only lower a
measurement, never inflate MFU. Targets, both at one setup: ours/transformers >= 1.2x, MFU >=
85%; loader >= 50x the trainer's consumption. The MFU ceiling times the step's weight GEMMs
alone at their shapes: what MFU would be if attention, norms, softmax and the optimiser cost
nothing. `--compile` adds both models under torch.compile (compilation shows in the
first-step column, not in step time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "bench" / "results" / "train.json"
TARGETS = {"speedup_vs_hf": 1.2, "mfu": 0.85, "loader_vs_trainer": 50.0}
VOCAB = 50257
HF = "transformers GPT2LMHeadModel"


@dataclass(frozen=True)
class Setup:
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    batch: int  # sequences per step

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.block_size


SETUPS = {
    # Seconds per step on 2 threads: ~10 and ~3 where fp32 GEMMs run at ~200 GFLOP/s, ~29 and ~6.5 at ~65.
    "gpt2-117m": Setup(12, 12, 768, 1024, batch=2),  # = the gpt2-117m preset
    "toy": Setup(6, 6, 384, 256, batch=8),  # narrow: the 50257-wide logits are ~62% of its FLOPs
}


def write_random_shards(root: Path, tokens: int = 2_000_000) -> Path:
    """Token shards in the tokenize stage's layout, filled with seeded random ids."""
    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", tokens), ("val", 20_000)):
        (root / split).mkdir(parents=True)
        file = f"{split}/shard-00000.bin"
        data = rng.integers(0, VOCAB, n, dtype=np.uint16).astype("<u2").tobytes()
        (root / file).write_bytes(data)
        splits[split] = {"shards": [{"file": file, "tokens": n, "documents": 1,
                                     "sha256": hashlib.sha256(data).hexdigest()}]}
    (root / "manifest.json").write_text(json.dumps(
        {"dtype": "uint16", "vocab_size": VOCAB, "eot_id": 50256, "splits": splits}))
    return root


def bench_config(setup: Setup, compile_model: bool):
    from webtext.config import load_config

    overrides = ["model.preset=gpt2-117m", "train.max_steps=100000"]  # lr and schedule as before `auto`
    overrides += [f"model.{k}={getattr(setup, k)}" for k in ("n_layer", "n_head", "n_embd", "block_size")]
    overrides += [f"train.micro_batch_size={setup.batch}", f"train.batch_tokens={setup.tokens_per_step}",
                  "train.device=cpu", "train.peak_flops=1", "train.tensorboard=false", "train.warmup_steps=10",
                  f"train.compile={str(compile_model).lower()}"]
    return load_config(None, overrides)


def make_trainer(setup: Setup, tokens: Path, run: Path, compile_model: bool):
    from training.train import Trainer

    config = bench_config(setup, compile_model)
    return Trainer(config.train, config.model, tokens, run)


def make_hf_step(setup: Setup, tokens: Path, compile_model: bool):
    """One training step of transformers' GPT2LMHeadModel on the batches our trainer would see
    (same shards, seed and shuffle), without a Trainer: nothing of ours configures its process."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from training.data import ShuffledStream, TokenManifest, TokenWindows

    train_config = bench_config(setup, compile_model).train
    windows = TokenWindows(tokens, train_config.train_split, setup.block_size, TokenManifest.load(tokens))
    stream = ShuffledStream(windows, train_config.seed)
    config = GPT2Config(n_layer=setup.n_layer, n_head=setup.n_head, n_embd=setup.n_embd,
                        n_positions=setup.block_size, vocab_size=VOCAB, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, activation_function="gelu_new")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).train()
    forward = torch.compile(model) if compile_model else model
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": train_config.weight_decay},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=train_config.learning_rate, betas=(train_config.beta1, train_config.beta2), eps=train_config.eps,
        fused=True)  # as our trainer, and as transformers' Trainer defaults to with torch >= 2.8
    cursor = [0]

    def step() -> float:
        (x, y), = stream.micro_batches(cursor[0], setup.batch, 1)
        cursor[0] += setup.batch
        logits = forward(input_ids=x).logits
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()

    return step, sum(p.numel() for p in params)


def seconds_per_step(step, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


CATEGORIES = [  # (label, substrings of aten op names), first match wins
    ("GEMM (matmul/linear)", ("aten::mm", "aten::addmm", "aten::bmm")),
    ("attention (SDPA)", ("attention", "sdpa")),
    ("softmax + cross-entropy", ("log_softmax", "nll_loss", "cross_entropy")),
    ("AdamW + grad clipping", ("_foreach", "adam", "norm", "clamp")),
    ("layer norm", ("layer_norm",)),
    ("GELU", ("gelu",)),
    ("embedding", ("embedding",)),
    ("elementwise / copies / reductions", ("add", "mul", "copy", "sum", "fill", "zero", "div", "sub")),
]


def time_breakdown(step) -> tuple[dict[str, float], dict[str, float]]:
    """Share of self CPU time per op category, and the top ops, in one training step."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    shares: dict[str, float] = defaultdict(float)
    ops = {event.key: event.self_cpu_time_total for event in prof.key_averages()}
    total = sum(ops.values()) or 1.0
    for name, spent in ops.items():
        label = next((lab for lab, keys in CATEGORIES if any(k in name.lower() for k in keys)), "other")
        shares[label] += spent / total
    top = dict(sorted(((k, v / total) for k, v in ops.items()), key=lambda kv: -kv[1])[:10])
    return dict(sorted(shares.items(), key=lambda kv: -kv[1])), top


def gemm_peak() -> float:
    from training.logging_utils import measure_gemm_flops

    return measure_gemm_flops(torch.device("cpu"), torch.float32, 2048, seconds=1.0)


def step_gemm_seconds(model, rows: int, repeats: int = 1) -> float:
    """Seconds one training step spends in its weight GEMMs alone, at their real shapes and
    layouts (forward x @ W.T, backward g @ W and g.T @ x): the step time if everything else
    were free, hence the MFU ceiling of this model size on this machine."""
    total = 0.0
    for module in model.modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        out_features, in_features = module.weight.shape
        w, x, g = module.weight.detach(), torch.randn(rows, in_features), torch.randn(rows, out_features)
        for product in (lambda: x @ w.T, lambda: g @ w, lambda: g.T @ x):
            product()  # first touch of the output pages out of the timing
            start = time.perf_counter()
            for _ in range(repeats):
                product()
            total += (time.perf_counter() - start) / repeats
    return total


def loader_tokens_per_second(setup: Setup, trainer, batches: int = 300) -> float:
    stream, start = trainer.stream, time.perf_counter()
    for i in range(batches):
        for x, y in stream.micro_batches(i * setup.batch, setup.batch, 1):
            pass
    return batches * setup.tokens_per_step / (time.perf_counter() - start)


@dataclass(frozen=True)
class Variant:
    model: str  # "ours" (our Trainer) or "hf" (transformers)
    tuned: bool  # runs with our CPU malloc settings (training/host_memory.py)
    compile: bool = False


HF_TUNED = HF + ", our malloc settings"
VARIANTS = {
    "ours": Variant("ours", tuned=True),  # as `webtext train` runs: its malloc settings are part of it
    HF: Variant("hf", tuned=False),  # as transformers users run it
    HF_TUNED: Variant("hf", tuned=True),  # how much of the speedup is the malloc settings
}
COMPILED = {
    "ours + torch.compile": Variant("ours", tuned=True, compile=True),
    HF + " + torch.compile": Variant("hf", tuned=False, compile=True),
}


def worker(conn, variant: Variant, name: str, tokens: str, run_dir: str, threads: int) -> None:
    """One variant in its own process (glibc reads its malloc tunables only at process start),
    answering the orchestrator's commands until told to close."""
    from training import host_memory

    torch.set_num_threads(threads)
    logging.getLogger("training").setLevel(logging.ERROR)  # no tokenizer here: no bits per byte, as intended
    setup = SETUPS[name]
    if variant.model == "ours":
        trainer = make_trainer(setup, Path(tokens), Path(run_dir), variant.compile)  # applies its settings
        step, params, kept = trainer._train_step, trainer.model.num_params(), trainer.kept_freed_memory
    else:
        kept = variant.tuned and host_memory.keep_freed_memory()
        step, params = make_hf_step(setup, Path(tokens), variant.compile)
    conn.send({"first_step": seconds_per_step(step, 1), "parameters": params,
               "host_memory": host_memory.describe(kept)})
    while True:
        command, arg = conn.recv()
        if command == "steps":
            conn.send(seconds_per_step(step, arg))
        elif command == "peak":
            conn.send(gemm_peak())
        elif command == "analyse":  # ours only: where the time goes, and the GEMM-only ceiling
            breakdown, top_ops = time_breakdown(step)
            gemm_seconds = step_gemm_seconds(trainer.model, setup.tokens_per_step)
            conn.send({"breakdown": breakdown, "top_ops": top_ops, "gemm_seconds": gemm_seconds,
                       "gemm_peak_now": gemm_peak(),  # next to the shape timings: a same-moment ratio
                       "loader": loader_tokens_per_second(setup, trainer),
                       "flops_per_token": trainer.model.flops_per_token()})
        else:
            conn.close()
            return


class Worker:
    def __init__(self, variant: Variant, name: str, tokens: Path, run_dir: Path):
        from training import host_memory

        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        environ = host_memory.huge_pages_environ(dict(os.environ)) if variant.tuned else None
        saved = dict(os.environ)
        try:
            os.environ.update(environ or {})  # a spawned child starts with this environment
            self.process = ctx.Process(target=worker, daemon=True,
                                       args=(child, variant, name, str(tokens), str(run_dir), torch.get_num_threads()))
            self.process.start()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        child.close()
        self.info = self.conn.recv()

    def ask(self, command: str, arg=None):
        self.conn.send((command, arg))
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(("close", None))
        self.process.join(timeout=60)


def measure_setup(name: str, setup: Setup, tmp: Path, rounds: int, steps: int, compile_both: bool) -> dict:
    """All variants at one setup, each in its own process, in alternating rounds bracketed by
    GEMM peak measurements in every process."""
    tokens = write_random_shards(tmp / name / "tokens")
    variants = {**VARIANTS, **(COMPILED if compile_both else {})}
    workers = {}
    try:
        for label, variant in tqdm(variants.items(), desc=f"{name} start-up", unit="variant"):
            workers[label] = Worker(variant, name, tokens, tmp / name / f"run-{len(workers)}")  # + 1st step
        times: dict[str, list[float]] = {label: [] for label in variants}
        peaks = [w.ask("peak") for w in workers.values()]
        for _ in tqdm(range(rounds), desc=f"{name} rounds", unit="round"):
            for label, w in workers.items():
                times[label].append(w.ask("steps", steps))
            peaks += [w.ask("peak") for w in workers.values()]  # load only ever lowers it: MFU uses the best
        analysis = workers["ours"].ask("analyse")
    finally:
        for w in workers.values():
            w.close()

    flops_per_step = setup.tokens_per_step * analysis["flops_per_token"]
    peak = max(peaks)
    rows = {}
    for label, samples in times.items():
        mfus = [flops_per_step / t / peak for t in samples]
        rows[label] = {"tokens_per_s": setup.tokens_per_step / statistics.median(samples),
                       "seconds_per_step": statistics.median(samples), "mfu": statistics.median(mfus),
                       "mfu_per_round": mfus, "first_step_seconds": workers[label].info["first_step"],
                       "host_memory": workers[label].info["host_memory"]}

    def speedup(ours: str, theirs: str) -> list[float]:  # same-round ratios
        return [hf / own for own, hf in zip(times[ours], times[theirs])]

    result = {
        "config": {**vars(setup), "vocab_size": VOCAB, "parameters_ours": workers["ours"].info["parameters"],
                   "parameters_hf": workers[HF].info["parameters"], "flops_per_token": analysis["flops_per_token"]},
        "gemm_flops_peak": peak,  # best sustained rate of back-to-back 2048^3 fp32 matmuls in the run
        "gemm_flops_around_rounds": peaks,
        "throughput": rows,
        # median of same-round ratios: a load spike hits both halves of a round alike
        "speedup_vs_hf": statistics.median(speedup("ours", HF)),
        "speedup_vs_hf_per_round": speedup("ours", HF),
        "speedup_vs_hf_with_our_malloc": statistics.median(speedup("ours", HF_TUNED)),
        "mfu": rows["ours"]["mfu"],
        "gemm_seconds_per_step": analysis["gemm_seconds"],
        # MFU if the step were its weight GEMMs only (attention, norms, softmax, optimiser free)
        "mfu_ceiling_gemm_only": flops_per_step / analysis["gemm_seconds"] / analysis["gemm_peak_now"],
        "time_breakdown_ours": analysis["breakdown"],
        "top_ops_ours": analysis["top_ops"],
        "loader_tokens_per_s": analysis["loader"],
        "loader_vs_trainer": analysis["loader"] / rows["ours"]["tokens_per_s"],
    }
    if compile_both:
        result["speedup_vs_hf_compiled_both"] = statistics.median(
            speedup("ours + torch.compile", HF + " + torch.compile"))
    result["meets_targets"] = {k: result[k] >= v for k, v in TARGETS.items()}
    return result


def report(name: str, setup: Setup, r: dict) -> None:
    print(f"\n[{name}] GPT-2 {setup.n_layer}L/{setup.n_embd}d/block {setup.block_size}, batch {setup.batch}, "
          f"fp32 CPU x{torch.get_num_threads()} threads; GEMM peak {r['gemm_flops_peak'] / 1e9:.1f} GFLOP/s "
          "(best sustained; around rounds: " + ", ".join(f"{p / 1e9:.0f}" for p in r["gemm_flops_around_rounds"]) + ")")
    print(f"{'trainer':48s}{'tok/s':>8s}{'s/step':>8s}{'MFU':>7s}{'1st step s':>12s}")
    for label, row in r["throughput"].items():
        print(f"{label:48s}{row['tokens_per_s']:>8,.0f}{row['seconds_per_step']:>8.2f}{row['mfu']:>7.1%}"
              f"{row['first_step_seconds']:>12.1f}")
    print(f"ours / transformers (both eager): {r['speedup_vs_hf']:.2f}x (target >= {TARGETS['speedup_vs_hf']}x); "
          "per round: " + ", ".join(f"{x:.2f}x" for x in r["speedup_vs_hf_per_round"])
          + f"; against transformers given our malloc settings too: {r['speedup_vs_hf_with_our_malloc']:.2f}x")
    if "speedup_vs_hf_compiled_both" in r:
        print(f"ours / transformers (both torch.compile): {r['speedup_vs_hf_compiled_both']:.2f}x")
    print(f"MFU (ours, eager): {r['mfu']:.1%} (target >= {TARGETS['mfu']:.0%}); per round: "
          + ", ".join(f"{m:.1%}" for m in r["throughput"]["ours"]["mfu_per_round"])
          + f"; ceiling if only the weight GEMMs took time: {r['mfu_ceiling_gemm_only']:.1%} "
          f"({r['gemm_seconds_per_step']:.2f} s of GEMMs per step)")
    print(f"loader: {r['loader_tokens_per_s']:,.0f} tok/s = {r['loader_vs_trainer']:,.0f}x the trainer "
          f"(target >= {TARGETS['loader_vs_trainer']:.0f}x)")
    print("where one step of ours spends its CPU time: " + ", ".join(
        f"{label} {share:.1%}" for label, share in r["time_breakdown_ours"].items()))
    print("top ops: " + ", ".join(f"{k} {v:.1%}" for k, v in list(r["top_ops_ours"].items())[:6]))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setups", default=",".join(SETUPS), help=f"comma-separated, of: {', '.join(SETUPS)}")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds per setup")
    parser.add_argument("--steps", type=int, default=1, help="training steps per model per round")
    parser.add_argument("--compile", action="store_true",
                        help="also time both models under torch.compile (minutes of compilation per model)")
    args = parser.parse_args(argv or [])  # `python -m bench` calls main() with its own argv
    names = [n for n in args.setups.split(",") if n]
    unknown = set(names) - set(SETUPS)
    if unknown or not names:
        parser.error(f"unknown setup(s) {sorted(unknown)}; choose from {', '.join(SETUPS)}")
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        for name in names:
            results[name] = measure_setup(name, SETUPS[name], Path(tmp), args.rounds, args.steps, args.compile)
    result = {"device": "cpu", "dtype": "float32", "threads": torch.get_num_threads(), "torch": torch.__version__,
              "rounds": args.rounds, "steps_per_round": args.steps, "targets": TARGETS, "setups": results,
              "both_targets_met_at": [n for n, r in results.items()
                                      if r["meets_targets"]["speedup_vs_hf"] and r["meets_targets"]["mfu"]]}
    for name, r in results.items():
        report(name, SETUPS[name], r)
    print(f"\nsetups meeting speedup and MFU targets together: {', '.join(result['both_targets_met_at']) or 'none'}")
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    from core.fsio import atomic_write_text

    atomic_write_text(str(RESULT), json.dumps(result, indent=2) + "\n")
    print(f"-> {RESULT.relative_to(REPO)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
