"""Trainer throughput: our GPT-2 training step against transformers' GPT2LMHeadModel, MFU
against a GEMM peak measured in the same run, and the token loader against the trainer.

    .venv/bin/python -m bench.bench_train [--setups gpt2-117m,toy] [--rounds 3] [--steps 1] [--compile]

Each setup times both models at the same config: the paper's smallest GPT-2 (`gpt2-117m`: 12
layers, 768 wide, block 1024, the model the issue describes; 2 sequences per step) and the
earlier toy shape (6 layers, 384 wide, block 256; 8 sequences), vocab 50257, fp32 on CPU, the
same batches, the same fused AdamW (decay on matrices only; transformers' Trainer default too)
and clipping. Ours runs through `Trainer._train_step` (data gather included); rounds alternate
between the models so that load on a shared machine hits them alike, and the speedup is the
median of the per-round ratios. MFU uses PaLM's count (6N + 12*L*d*T per token, attention over
the full T although the causal kernel skips masked blocks) against `measure_gemm_flops`
(sustained 2048^3 fp32 matmuls, same threads) measured before and after every round, the best
of those being the peak: load can only lower a measurement, never inflate MFU. Targets,
both at one setup: ours/HF >= 1.2x, MFU >= 85%; loader >= 50x the trainer's consumption. The
MFU ceiling times the step's weight GEMMs alone at their shapes: what MFU would be if
attention, norms, softmax and the optimiser cost nothing. `--compile` adds both models under
torch.compile (compilation shows in the first-step column, not in step time).
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
    "gpt2-117m": Setup(12, 12, 768, 1024, batch=2),  # = the gpt2-117m preset; ~10 s a step on 2 threads
    "toy": Setup(6, 6, 384, 256, batch=8),  # ~3 s a step; a GEMM-poor shape, for comparison
}


def write_random_shards(root: Path, tokens: int = 2_000_000) -> Path:
    """Token shards in the tokenize stage's layout, filled with seeded random ids."""
    rng = np.random.default_rng(0)
    splits = {}
    for split, n in (("train", tokens), ("val", 20_000)):
        (root / split).mkdir(parents=True)
        file = f"{split}/shard-00000.bin"
        rng.integers(0, VOCAB, n, dtype=np.uint16).astype("<u2").tofile(root / file)
        splits[split] = {"shards": [{"file": file, "tokens": n, "documents": 1, "sha256": ""}]}
    (root / "manifest.json").write_text(json.dumps(
        {"dtype": "uint16", "vocab_size": VOCAB, "eot_id": 50256, "splits": splits}))
    return root


def make_trainer(setup: Setup, tokens: Path, run: Path, compile_model: bool):
    from training.train import Trainer
    from webtext.config import load_config

    overrides = [f"model.{k}={getattr(setup, k)}" for k in ("n_layer", "n_head", "n_embd", "block_size")]
    overrides += [f"train.micro_batch_size={setup.batch}", f"train.batch_tokens={setup.tokens_per_step}",
                  "train.device=cpu", "train.peak_flops=1", "train.tensorboard=false", "train.warmup_steps=10",
                  f"train.compile={str(compile_model).lower()}"]
    return Trainer(load_config(None, overrides), tokens, run)


def make_hf_step(setup: Setup, trainer, compile_model: bool):
    """One training step of transformers' GPT2LMHeadModel on the trainer's next batch."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=setup.n_layer, n_head=setup.n_head, n_embd=setup.n_embd,
                        n_positions=setup.block_size, vocab_size=VOCAB, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, activation_function="gelu_new")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(config).train()
    forward = torch.compile(model) if compile_model else model
    tcfg = trainer.tcfg
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": tcfg.weight_decay},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=tcfg.learning_rate, betas=(tcfg.beta1, tcfg.beta2), eps=tcfg.eps,
        fused=True)  # as our trainer, and as transformers' Trainer defaults to with torch >= 2.8
    cursor = [0]

    def step() -> float:
        (x, y), = trainer.stream.micro_batches(cursor[0], setup.batch, 1)
        cursor[0] += setup.batch
        logits = forward(input_ids=x).logits
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


def measure_setup(name: str, setup: Setup, tmp: Path, rounds: int, steps: int, compile_both: bool) -> dict:
    """Both models at one setup, in alternating rounds bracketed by GEMM peak measurements."""
    tokens = write_random_shards(tmp / name / "tokens")
    trainer = make_trainer(setup, tokens, tmp / name / "run", compile_model=False)
    hf_step, hf_params = make_hf_step(setup, trainer, False)
    variants = {"ours": trainer._train_step, HF: hf_step}
    if compile_both:
        variants["ours + torch.compile"] = make_trainer(setup, tokens, tmp / name / "run-c", True)._train_step
        variants[HF + " + torch.compile"] = make_hf_step(setup, trainer, True)[0]
    first_step = {label: seconds_per_step(step, 1) for label, step in variants.items()}  # warm-up, compilation
    times: dict[str, list[float]] = {label: [] for label in variants}
    peaks = [gemm_peak()]
    for _ in tqdm(range(rounds), desc=f"{name} rounds", unit="round"):
        for label, step in variants.items():
            times[label].append(seconds_per_step(step, steps))
        peaks.append(gemm_peak())  # load only ever lowers it: MFU uses the best of the run
    breakdown, top_ops = time_breakdown(trainer._train_step)
    gemm_seconds = step_gemm_seconds(trainer.model, setup.tokens_per_step)
    gemm_peak_now = gemm_peak()  # next to the shape timings: the ceiling is a same-moment ratio
    loader = loader_tokens_per_second(setup, trainer)

    flops_per_step = setup.tokens_per_step * trainer.model.flops_per_token()
    peak = max(peaks)
    rows = {}
    for label, samples in times.items():
        mfus = [flops_per_step / t / peak for t in samples]
        rows[label] = {"tokens_per_s": setup.tokens_per_step / statistics.median(samples),
                       "seconds_per_step": statistics.median(samples), "mfu": statistics.median(mfus),
                       "mfu_per_round": mfus, "first_step_seconds": first_step[label]}

    def speedup(ours: str, theirs: str) -> list[float]:  # same-round ratios
        return [hf / own for own, hf in zip(times[ours], times[theirs])]

    result = {
        "config": {**vars(setup), "vocab_size": VOCAB, "parameters_ours": trainer.model.num_params(),
                   "parameters_hf": hf_params, "flops_per_token": trainer.model.flops_per_token()},
        "gemm_flops_peak": peak,  # best sustained rate of back-to-back 2048^3 fp32 matmuls in the run
        "gemm_flops_around_rounds": peaks,
        "throughput": rows,
        # median of same-round ratios: a load spike hits both halves of a round alike
        "speedup_vs_hf": statistics.median(speedup("ours", HF)),
        "speedup_vs_hf_per_round": speedup("ours", HF),
        "mfu": rows["ours"]["mfu"],
        "gemm_seconds_per_step": gemm_seconds,
        # MFU if the step were its weight GEMMs only (attention, norms, softmax, optimiser free)
        "mfu_ceiling_gemm_only": flops_per_step / gemm_seconds / gemm_peak_now,
        "time_breakdown_ours": breakdown,
        "top_ops_ours": top_ops,
        "loader_tokens_per_s": loader,
        "loader_vs_trainer": loader / rows["ours"]["tokens_per_s"],
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
          "per round: " + ", ".join(f"{x:.2f}x" for x in r["speedup_vs_hf_per_round"]))
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
    logging.getLogger("training").setLevel(logging.ERROR)  # no tokenizer here: no bits per byte, as intended

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
    from webtext.fsio import atomic_write_text

    atomic_write_text(str(RESULT), json.dumps(result, indent=2) + "\n")
    print(f"-> {RESULT.relative_to(REPO)}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
