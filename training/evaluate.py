"""Scoring machinery of `webtext eval` and the trainer's validation: summed negative
log-likelihood over token windows, sliding windows over a long text, and continuations
(a context followed by the tokens to score: LAMBADA, CBT). Perplexity and bits per byte on text
or token shards live here; the paper's protocols are in training/zero_shot/.

Bits per byte divide the summed negative log-likelihood (nats) by ln 2 times the number of
UTF-8 bytes the scored tokens decode to, so models with different tokenizers compare fairly.
Only the positions that are scored go through the output projection (vocab_size wide): with the
default half-window stride that halves its cost, the largest single matmul of a small GPT-2.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from tqdm import tqdm

from training.config import EvalConfig
from training.data import TokenWindows, sequential_batches
from training.model import GPT

log = logging.getLogger(__name__)

IGNORE = -1  # target id of positions that are context only


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


def logits_at(model, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """fp32 logits (N, vocab_size) at the (B, T) boolean `positions` of x, in row-major order.
    A wrapped model (torch.compile, DDP) runs whole; a plain GPT projects only those positions."""
    if isinstance(model, GPT):
        return model.lm_head(model.hidden_states(x)[positions]).float()
    logits, _ = model(x)
    return logits[positions].float()


@torch.no_grad()
def score_batches(model, batches, device, byte_lengths: torch.Tensor | None = None, autocast=None) -> Score:
    """Sum NLL over (x, y) batches; positions whose target is IGNORE are context only."""
    score = Score()
    byte_lengths = byte_lengths.to(device) if byte_lengths is not None else None
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        scored = y != IGNORE
        with autocast or contextlib.nullcontext():
            logits = logits_at(model, x, scored)
        score.nll += F.cross_entropy(logits, y[scored], reduction="sum").item()
        score.tokens += scored.sum().item()
        if byte_lengths is not None:
            score.bytes += byte_lengths[y[scored]].sum().item()
    return score


# ---------------------------------------------------------------- perplexity on text


def sliding_windows(ids: list[int], window: int, stride: int):
    """(x, y) rows of `window` tokens covering `ids`: each target is scored exactly once, with
    the longest context the window allows; targets already scored by an earlier window are
    IGNORE. A stride beyond the window would skip targets, so it is capped at the window. The
    last window ends at the last target (full length, as lm-evaluation-harness's rolling
    windows), and a text shorter than the window is padded (target IGNORE)."""
    stride = min(stride, window)
    n_targets = len(ids) - 1
    scored_until = 0  # targets [0, scored_until) are done
    begin = 0
    while scored_until < n_targets:
        end = min(begin + window, n_targets)
        x = ids[begin:end]
        y = ids[begin + 1:end + 1]
        y = [IGNORE if begin + i < scored_until else target for i, target in enumerate(y)]
        pad = window - len(x)
        yield torch.tensor(x + [0] * pad), torch.tensor(y + [IGNORE] * pad)
        scored_until = end
        begin = min(begin + stride, max(0, n_targets - window)) if end < n_targets else end


def batched(rows, batch_size: int):
    """(x, y) rows stacked into batches of `batch_size` (the last one may be smaller)."""
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == batch_size:
            yield torch.stack([x for x, _ in batch]), torch.stack([y for _, y in batch])
            batch = []
    if batch:
        yield torch.stack([x for x, _ in batch]), torch.stack([y for _, y in batch])


def window_and_stride(block_size: int, config: EvalConfig) -> tuple[int, int]:
    """The sliding window (eval.context, 0 = block_size) and its step (eval.stride, 0 = half the window)."""
    window = min(config.context or block_size, block_size)
    return window, config.stride or max(1, window // 2)


def score_ids(model, ids: list[int], device, config: EvalConfig, byte_lengths=None, desc: str = "") -> Score:
    """The summed NLL of ids[1:], each token given up to a window of preceding tokens."""
    if len(ids) < 2:
        raise ValueError("the text is empty: nothing to score")
    window, stride = window_and_stride(model.config.block_size, config)
    n_windows = 1 + max(0, -(-(len(ids) - 1 - window) // stride))
    batches = tqdm(batched(sliding_windows(ids, window, stride), config.batch_size),
                   total=-(-n_windows // config.batch_size), desc=desc, unit="batch", disable=not desc)
    return score_batches(model, batches, device, byte_lengths)


def evaluate_text(model, tokenizer, text: str, device, config: EvalConfig) -> dict:
    ids = [tokenizer.eot_id] + tokenizer.encode(text)
    if config.max_tokens:
        ids = ids[:config.max_tokens + 1]
    return score_ids(model, ids, device, config, token_byte_lengths(tokenizer), desc="scoring text").summary()


def evaluate_shards(model, tokens_dir, split: str, device, config: EvalConfig, byte_lengths=None) -> dict:
    windows = TokenWindows(tokens_dir, split, model.config.block_size)
    max_windows = -(-config.max_tokens // model.config.block_size) if config.max_tokens else 0
    total = min(max_windows, windows.num_windows) if max_windows else windows.num_windows
    batches = tqdm(sequential_batches(windows, config.batch_size, max_windows), total=-(-total // config.batch_size),
                   desc=f"scoring {split}", unit="batch")
    return score_batches(model, batches, device, byte_lengths).summary()


# ---------------------------------------------------------------- continuations (LAMBADA, CBT)


@dataclass
class ContinuationScore:
    """How a model scores one continuation after its context."""

    log_likelihoods: list[float]  # of each continuation token (nats)
    greedy: bool  # the argmax at every continuation position is the continuation's token
    next_id: int  # the argmax after the continuation
    first_choices: list[int]  # the likeliest ids for the continuation's first token, likeliest first

    @property
    def nll(self) -> float:
        return -sum(self.log_likelihoods)


def _right_padded(sequences: list[list[int]]) -> torch.Tensor:
    """(B, longest) ids; causal attention never looks at the padding after a sequence."""
    x = torch.zeros((len(sequences), max(len(sequence) for sequence in sequences)), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        x[row, :len(sequence)] = torch.tensor(sequence)
    return x


def _by_length(sequences: list[list[int]], batch_size: int):
    """Index batches, longest sequences first, so that a batch pads little."""
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


@torch.no_grad()
def score_continuations(model, pairs: list[tuple[list[int], list[int]]], device, batch_size: int,
                        first_choices: int = 1, desc: str = "") -> list[ContinuationScore]:
    """Each (context ids, continuation ids) pair scored in one forward pass over their last
    block_size tokens (the context is cut from the left when both do not fit)."""
    block_size = model.config.block_size
    inputs = []
    for context, continuation in pairs:
        if not continuation or len(continuation) + 1 > block_size:
            raise ValueError(f"a continuation of {len(continuation)} tokens does not fit the model's block_size "
                             f"{block_size} with a token of context")
        inputs.append((context + continuation)[-block_size:])
    results: list[ContinuationScore | None] = [None] * len(pairs)
    batches = list(_by_length(inputs, batch_size))
    for indices in tqdm(batches, desc=desc, unit="batch", disable=not desc):
        sequences = [inputs[i] for i in indices]
        x = _right_padded(sequences)
        positions = torch.zeros_like(x, dtype=torch.bool)
        for row, i in enumerate(indices):  # the positions predicting each continuation token, and the next one
            n, k = len(inputs[i]), len(pairs[i][1])
            positions[row, n - k - 1:n] = True
        log_probs = F.log_softmax(logits_at(model, x.to(device), positions.to(device)), dim=-1).cpu()
        offset = 0
        for i in indices:
            k = len(pairs[i][1])
            predicting, after = log_probs[offset:offset + k], log_probs[offset + k]
            offset += k + 1
            target = torch.tensor(pairs[i][1])
            results[i] = ContinuationScore(
                log_likelihoods=predicting.gather(1, target[:, None])[:, 0].tolist(),
                greedy=bool((predicting.argmax(-1) == target).all()),
                next_id=int(after.argmax()),
                first_choices=predicting[0].topk(min(first_choices, predicting.size(-1))).indices.tolist(),
            )
    return results


@torch.no_grad()
def next_token_argmax(model, sequences: list[list[int]], device, batch_size: int) -> list[int]:
    """The greedy next token after each sequence (each cut to its last block_size tokens)."""
    sequences = [sequence[-model.config.block_size:] for sequence in sequences]
    chosen = [0] * len(sequences)
    for indices in _by_length(sequences, batch_size):
        x = _right_padded([sequences[i] for i in indices])
        positions = torch.zeros_like(x, dtype=torch.bool)
        for row, i in enumerate(indices):
            positions[row, len(sequences[i]) - 1] = True
        for i, token in zip(indices, logits_at(model, x.to(device), positions.to(device)).argmax(-1).tolist()):
            chosen[i] = token
    return chosen
