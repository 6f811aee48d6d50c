"""GPT-2 (Radford et al., 2019) in one screen.

As the paper describes it: GPT-1's decoder-only transformer with learned position embeddings,
layer norm moved to the input of each sub-block (pre-LN) plus a final layer norm, GELU (tanh
approximation) MLPs of width 4*d, biases everywhere, token embeddings tied to the output
projection, and N(0, 0.02) init with residual projections scaled by 1/sqrt(2 * n_layer).
Module names follow transformers' GPT2LMHeadModel so weights map one to one (see hf.py;
its Conv1D stores the transpose of our nn.Linear weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from training.config import ModelConfig


@dataclass
class GPTConfig:
    n_layer: int
    n_head: int
    n_embd: int
    vocab_size: int = 50257
    block_size: int = 1024
    dropout: float = 0.0
    bias: bool = True
    layer_norm_epsilon: float = 1e-5

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")


PRESETS: dict[str, GPTConfig] = {
    "gpt2-117m": GPTConfig(n_layer=12, n_head=12, n_embd=768),  # the paper's sizes
    "gpt2-345m": GPTConfig(n_layer=24, n_head=16, n_embd=1024),
    "gpt2-762m": GPTConfig(n_layer=36, n_head=20, n_embd=1280),
    "gpt2-1542m": GPTConfig(n_layer=48, n_head=25, n_embd=1600),
    "tiny": GPTConfig(n_layer=2, n_head=4, n_embd=128, block_size=128),  # tests, CPU demo
    "small-cpu": GPTConfig(n_layer=4, n_head=4, n_embd=256, block_size=256),
}


def model_config_from(cfg: ModelConfig, vocab_size: int | None = None) -> GPTConfig:
    """The preset named in the config, with its non-null overrides (and the tokenizer's vocab)."""
    overrides = {k: v for k, v in cfg.model_dump().items() if k != "preset" and v is not None}
    if vocab_size is not None:
        overrides["vocab_size"] = vocab_size
    return replace(PRESETS[cfg.preset], **overrides)


class FusedCrossEntropy(torch.autograd.Function):
    """Mean token cross-entropy whose backward reuses the forward's exp buffer.

    `F.cross_entropy` over a 50257-way vocabulary writes four batch x vocab buffers per step
    (logits, log-softmax, a zero-filled NLL gradient, the log-softmax gradient) and runs exp over
    them twice. Here the forward keeps exp(logits - max) and its row sums, and the backward turns
    that buffer in place into the gradient, softmax - one_hot: one buffer and one exp pass fewer,
    less memory traffic and fewer fresh pages. Math in fp32 whatever the logits' dtype (bf16 under
    autocast); targets equal to `ignore_index` add nothing to loss or gradient.
    """

    @staticmethod
    def forward(ctx, logits, targets, ignore_index: int):
        valid = targets != ignore_index
        safe_targets = targets.masked_fill(~valid, 0).unsqueeze(1)
        logits32 = logits.float()
        row_max = logits32.amax(dim=1, keepdim=True)
        exp = logits32.sub_(row_max) if logits32 is not logits else logits32 - row_max  # own copy: in place
        target_logit = exp.gather(1, safe_targets).squeeze(1)  # shifted by row_max, like the lse below
        exp.exp_()
        row_sum = exp.sum(dim=1, keepdim=True)
        count = valid.sum()
        loss = ((row_sum.squeeze(1).log() - target_logit) * valid).sum() / count  # 0/0 = nan if none count
        ctx.save_for_backward(exp, row_sum, safe_targets, valid, count)
        ctx.logits_dtype = logits.dtype
        ctx.consumed = False
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        if ctx.consumed:  # the saved buffer became the gradient the first time
            raise RuntimeError("FusedCrossEntropy's backward reuses its saved buffer and can run only once "
                               "(no retain_graph=True second pass)")
        ctx.consumed = True
        exp, row_sum, safe_targets, valid, count = ctx.saved_tensors
        row_scale = (grad_loss / count * valid).unsqueeze(1)
        grad = exp.mul_(row_scale / row_sum)  # softmax * scale
        grad.scatter_add_(1, safe_targets, -row_scale)  # minus one_hot * scale
        return grad.to(ctx.logits_dtype), None, None


def cross_entropy(logits, targets, ignore_index: int = -1):
    """Mean cross-entropy of (N, V) logits against (N,) targets, skipping `ignore_index`."""
    return FusedCrossEntropy.apply(logits, targets, ignore_index)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True)
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C)))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied input/output embeddings
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # residual projections: keep the sum's variance flat
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx, targets=None):
        T = idx.size(1)
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than block_size={self.config.block_size}")
        pos = torch.arange(T, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        loss = None
        if targets is not None:  # targets of -1 are ignored (padding)
            loss = cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters counted once (the tied embedding too); `non_embedding` leaves out the
        token and position embeddings, as in Kaplan et al.'s scaling laws."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wte.weight.numel() + self.transformer.wpe.weight.numel()
        return n

    def flops_per_token(self) -> int:
        """Training FLOPs per token (forward + backward), PaLM appendix B: 6N + 12*L*d*T, where
        N counts the tied embedding once because the output projection multiplies by it."""
        c = self.config
        n = self.num_params(non_embedding=True) + self.transformer.wte.weight.numel()
        return 6 * n + 12 * c.n_layer * c.n_embd * c.block_size

    def param_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: weight decay on matrices (dim >= 2) only, not on biases and norms."""
        params = list(self.parameters())  # each tied tensor once
        return [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None, generator=None):
        """Append `max_new_tokens` sampled tokens to each row of `idx` (B, T). temperature 0 is
        greedy; top_k keeps the k likeliest tokens, top_p the smallest set with mass >= p."""
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.config.block_size:])
            logits = logits[:, -1, :].float()
            if temperature == 0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                if top_p is not None and top_p < 1.0:
                    sorted_logits, order = torch.sort(logits, descending=True)
                    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
                    drop = cum - sorted_logits.softmax(dim=-1) >= top_p  # mass before this token
                    logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
                probs = logits.softmax(dim=-1)
                next_id = torch.multinomial(probs, num_samples=1, generator=generator)
            idx = torch.cat((idx, next_id), dim=1)
        return idx
