"""Perplexity and bits per byte on text or token shards, LAMBADA-style last-word accuracy and
CBT-style multiple-choice accuracy (the GPT-2 paper's zero-shot setups; `webtext eval`).

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

from training.config import EvalConfig
from training.data import TokenWindows, sequential_batches

log = logging.getLogger(__name__)

IGNORE = -1  # target id of positions that are context only
BLANK = "XXXXX"  # the CBT question's gap


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
        y = [IGNORE if begin + i < scored_until else target for i, target in enumerate(y)]
        pad = block_size - len(x)
        yield torch.tensor(x + [0] * pad), torch.tensor(y + [IGNORE] * pad)
        scored_until = end
        begin = min(begin + stride, max(0, n_targets - block_size)) if end < n_targets else end


def _batched(rows, batch_size: int):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == batch_size:
            yield torch.stack([x for x, _ in batch]), torch.stack([y for _, y in batch])
            batch = []
    if batch:
        yield torch.stack([x for x, _ in batch]), torch.stack([y for _, y in batch])


def evaluate_text(model, tokenizer, text: str, device, config: EvalConfig) -> dict:
    block_size = model.config.block_size
    ids = [tokenizer.eot_id] + tokenizer.encode(text)
    if config.max_tokens:
        ids = ids[:config.max_tokens + 1]
    if len(ids) < 2:
        raise ValueError("the text is empty: nothing to score")
    stride = config.stride or max(1, block_size // 2)
    rows = sliding_windows(ids, block_size, stride)
    batches = tqdm(_batched(rows, config.batch_size), desc="scoring text", unit="batch")
    score = score_batches(model, batches, device, token_byte_lengths(tokenizer))
    return score.summary()


def evaluate_shards(model, tokens_dir, split: str, device, config: EvalConfig, byte_lengths=None) -> dict:
    windows = TokenWindows(tokens_dir, split, model.config.block_size)
    max_windows = -(-config.max_tokens // model.config.block_size) if config.max_tokens else 0
    total = min(max_windows, windows.num_windows) if max_windows else windows.num_windows
    batches = tqdm(sequential_batches(windows, config.batch_size, max_windows), total=-(-total // config.batch_size),
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
        for context, continuation in chunk:
            if not continuation or len(continuation) + 1 > block_size:
                raise ValueError(f"continuation of {len(continuation)} tokens does not fit block_size {block_size}")
            inputs.append((context + continuation)[-block_size:])
        width = max(len(sequence) for sequence in inputs)
        x = torch.zeros((len(inputs), width), dtype=torch.long)  # (B, T)
        for row, sequence in enumerate(inputs):
            x[row, :len(sequence)] = torch.tensor(sequence)  # right padding: causal attention never sees it
        log_probs = F.log_softmax(full_logits(model, x.to(device)), dim=-1).cpu()  # (B, T, vocab_size)
        for row, ((_, continuation), sequence) in enumerate(zip(chunk, inputs)):
            k, n = len(continuation), len(sequence)
            predicting = log_probs[row, n - k - 1:n - 1]  # positions whose next token is in `continuation`
            target = torch.tensor(continuation)
            nll = -predicting.gather(1, target[:, None]).sum().item()
            greedy = bool((predicting.argmax(-1) == target).all())
            results.append((nll, greedy, int(log_probs[row, n - 1].argmax())))
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


def evaluate_lambada(model, tokenizer, path, device, config: EvalConfig) -> dict:
    pairs = []
    for record in read_jsonl(path, {"text": str}):
        try:
            context, target = split_last_word(record["text"])
        except ValueError as exc:
            raise ValueError(f"{path}:{record['_line']}: 'text' {exc}") from None
        pairs.append(([tokenizer.eot_id] + tokenizer.encode(context), tokenizer.encode(target)))
    results = score_continuations(model, pairs, device, config.batch_size, desc="lambada")
    correct = 0
    for nll, greedy, next_id in results:
        follower = tokenizer.decode([next_id])
        word_ends = next_id == tokenizer.eot_id or not (follower[:1].isalnum() or follower[:1] in "'-")
        correct += greedy and word_ends
    total_nll = sum(nll for nll, _, _ in results)
    return {"accuracy": correct / len(results), "perplexity": math.exp(min(total_nll / len(results), 700.0)),
            "examples": len(results)}


def evaluate_cbt(model, tokenizer, path, device, config: EvalConfig) -> dict:
    pairs, spans, answers = [], [], []
    for record in read_jsonl(path, {"context": str, "question": str, "options": list, "answer": str}):
        where = f"{path}:{record['_line']}"
        options = record["options"]
        if BLANK not in record["question"]:
            raise ValueError(f"{where}: 'question' has no {BLANK} gap")
        if len(options) < 2 or not all(isinstance(option, str) and option for option in options):
            raise ValueError(f"{where}: 'options' must be at least two non-empty strings")
        if record["answer"] not in options:
            raise ValueError(f"{where}: 'answer' {record['answer']!r} is not one of the options")
        context = record["context"]
        separator = "" if not context or context[-1].isspace() else " "
        context_ids = [tokenizer.eot_id] + tokenizer.encode(context)
        spans.append((len(pairs), len(options)))
        for option in options:
            pairs.append((context_ids, tokenizer.encode(separator + record["question"].replace(BLANK, option))))
        answers.append(options.index(record["answer"]))
    results = score_continuations(model, pairs, device, config.batch_size, desc="cbt")
    correct = 0
    for (first, count), answer in zip(spans, answers):
        nlls = [results[first + i][0] for i in range(count)]
        correct += min(range(count), key=nlls.__getitem__) == answer
    return {"accuracy": correct / len(answers), "examples": len(answers)}
