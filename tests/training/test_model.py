"""The GPT-2 model: sizes per preset, architecture details, training signal, sampling."""

import math
import typing

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from training.config import ModelConfig
from training.model import GPT, PRESETS, GPTConfig, model_config_from
from webtext.config import ConfigError, load_config

# GPT2LMHeadModel.num_parameters() of OpenAI's four released checkpoints (tied head counted once).
RELEASED_SIZES = {"gpt2-117m": 124_439_808, "gpt2-345m": 354_823_168,
                  "gpt2-762m": 774_030_080, "gpt2-1542m": 1_557_611_200}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny matrices: extra threads only add contention (10x slower on a busy 2-core box)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def small(**kw) -> GPTConfig:
    return GPTConfig(**{"n_layer": 2, "n_head": 2, "n_embd": 32, "vocab_size": 97, "block_size": 16, **kw})


@pytest.mark.parametrize("preset", list(PRESETS))
def test_parameter_counts_match_transformers(preset):
    c = PRESETS[preset]
    with torch.device("meta"):  # shapes only: the 1.5B model is never allocated
        ours = GPT(c)
        theirs = GPT2LMHeadModel(GPT2Config(n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd,
                                            vocab_size=c.vocab_size, n_positions=c.block_size))
    assert ours.num_params() == theirs.num_parameters()
    d, L, V, T = c.n_embd, c.n_layer, c.vocab_size, c.block_size
    per_layer = 12 * d * d + 13 * d  # qkv + proj + 2 MLP matrices, their biases, 2 layer norms
    assert ours.num_params() == V * d + T * d + L * per_layer + 2 * d
    assert ours.num_params(non_embedding=True) == L * per_layer + 2 * d
    if preset in RELEASED_SIZES:
        assert ours.num_params() == RELEASED_SIZES[preset]
    assert ours.flops_per_token() == 6 * (L * per_layer + 2 * d + V * d) + 12 * L * d * T


def test_forward_shapes_loss_and_ignored_targets():
    torch.manual_seed(0)
    model = GPT(small()).eval()
    idx = torch.randint(0, 97, (3, 16))
    logits, loss = model(idx)
    assert logits.shape == (3, 16, 97) and loss is None
    targets = torch.randint(0, 97, (3, 16))
    _, loss = model(idx, targets)
    assert loss.shape == () and abs(loss.item() - math.log(97)) < 0.5  # untrained: near uniform
    masked = targets.clone()
    masked[:, 8:] = -1
    _, partial = model(idx, masked)
    expected = torch.nn.functional.cross_entropy(logits[:, :8].reshape(-1, 97), targets[:, :8].reshape(-1))
    assert torch.allclose(partial, expected, atol=1e-6)
    with pytest.raises(ValueError, match="longer than block_size"):
        model(torch.zeros(1, 17, dtype=torch.long))


def test_attention_is_causal():
    torch.manual_seed(0)
    model = GPT(small()).eval()
    a = torch.randint(0, 97, (1, 16))
    b = a.clone()
    b[0, 10:] = (b[0, 10:] + 1) % 97
    la, lb = model(a)[0], model(b)[0]
    assert torch.allclose(la[0, :10], lb[0, :10], atol=1e-6) and not torch.allclose(la[0, 10:], lb[0, 10:])


def test_architecture_follows_the_paper():
    torch.manual_seed(0)
    c = GPTConfig(n_layer=8, n_head=4, n_embd=256, vocab_size=1000, block_size=64, dropout=0.1)
    model = GPT(c)
    assert model.lm_head.weight is model.transformer.wte.weight  # tied
    for block in model.transformer.h:
        assert block.attn.c_proj.weight.std().item() == pytest.approx(0.02 / math.sqrt(16), rel=0.05)
        assert block.attn.c_attn.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert block.attn.c_attn.bias.abs().sum() == 0 and block.ln_1.bias is not None
    assert model.transformer.wte.weight.std().item() == pytest.approx(0.02, rel=0.05)
    # pre-LN: layer norm at the input of each sub-block, the residual stream itself un-normalised
    block = model.eval().transformer.h[0]
    x = torch.randn(1, 5, 256) * 3
    h = x + block.attn(block.ln_1(x))
    assert torch.allclose(block(x), h + block.mlp(block.ln_2(h)), atol=1e-6)
    with torch.no_grad():
        assert torch.allclose(block.mlp.c_proj(torch.nn.functional.gelu(block.mlp.c_fc(x), approximate="tanh")),
                              block.mlp(x))
    no_bias = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, vocab_size=50, block_size=8, bias=False))
    assert all(not n.endswith(".bias") for n, _ in no_bias.named_parameters())
    with pytest.raises(ValueError, match="not divisible"):
        GPTConfig(n_layer=1, n_head=3, n_embd=32)


def test_dropout_only_in_training_mode():
    torch.manual_seed(0)
    model = GPT(small(dropout=0.5))
    idx = torch.randint(0, 97, (2, 16))
    model.train()
    assert not torch.allclose(model(idx)[0], model(idx)[0])
    model.eval()
    assert torch.allclose(model(idx)[0], model(idx)[0])


def test_param_groups_decay_matrices_only():
    model = GPT(small())
    decay, no_decay = model.param_groups(0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert sum(p.numel() for g in (decay, no_decay) for p in g["params"]) == model.num_params()


def test_model_config_from_presets_and_overrides():
    assert model_config_from(ModelConfig(preset="gpt2-117m")) == PRESETS["gpt2-117m"]
    assert model_config_from(ModelConfig(), preset="small-cpu") == PRESETS["small-cpu"]  # `auto`, resolved
    with pytest.raises(ValueError, match="resolve `auto`"):
        model_config_from(ModelConfig(preset="auto"))
    c = model_config_from(ModelConfig(preset="tiny", n_layer=3, dropout=0.1), vocab_size=4096)
    assert (c.n_layer, c.n_head, c.n_embd, c.block_size, c.dropout, c.vocab_size) == (3, 4, 128, 128, 0.1, 4096)
    with pytest.raises(ValueError, match="not divisible"):
        model_config_from(ModelConfig(preset="tiny", n_head=3))
    assert set(typing.get_args(ModelConfig.model_fields["preset"].annotation)) == set(PRESETS) | {"auto"}
    with pytest.raises(ConfigError, match="model.preset"):
        load_config(None, ["model.preset=gpt5"])
    with pytest.raises(ConfigError, match="model.n_layer"):
        load_config(None, ["model.n_layer=0"])


def test_a_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=64, vocab_size=64, block_size=32))
    idx = torch.randint(0, 64, (2, 33))
    x, y = idx[:, :-1], idx[:, 1:]
    opt = torch.optim.AdamW(model.param_groups(0.0), lr=3e-3)
    for step in range(300):
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if loss.item() < 0.1:
            break
    assert loss.item() < 0.1, f"loss {loss.item():.3f} after {step + 1} steps"


def test_generate_greedy_topk_topp_and_seeded_sampling():
    torch.manual_seed(0)
    model = GPT(small()).eval()
    prompt = torch.randint(0, 97, (2, 5))
    greedy = model.generate(prompt, 20, temperature=0)  # runs past block_size=16: context is cropped
    assert greedy.shape == (2, 25) and torch.equal(greedy[:, :5], prompt)
    step = model(greedy[:, -16 - 1:-1])[0][:, -1].argmax(-1)
    assert torch.equal(step, greedy[:, -1])
    assert torch.equal(model.generate(prompt, 20, top_k=1), greedy)
    assert torch.equal(model.generate(prompt, 20, top_p=1e-6), greedy)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    s1 = model.generate(prompt, 20, top_k=40, top_p=0.9, generator=g1)
    assert torch.equal(s1, model.generate(prompt, 20, top_k=40, top_p=0.9, generator=g2))
    assert not torch.equal(s1, greedy)
