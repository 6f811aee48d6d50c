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
from training.cross_entropy import cross_entropy


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


# The paper's four sizes carry its names (Table 2: 117M, 345M, 762M, 1542M), but its shapes with
# the 50,257-token vocabulary have 124.4M, 354.8M, 774.0M and 1557.6M parameters, exactly as
# OpenAI's released weights (named 124M/355M/774M/1558M there: its gpt-2 README says the paper's
# counts were wrong).
PRESETS: dict[str, GPTConfig] = {
    "gpt2-117m": GPTConfig(n_layer=12, n_head=12, n_embd=768),
    "gpt2-345m": GPTConfig(n_layer=24, n_head=16, n_embd=1024),
    "gpt2-762m": GPTConfig(n_layer=36, n_head=20, n_embd=1280),
    "gpt2-1542m": GPTConfig(n_layer=48, n_head=25, n_embd=1600),
    "tiny": GPTConfig(n_layer=2, n_head=4, n_embd=128, block_size=128),  # tests, the demo
    "small-cpu": GPTConfig(n_layer=4, n_head=4, n_embd=256, block_size=256),  # `auto` on CPU
}

# Peak learning rate per preset (`train.learning_rate: auto`). The GPT-2 paper tuned one per size
# but did not publish them; these are GPT-3's (Brown et al. 2020, Table 2.1) for the nearest size:
# Small 125M, Medium 350M, Large 760M, XL 1.3B. The two CPU presets' rates are ours, measured on
# the demo corpus (docs/training.md).
PRESET_LEARNING_RATES: dict[str, float] = {
    "gpt2-117m": 6.0e-4,
    "gpt2-345m": 3.0e-4,
    "gpt2-762m": 2.5e-4,
    "gpt2-1542m": 2.0e-4,
    "tiny": 3.0e-3,
    "small-cpu": 1.0e-3,
}


def model_config_from(config: ModelConfig, vocab_size: int | None = None, preset: str | None = None) -> GPTConfig:
    """The preset (`preset`, else the one the config names) with the config's non-null overrides
    (and the tokenizer's vocab). `model.preset: auto` must be resolved first (training/auto.py)."""
    preset = preset or config.preset
    if preset not in PRESETS:
        raise ValueError(f"model.preset={preset!r} names no preset (resolve `auto` with training.auto first)")
    return replace(PRESETS[preset], **model_overrides(config, vocab_size))


def model_overrides(config: ModelConfig, vocab_size: int | None = None) -> dict:
    """The config's non-null shape settings (and the tokenizer's vocab): what replaces a preset's."""
    overrides = {key: value for key, value in config.model_dump().items() if key != "preset" and value is not None}
    if vocab_size is not None:
        overrides["vocab_size"] = vocab_size
    return overrides


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head = config.n_head
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v of all heads at once
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        B, T, C = x.shape  # batch, sequence length, embedding width (n_embd)
        q, k, v = self.c_attn(x).split(C, dim=2)  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=True)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):  # (B, T, C) -> (B, T, 4C) -> (B, T, C)
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):  # pre-LN residual sub-blocks, (B, T, C) throughout
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),  # token embeddings
            wpe=nn.Embedding(config.block_size, config.n_embd),  # position embeddings
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied input/output embeddings
        self.apply(self._init_weights)
        for name, parameter in self.named_parameters():
            if name.endswith("c_proj.weight"):  # residual projections: keep the sum's variance flat
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def hidden_states(self, idx):
        """(B, T) token ids -> (B, T, C) output of the final layer norm: everything but the
        output projection, so that evaluation can project only the positions it scores."""
        T = idx.size(1)
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than block_size={self.config.block_size}")
        pos = torch.arange(T, device=idx.device)  # (T,)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))  # (B, T, C)
        for block in self.transformer.h:
            x = block(x)
        return self.transformer.ln_f(x)  # (B, T, C)

    def forward(self, idx, targets=None):
        """(B, T) token ids -> ((B, T, vocab_size) logits, mean loss over `targets` or None);
        targets of -1 (padding) are not scored."""
        logits = self.lm_head(self.hidden_states(idx))  # (B, T, vocab_size)
        loss = None
        if targets is not None:
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
            logits = logits[:, -1, :].float()  # (B, vocab_size): the next token's
            if temperature == 0:
                next_id = logits.argmax(dim=-1, keepdim=True)  # (B, 1)
            else:
                logits = logits / temperature
                if top_k:
                    kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]  # (B, 1)
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                if top_p is not None and top_p < 1.0:
                    sorted_logits, order = torch.sort(logits, descending=True)
                    cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
                    drop = cumulative - sorted_logits.softmax(dim=-1) >= top_p  # mass before this token
                    logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
                probs = logits.softmax(dim=-1)
                next_id = torch.multinomial(probs, num_samples=1, generator=generator)  # (B, 1)
            idx = torch.cat((idx, next_id), dim=1)  # (B, T + 1)
        return idx
