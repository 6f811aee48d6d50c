"""Text generation from a trained model (`webtext sample`; top-k 40 by default, as the GPT-2
paper's samples). A fixed seed gives the same samples on the same device."""

from __future__ import annotations

import torch


def generate_samples(model, tokenizer, prompt: str, device, max_tokens: int, num_samples: int = 1,
                     temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> list[str]:
    """`num_samples` continuations of `prompt` (the prompt itself not included). An empty
    prompt starts from <|endoftext|>, i.e. an unconditional sample of a new document."""
    ids = [tokenizer.eot_id] + tokenizer.encode(prompt)
    ids = ids[-model.config.block_size:]
    generator = torch.Generator(device=device).manual_seed(seed)
    prompts = torch.tensor([ids] * num_samples, dtype=torch.long, device=device)  # (num_samples, T)
    generated = model.generate(prompts, max_tokens, temperature=temperature, top_k=top_k or None,
                               top_p=top_p if top_p < 1.0 else None, generator=generator)
    return [tokenizer.decode(row[len(ids):].tolist()) for row in generated]
