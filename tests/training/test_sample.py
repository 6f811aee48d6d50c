"""Sampling from a trained checkpoint: seeded determinism, top-k / top-p keep only the tokens
they should, the CLI."""

import pytest
import torch

from training.checkpoint import load_model
from training.sample import generate_samples
from training.tokenizer import load_tokenizer
from webtext.cli import main

PROMPT = "The old man walked to"


@pytest.fixture(scope="module")
def loaded(trained_run):
    model, ckpt = load_model(trained_run)
    return model, load_tokenizer(ckpt["tokenizer_dir"])


def first_token_distribution(model, tokenizer, temperature):
    ids = torch.tensor([[tokenizer.eot_id] + tokenizer.encode(PROMPT)])
    with torch.no_grad():
        logits, _ = model(ids)
    return torch.softmax(logits[0, -1] / temperature, dim=-1)


def sampled_first_tokens(model, tokenizer, **kwargs):
    samples = generate_samples(model, tokenizer, PROMPT, "cpu", max_tokens=1, num_samples=300, seed=3, **kwargs)
    return {tokenizer.encode(s)[0] for s in samples}  # single tokens re-encode to themselves


def test_same_seed_same_samples_other_seed_other_samples(loaded):
    model, tokenizer = loaded
    a = generate_samples(model, tokenizer, PROMPT, "cpu", 24, num_samples=3, temperature=1.5, top_k=0, seed=7)
    b = generate_samples(model, tokenizer, PROMPT, "cpu", 24, num_samples=3, temperature=1.5, top_k=0, seed=7)
    c = generate_samples(model, tokenizer, PROMPT, "cpu", 24, num_samples=3, temperature=1.5, top_k=0, seed=8)
    assert a == b and a != c
    assert len(set(a)) > 1  # the rows of one call are independent samples


def test_top_k_one_is_greedy_and_greedy_follows_the_grammar(loaded):
    model, tokenizer = loaded
    greedy = generate_samples(model, tokenizer, PROMPT, "cpu", 8, temperature=0)
    assert generate_samples(model, tokenizer, PROMPT, "cpu", 8, top_k=1, seed=1) == greedy
    assert greedy[0].startswith(" the ")  # "walked to" is followed by an object: "the ..."


def test_top_k_samples_only_the_k_likeliest(loaded):
    model, tokenizer = loaded
    probs = first_token_distribution(model, tokenizer, temperature=3.0)
    top3 = set(torch.topk(probs, 3).indices.tolist())
    seen = sampled_first_tokens(model, tokenizer, temperature=3.0, top_k=3)
    assert seen <= top3 and len(seen) >= 2


def test_top_p_samples_only_the_nucleus(loaded):
    model, tokenizer = loaded
    probs = first_token_distribution(model, tokenizer, temperature=3.0)
    ordered = torch.sort(probs, descending=True)
    cumulative = ordered.values.cumsum(0)
    nucleus = set(ordered.indices[: int((cumulative < 0.5).sum()) + 1].tolist())
    seen = sampled_first_tokens(model, tokenizer, temperature=3.0, top_k=0, top_p=0.5)
    assert seen <= nucleus and len(seen) >= min(2, len(nucleus))
    assert sampled_first_tokens(model, tokenizer, temperature=3.0, top_k=0, top_p=1e-6) == {int(probs.argmax())}


def test_cli_prints_samples_and_rejects_bad_flags(trained_run, tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(trained_run), "--prompt", PROMPT, "--num-samples", "2",
                 "--max-tokens", "10", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert out.count("======== sample") == 2 and out.count(PROMPT) == 2
    assert main(["sample", "--checkpoint", str(trained_run), "--top-p", "1.5"]) == 1
    assert "top_p" in capsys.readouterr().err
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    assert main(["sample", "--checkpoint", str(broken)]) == 1
    assert "broken.pt: corrupted, truncated or not a torch checkpoint" in capsys.readouterr().err
