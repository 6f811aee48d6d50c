"""Zero-shot evaluation throughput: our sliding-window scoring (`webtext eval --text/--suite`)
against the same evaluation through transformers' GPT2LMHeadModel loaded from the exported model.

    .venv/bin/python -m bench.bench_eval [--setups toy,gpt2-117m] [--rounds 5] [--windows 8]

Each setup builds a seeded random GPT-2 (vocab 50257), exports it with `export_hf` and loads the
export with `GPT2LMHeadModel.from_pretrained`, both fp32 on CPU with the same threads. Both score
the same token ids with the same windows (window = block, stride = block / 2, every token scored
once with up to a block of context) and the same batches; ours runs `training.evaluate.score_ids`,
transformers computes its logits for every position and the summed cross-entropy of the scored
ones (as its perplexity guide does, batched). The two sums must agree (rel 1e-4). Rounds alternate
between the two so that load on a shared machine hits them alike; the speedup is the median of the
per-round ratios. Target: ours / transformers >= 1.0 in tokens per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
RESULT = REPO / "bench" / "results" / "eval.json"
TARGETS = {"speedup_vs_transformers": 1.0}
VOCAB = 50257


@dataclass(frozen=True)
class Setup:
    n_layer: int
    n_head: int
    n_embd: int
    block_size: int
    batch: int  # windows per forward pass


SETUPS = {
    "toy": Setup(6, 6, 384, 256, batch=8),  # the trainer bench's toy shape: the 50257-wide logits dominate
    "gpt2-117m": Setup(12, 12, 768, 1024, batch=2),  # the paper's smallest GPT-2, its 1024-token window
}


def build(setup: Setup, directory: Path):
    """(our GPT, transformers' GPT2LMHeadModel loaded from its export), same seeded weights."""
    from transformers import GPT2LMHeadModel

    from training.checkpoint import save_model_checkpoint
    from training.config import TokenizerConfig
    from training.hf import export_hf
    from training.model import GPT, GPTConfig
    from training.tokenizer import train_tokenizer

    torch.manual_seed(0)
    model = GPT(GPTConfig(setup.n_layer, setup.n_head, setup.n_embd, VOCAB, setup.block_size)).eval()
    tokenizer = train_tokenizer(iter(["only the export needs a tokenizer"] * 10),
                                TokenizerConfig(vocab_size=260, min_frequency=1))
    tokenizer.save(directory / "tokenizer")
    save_model_checkpoint(directory / "ckpt.pt", model, {"tokenizer_dir": str(directory / "tokenizer")})
    export_hf(directory / "ckpt.pt", directory / "hf")
    hf = GPT2LMHeadModel.from_pretrained(directory / "hf", local_files_only=True).eval()
    return model, hf


@torch.no_grad()
def transformers_nll(hf, ids: list[int], window: int, stride: int, batch_size: int) -> tuple[float, int]:
    """The same windows and batches through transformers: full logits, cross-entropy of the scored targets."""
    from training.evaluate import IGNORE, batched, sliding_windows

    nll, tokens = 0.0, 0
    for x, y in batched(sliding_windows(ids, window, stride), batch_size):
        logits = hf(x).logits
        nll += F.cross_entropy(logits.view(-1, logits.size(-1)).float(), y.view(-1), ignore_index=IGNORE,
                               reduction="sum").item()
        tokens += int((y != IGNORE).sum())
    return nll, tokens


def measure(name: str, setup: Setup, rounds: int, windows: int) -> dict:
    from training.config import EvalConfig
    from training.evaluate import score_ids

    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        model, hf = build(setup, Path(tmp))
    stride = setup.block_size // 2
    n_tokens = setup.block_size + (windows - 1) * stride  # `windows` windows of the sliding evaluation
    ids = torch.randint(0, VOCAB, (n_tokens + 1,), generator=torch.Generator().manual_seed(1)).tolist()
    config = EvalConfig(batch_size=setup.batch, context=0, stride=stride)

    def ours():
        score = score_ids(model, ids, "cpu", config)
        return score.nll, int(score.tokens)

    def theirs():
        return transformers_nll(hf, ids, setup.block_size, stride, setup.batch)

    (our_nll, tokens), (their_nll, their_tokens) = ours(), theirs()  # warm-up, and the check
    if tokens != their_tokens or abs(our_nll - their_nll) > 1e-4 * abs(their_nll):
        raise AssertionError(f"{name}: ours {our_nll} over {tokens} tokens, "
                             f"transformers {their_nll} over {their_tokens}")
    seconds = {"ours": [], "transformers": []}
    for _ in range(rounds):
        for label, run in (("ours", ours), ("transformers", theirs)):
            start = time.perf_counter()
            run()
            seconds[label].append(time.perf_counter() - start)
    ratios = [t / o for o, t in zip(seconds["ours"], seconds["transformers"])]
    speedup = statistics.median(ratios)
    return {
        "setup": setup.__dict__, "windows": windows, "stride": stride, "scored_tokens": tokens,
        "nll_relative_difference": abs(our_nll - their_nll) / abs(their_nll),
        "ours_tokens_per_s": tokens / statistics.median(seconds["ours"]),
        "transformers_tokens_per_s": tokens / statistics.median(seconds["transformers"]),
        "speedup_per_round": ratios, "speedup": speedup,
        "meets_target": speedup >= TARGETS["speedup_vs_transformers"],
    }


def main(argv: list[str] | None = None) -> dict:
    import transformers

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setups", default="toy", help=f"comma-separated, of: {', '.join(SETUPS)}")
    parser.add_argument("--rounds", type=int, default=5, help="alternating measurement rounds per setup")
    parser.add_argument("--windows", type=int, default=8, help="sliding windows scored per round")
    args = parser.parse_args(argv or [])  # `python -m bench` calls main() with its own argv
    names = [n for n in args.setups.split(",") if n]
    unknown = set(names) - set(SETUPS)
    if unknown or not names:
        parser.error(f"unknown setup(s) {sorted(unknown)}; choose from {', '.join(SETUPS)}")
    results = {name: measure(name, SETUPS[name], args.rounds, args.windows) for name in names}
    result = {"device": "cpu", "dtype": "float32", "threads": torch.get_num_threads(), "torch": torch.__version__,
              "transformers": transformers.__version__, "rounds": args.rounds, "targets": TARGETS,
              "setups": results}
    for name, r in results.items():
        print(f"{name:10s} ours {r['ours_tokens_per_s']:8.0f} tok/s  "
              f"transformers {r['transformers_tokens_per_s']:8.0f} tok/s  speedup {r['speedup']:.2f}x "
              f"(target >= {TARGETS['speedup_vs_transformers']}x: "
              f"{'met' if r['meets_target'] else 'NOT met'})  nll rel diff {r['nll_relative_difference']:.1e}")
    from core.fsio import atomic_write_text

    atomic_write_text(str(RESULT), json.dumps(result, indent=2) + "\n")
    print(f"-> {RESULT.relative_to(REPO)}")
    return result


if __name__ == "__main__":
    main(__import__("sys").argv[1:])
