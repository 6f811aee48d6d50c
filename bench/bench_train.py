"""Trainer throughput: our GPT-2 training step against transformers' GPT2LMHeadModel, MFU
against a GEMM peak measured in the same run, and the token loader against the trainer.

    .venv/bin/python -m bench.bench_train [--rounds 3] [--steps 2] [--compile]

Same config for both models (6 layers, 384 wide, 6 heads, block 256, vocab 50257, batch 8,
fp32 on CPU), the same batches, the same fused AdamW (decay on matrices only; transformers'
Trainer default too) and clipping. Ours runs through `Trainer._train_step` (data gather
included); rounds alternate between the two models so that load on a shared machine hits both
alike, and the speedup is the median of the per-round ratios. Targets: ours/HF >= 1.2x,
MFU >= 85% of the measured fp32 GEMM peak, loader >= 50x the trainer's consumption. The MFU
ceiling times the step's weight GEMMs alone at their shapes: what MFU would be if attention,
norms, softmax and the optimiser cost nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "bench" / "results" / "train.json"
TARGETS = {"speedup_vs_hf": 1.2, "mfu": 0.85, "loader_vs_trainer": 50.0}
SHAPE = {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "vocab_size": 50257}
BATCH = 8


def write_random_shards(root: Path, tokens: int = 2_000_000) -> Path:
    """Token shards in the tokenize stage's layout, filled with seeded random ids."""
    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", tokens), ("val", 20_000)):
        (root / split).mkdir(parents=True)
        file = f"{split}/shard-00000.bin"
        rng.integers(0, SHAPE["vocab_size"], n, dtype=np.uint16).astype("<u2").tofile(root / file)
        splits[split] = {"shards": [{"file": file, "tokens": n, "documents": 1, "sha256": ""}]}
    (root / "manifest.json").write_text(json.dumps(
        {"dtype": "uint16", "vocab_size": SHAPE["vocab_size"], "eot_id": 50256, "splits": splits}))
    return root


def make_trainer(tokens: Path, run: Path, compile_model: bool):
    from training.train import Trainer
    from webtext.config import load_config

    overrides = [f"model.{k}={v}" for k, v in SHAPE.items() if k != "vocab_size"]
    overrides += ["model.preset=gpt2-117m", f"train.micro_batch_size={BATCH}",
                  f"train.batch_tokens={BATCH * SHAPE['block_size']}", "train.device=cpu", "train.peak_flops=1",
                  "train.tensorboard=false", "train.warmup_steps=10", f"train.compile={str(compile_model).lower()}"]
    return Trainer(load_config(None, overrides), tokens, run)


def make_hf_step(trainer):
    """One training step of transformers' GPT2LMHeadModel on the trainer's next batch."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=SHAPE["n_layer"], n_head=SHAPE["n_head"], n_embd=SHAPE["n_embd"],
                        n_positions=SHAPE["block_size"], vocab_size=SHAPE["vocab_size"], resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, activation_function="gelu_new")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).train()
    tcfg = trainer.tcfg
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": tcfg.weight_decay},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=tcfg.learning_rate, betas=(tcfg.beta1, tcfg.beta2), eps=tcfg.eps,
        fused=True)  # as our trainer, and as transformers' Trainer defaults to with torch >= 2.8
    cursor = [0]

    def step() -> float:
        (x, y), = trainer.stream.micro_batches(cursor[0], BATCH, 1)
        cursor[0] += BATCH
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.grad_clip)
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


def gemm_flops_per_second(seconds: float = 1.0, n: int = 2048) -> float:
    """Sustained fp32 FLOP/s of back-to-back n x n matmuls: the in-round peak MFU refers to."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        count += 1
    return count * 2 * n**3 / (time.perf_counter() - start)


def step_gemm_seconds(model, rows: int, repeats: int = 2) -> float:
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


def loader_tokens_per_second(trainer, batches: int = 300) -> float:
    stream, start = trainer.stream, time.perf_counter()
    for i in range(batches):
        for x, y in stream.micro_batches(i * BATCH, BATCH, 1):
            pass
    return batches * BATCH * SHAPE["block_size"] / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds")
    parser.add_argument("--steps", type=int, default=2, help="training steps per model per round")
    parser.add_argument("--compile", action="store_true", help="also time ours with torch.compile")
    args = parser.parse_args(argv or [])  # `python -m bench` calls main() with its own argv
    logging.getLogger("training").setLevel(logging.ERROR)  # no tokenizer here: no bits per byte, as intended
    from training.logging_utils import measure_gemm_flops

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        tokens = write_random_shards(Path(tmp) / "tokens")
        trainer = make_trainer(tokens, Path(tmp) / "run", compile_model=False)
        hf_step, hf_params = make_hf_step(trainer)
        variants = {"ours": trainer._train_step, "transformers GPT2LMHeadModel": hf_step}
        if args.compile:
            variants["ours + torch.compile"] = make_trainer(tokens, Path(tmp) / "run-c", True)._train_step
        for step in variants.values():  # warm-up: allocator, thread pool, compilation
            step()
        times: dict[str, list[float]] = {name: [] for name in variants}
        peaks: list[float] = []
        for _ in range(args.rounds):  # a GEMM baseline in every round: MFU is a same-round ratio
            peaks.append(gemm_flops_per_second())
            for name, step in variants.items():
                times[name].append(seconds_per_step(step, args.steps))
        best_gemm = measure_gemm_flops(torch.device("cpu"), torch.float32, 2048, seconds=1.0)
        breakdown, top_ops = time_breakdown(trainer._train_step)
        gemm_seconds = step_gemm_seconds(trainer.model, BATCH * SHAPE["block_size"])
        gemm_peak = gemm_flops_per_second()  # next to the shape timings: the ceiling is a same-moment ratio
        loader = loader_tokens_per_second(trainer)

    tokens_per_step = BATCH * SHAPE["block_size"]
    flops_per_token = trainer.model.flops_per_token()
    rows = {}
    for name, samples in times.items():
        mfus = [tokens_per_step * flops_per_token / t / peak for t, peak in zip(samples, peaks)]
        rows[name] = {"tokens_per_s": tokens_per_step / statistics.median(samples),
                      "seconds_per_step": statistics.median(samples), "mfu": statistics.median(mfus)}
    peak = statistics.median(peaks)
    ours = rows["ours"]["tokens_per_s"]
    per_round = [hf / own for own, hf in zip(times["ours"], times["transformers GPT2LMHeadModel"])]
    result = {
        "config": {**SHAPE, "batch": BATCH, "dtype": "float32", "device": "cpu", "threads": torch.get_num_threads(),
                   "parameters_ours": trainer.model.num_params(), "parameters_hf": hf_params,
                   "flops_per_token": flops_per_token, "rounds": args.rounds, "steps_per_round": args.steps},
        "gemm_flops_sustained": peak,  # median over rounds, back-to-back 2048^3 fp32 matmuls
        "gemm_flops_best_single": best_gemm,
        "throughput": rows,
        # median of same-round ratios: a load spike hits both halves of a round alike
        "speedup_vs_hf": statistics.median(per_round),
        "speedup_vs_hf_per_round": per_round,
        "mfu": rows["ours"]["mfu"],
        "gemm_seconds_per_step": gemm_seconds,
        # MFU if the step were its weight GEMMs only (attention, norms, softmax, optimiser free)
        "mfu_ceiling_gemm_only": tokens_per_step * flops_per_token / gemm_seconds / gemm_peak,
        "time_breakdown_ours": breakdown,
        "top_ops_ours": top_ops,
        "loader_tokens_per_s": loader,
        "loader_vs_trainer": loader / ours,
        "targets": TARGETS,
    }
    result["meets_targets"] = {k: result[k] >= v for k, v in TARGETS.items()}

    print(f"\nGPT-2 {SHAPE['n_layer']}L/{SHAPE['n_embd']}d/block {SHAPE['block_size']}, batch {BATCH}, "
          f"fp32 CPU x{torch.get_num_threads()} threads; GEMM {peak / 1e9:.1f} GFLOP/s sustained "
          f"({best_gemm / 1e9:.1f} best single)")
    print(f"{'trainer':32s}{'tok/s':>10s}{'s/step':>9s}{'MFU':>8s}")
    for name, row in rows.items():
        print(f"{name:32s}{row['tokens_per_s']:>10,.0f}{row['seconds_per_step']:>9.3f}{row['mfu']:>8.1%}")
    print(f"\nours / transformers: {result['speedup_vs_hf']:.2f}x (target >= {TARGETS['speedup_vs_hf']}x); per round: "
          + ", ".join(f"{r:.2f}x" for r in result["speedup_vs_hf_per_round"]))
    print(f"MFU: {result['mfu']:.1%} (target >= {TARGETS['mfu']:.0%}); ceiling if only the weight GEMMs took "
          f"time: {result['mfu_ceiling_gemm_only']:.1%} ({gemm_seconds:.2f} s of GEMMs per step)")
    print(f"loader: {loader:,.0f} tok/s = {result['loader_vs_trainer']:,.0f}x the trainer (target >= "
          f"{TARGETS['loader_vs_trainer']:.0f}x)")
    print("where one step of ours spends its CPU time:")
    for label, share in breakdown.items():
        print(f"  {label:36s}{share:>7.1%}")
    print("top ops: " + ", ".join(f"{k} {v:.1%}" for k, v in list(top_ops.items())[:6]))
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    from webtext.fsio import atomic_write_text

    atomic_write_text(str(RESULT), json.dumps(result, indent=2) + "\n")
    print(f"-> {RESULT.relative_to(REPO)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
