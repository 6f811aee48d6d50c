"""`webtext eval`: perplexity and bits per byte on text or token shards, LAMBADA-style
last-word accuracy and CBT-style multiple-choice accuracy (the GPT-2 paper's zero-shot setups).

Bits per byte divide the summed negative log-likelihood (nats) by ln 2 times the number of
UTF-8 bytes the scored tokens decode to, so models with different tokenizers compare fairly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

log = logging.getLogger(__name__)

IGNORE = -1  # target id of positions that are context only
BLANK = "XXXXX"  # the CBT question's gap

FORMATS_HELP = """\
file formats:
  --text FILE       any UTF-8 text; scored as one document after <|endoftext|>, with a sliding
                    window (eval.stride) so every token sees up to block_size tokens of context.
  --lambada FILE    JSON Lines, one object per line: {"text": "... passage ending in the target word"}.
                    The last space-separated word is the target; it counts as correct when greedy
                    decoding from the rest of the passage yields exactly that word (the token after
                    it must not continue the word). Also reports the target-word perplexity.
  --cbt FILE        JSON Lines: {"context": "...", "question": "... XXXXX ...", "options": ["a", ...],
                    "answer": "a"}. Every option is put into the gap; the model picks the one whose
                    filled-in question is most probable after the context (the GPT-2 paper's method).
"""


# ---------------------------------------------------------------- scores


@dataclass
class Score:
    """Summed negative log-likelihood (nats) over `tokens` scored tokens that decode to `bytes` bytes."""

    nll: float = 0.0
    tokens: float = 0.0
    bytes: float = 0.0

    def summary(self) -> dict:
        loss = self.nll / self.tokens if self.tokens else float("nan")
        return {
            "loss": loss,
            "perplexity": math.exp(min(loss, 700.0)),
            "bits_per_byte": self.nll / (math.log(2) * self.bytes) if self.bytes else None,
            "tokens": int(self.tokens),
        }


def token_byte_lengths(tokenizer) -> torch.Tensor:
    """UTF-8 bytes per token id. `<|endoftext|>` counts as one byte: it stands for the
    document separator a plain-text concatenation would hold, not for its 13 characters."""
    lengths = torch.tensor([len(tokenizer.decode_bytes([i])) for i in range(tokenizer.vocab_size)], dtype=torch.int64)
    lengths[tokenizer.eot_id] = 1
    return lengths


def full_logits(model, x: torch.Tensor) -> torch.Tensor:
    """Logits at every position, in fp32."""
    logits, _ = model(x)
    return logits.float()


@torch.no_grad()
def score_batches(model, batches, device, byte_lengths: torch.Tensor | None = None, autocast=None) -> Score:
    """Sum NLL over (x, y) batches; positions whose target is IGNORE are context only."""
    score = Score()
    byte_lengths = byte_lengths.to(device) if byte_lengths is not None else None
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        with autocast or contextlib.nullcontext():
            logits = full_logits(model, x)
        nll = F.cross_entropy(logits.view(-1, logits.size(-1)), y.reshape(-1), ignore_index=IGNORE, reduction="sum")
        scored = y != IGNORE
        score.nll += nll.item()
        score.tokens += scored.sum().item()
        if byte_lengths is not None:
            score.bytes += byte_lengths[y[scored]].sum().item()
    return score


# ---------------------------------------------------------------- perplexity on text


def sliding_windows(ids: list[int], block_size: int, stride: int):
    """(x, y) rows covering `ids`: each target is scored exactly once, with the longest context
    the window allows; targets already scored by an earlier window are IGNORE. A stride beyond
    the block would skip targets, so it is capped at block_size."""
    stride = min(stride, block_size)
    n_targets = len(ids) - 1
    scored_until = 0  # targets [0, scored_until) are done
    begin = 0
    while scored_until < n_targets:
        end = min(begin + block_size, n_targets)
        x = ids[begin:end]
        y = ids[begin + 1:end + 1]
        y = [IGNORE if begin + i < scored_until else t for i, t in enumerate(y)]
        pad = block_size - len(x)
        yield torch.tensor(x + [0] * pad), torch.tensor(y + [IGNORE] * pad)
        scored_until = end
        begin = min(begin + stride, max(0, n_targets - block_size)) if end < n_targets else end


def _batched(rows, batch_size: int):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == batch_size:
            yield torch.stack([r[0] for r in batch]), torch.stack([r[1] for r in batch])
            batch = []
    if batch:
        yield torch.stack([r[0] for r in batch]), torch.stack([r[1] for r in batch])


def evaluate_text(model, tokenizer, text: str, device, cfg) -> dict:
    block_size = model.config.block_size
    ids = [tokenizer.eot_id] + tokenizer.encode(text)
    if cfg.max_tokens:
        ids = ids[:cfg.max_tokens + 1]
    if len(ids) < 2:
        raise ValueError("the text is empty: nothing to score")
    stride = cfg.stride or max(1, block_size // 2)
    rows = sliding_windows(ids, block_size, stride)
    batches = tqdm(_batched(rows, cfg.batch_size), desc="scoring text", unit="batch")
    score = score_batches(model, batches, device, token_byte_lengths(tokenizer))
    return score.summary()


def evaluate_shards(model, tokens_dir, split: str, device, cfg, byte_lengths=None) -> dict:
    from training.data import TokenWindows, sequential_batches

    windows = TokenWindows(tokens_dir, split, model.config.block_size)
    max_windows = -(-cfg.max_tokens // model.config.block_size) if cfg.max_tokens else 0
    total = min(max_windows, windows.num_windows) if max_windows else windows.num_windows
    batches = tqdm(sequential_batches(windows, cfg.batch_size, max_windows), total=-(-total // cfg.batch_size),
                   desc=f"scoring {split}", unit="batch")
    return score_batches(model, batches, device, byte_lengths).summary()


# ---------------------------------------------------------------- continuations (LAMBADA, CBT)


@torch.no_grad()
def score_continuations(model, pairs: list[tuple[list[int], list[int]]], device, batch_size: int, desc: str = ""):
    """For each (context ids, continuation ids): the continuation's summed NLL, whether greedy
    decoding reproduces it exactly, and the greedy token that would follow it."""
    block_size = model.config.block_size
    results = []
    for start in tqdm(range(0, len(pairs), batch_size), desc=desc, unit="batch", disable=not desc):
        chunk = pairs[start:start + batch_size]
        inputs = []
        for ctx, cont in chunk:
            if not cont or len(cont) + 1 > block_size:
                raise ValueError(f"continuation of {len(cont)} tokens does not fit block_size {block_size}")
            inputs.append((ctx + cont)[-block_size:])
        width = max(len(seq) for seq in inputs)
        x = torch.zeros((len(inputs), width), dtype=torch.long)
        for row, seq in enumerate(inputs):
            x[row, :len(seq)] = torch.tensor(seq)  # right padding: causal attention never sees it
        logprobs = F.log_softmax(full_logits(model, x.to(device)), dim=-1).cpu()
        for row, ((_, cont), seq) in enumerate(zip(chunk, inputs)):
            k, n = len(cont), len(seq)
            predicting = logprobs[row, n - k - 1:n - 1]  # positions whose next token is in `cont`
            target = torch.tensor(cont)
            nll = -predicting.gather(1, target[:, None]).sum().item()
            greedy = bool((predicting.argmax(-1) == target).all())
            results.append((nll, greedy, int(logprobs[row, n - 1].argmax())))
    return results


def read_jsonl(path: str | Path, required: dict[str, type]) -> list[dict]:
    """Objects of a JSON Lines file with the `required` keys and types; errors name file:line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text: {exc}") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        for key, kind in required.items():
            if key not in record:
                raise ValueError(f"{path}:{number}: missing key {key!r}")
            if not isinstance(record[key], kind):
                raise ValueError(f"{path}:{number}: {key!r} must be {kind.__name__}, got {type(record[key]).__name__}")
        record["_line"] = number
        records.append(record)
    if not records:
        raise ValueError(f"{path}: no examples")
    return records


def split_last_word(text: str) -> tuple[str, str]:
    """('context', ' target') for a LAMBADA passage; the target keeps its leading space."""
    text = text.rstrip()
    cut = text.rfind(" ")
    if cut <= 0:
        raise ValueError("needs at least two space-separated words")
    return text[:cut], text[cut:]


def evaluate_lambada(model, tokenizer, path, device, cfg) -> dict:
    pairs = []
    for record in read_jsonl(path, {"text": str}):
        try:
            context, target = split_last_word(record["text"])
        except ValueError as exc:
            raise ValueError(f"{path}:{record['_line']}: 'text' {exc}") from None
        pairs.append(([tokenizer.eot_id] + tokenizer.encode(context), tokenizer.encode(target)))
    results = score_continuations(model, pairs, device, cfg.batch_size, desc="lambada")
    correct = 0
    for nll, greedy, next_id in results:
        follower = tokenizer.decode([next_id])
        word_ends = next_id == tokenizer.eot_id or not (follower[:1].isalnum() or follower[:1] in "'-")
        correct += greedy and word_ends
    total_nll = sum(r[0] for r in results)
    return {"accuracy": correct / len(results), "perplexity": math.exp(min(total_nll / len(results), 700.0)),
            "examples": len(results)}


def evaluate_cbt(model, tokenizer, path, device, cfg) -> dict:
    pairs, spans, answers = [], [], []
    for record in read_jsonl(path, {"context": str, "question": str, "options": list, "answer": str}):
        where = f"{path}:{record['_line']}"
        options = record["options"]
        if BLANK not in record["question"]:
            raise ValueError(f"{where}: 'question' has no {BLANK} gap")
        if len(options) < 2 or not all(isinstance(o, str) and o for o in options):
            raise ValueError(f"{where}: 'options' must be at least two non-empty strings")
        if record["answer"] not in options:
            raise ValueError(f"{where}: 'answer' {record['answer']!r} is not one of the options")
        context = record["context"]
        separator = "" if not context or context[-1].isspace() else " "
        ctx = [tokenizer.eot_id] + tokenizer.encode(context)
        spans.append((len(pairs), len(options)))
        for option in options:
            pairs.append((ctx, tokenizer.encode(separator + record["question"].replace(BLANK, option))))
        answers.append(options.index(record["answer"]))
    results = score_continuations(model, pairs, device, cfg.batch_size, desc="cbt")
    correct = 0
    for (first, count), answer in zip(spans, answers):
        nlls = [results[first + i][0] for i in range(count)]
        correct += min(range(count), key=nlls.__getitem__) == answer
    return {"accuracy": correct / len(answers), "examples": len(answers)}


# ---------------------------------------------------------------- CLI


def add_cli(subparsers, common) -> None:
    import argparse

    p = subparsers.add_parser(
        "eval", parents=[common], help="perplexity, bits per byte, LAMBADA / CBT accuracy of a checkpoint",
        description="Evaluate a GPT-2 checkpoint zero-shot. Give any of --text, --shards, --lambada, --cbt.",
        epilog=FORMATS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", required=True, metavar="RUNDIR_OR_FILE",
                   help="a checkpoint file, or a run directory (its newest checkpoint)")
    p.add_argument("--text", metavar="FILE", help="UTF-8 text file: perplexity and bits per byte")
    p.add_argument("--shards", metavar="TOKENS", help="token-shard directory: perplexity and bits per byte")
    p.add_argument("--split", help="split of --shards (default: eval.split)")
    p.add_argument("--lambada", metavar="FILE.jsonl", help="LAMBADA-style last-word accuracy")
    p.add_argument("--cbt", metavar="FILE.jsonl", help="CBT-style multiple-choice accuracy")
    p.add_argument("--tokenizer", metavar="DIR", help="tokenizer (default: the one recorded in the checkpoint)")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.set_defaults(func=run_cli)


def load_for_inference(checkpoint, tokenizer_dir, device_name: str):
    """The model (eval mode, on its device), its tokenizer (or None) and the device."""
    from training.checkpoint import load_model
    from training.tokenizer import load_tokenizer
    from training.train import resolve_device

    device = resolve_device(device_name)
    model, ckpt = load_model(checkpoint)
    model.to(device).eval()
    tokenizer_dir = tokenizer_dir or ckpt.get("tokenizer_dir")
    tokenizer = load_tokenizer(tokenizer_dir) if tokenizer_dir else None
    return model, tokenizer, device


def run_cli(args, cfg) -> int:
    from core.fsio import atomic_write_text

    ecfg = cfg.eval
    if not (args.text or args.shards or args.lambada or args.cbt):
        raise ValueError("nothing to evaluate: give --text, --shards, --lambada and/or --cbt")
    model, tokenizer, device = load_for_inference(args.checkpoint, args.tokenizer, ecfg.device)
    if tokenizer is None and (args.text or args.lambada or args.cbt):
        raise ValueError(f"{args.checkpoint} records no tokenizer: pass --tokenizer DIR")
    results: dict[str, dict] = {}
    if args.text:
        text = Path(args.text).read_bytes().decode("utf-8", "replace")
        results["text"] = evaluate_text(model, tokenizer, text, device, ecfg)
    if args.shards:
        lengths = token_byte_lengths(tokenizer) if tokenizer else None
        results["shards"] = evaluate_shards(model, args.shards, args.split or ecfg.split, device, ecfg, lengths)
    if args.lambada:
        results["lambada"] = evaluate_lambada(model, tokenizer, args.lambada, device, ecfg)
    if args.cbt:
        results["cbt"] = evaluate_cbt(model, tokenizer, args.cbt, device, ecfg)
    for name, values in results.items():
        shown = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
        print(f"{name:8s} {shown}")
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    return 0
