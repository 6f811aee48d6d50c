"""`webtext sample`: generate text from a trained checkpoint (top-k 40 by default, as the
GPT-2 paper's samples). A fixed seed gives the same samples on the same device."""

from __future__ import annotations

import torch


def generate_samples(model, tokenizer, prompt: str, device, max_tokens: int, num_samples: int = 1,
                     temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0) -> list[str]:
    """`num_samples` continuations of `prompt` (the prompt itself not included). An empty
    prompt starts from <|endoftext|>, i.e. an unconditional sample of a new document."""
    ids = [tokenizer.eot_id] + tokenizer.encode(prompt)
    ids = ids[-model.config.block_size:]
    generator = torch.Generator(device=device).manual_seed(seed)
    idx = torch.tensor([ids] * num_samples, dtype=torch.long, device=device)
    out = model.generate(idx, max_tokens, temperature=temperature, top_k=top_k or None,
                         top_p=top_p if top_p < 1.0 else None, generator=generator)
    return [tokenizer.decode(row[len(ids):].tolist()) for row in out]


def add_cli(subparsers, common) -> None:
    p = subparsers.add_parser(
        "sample", parents=[common], help="generate text from a checkpoint",
        description="Sample continuations of a prompt from a GPT-2 checkpoint. Defaults come from the "
                    "sample: section of pipelines.yaml; the flags override them.",
    )
    p.add_argument("--checkpoint", required=True, metavar="RUNDIR_OR_FILE",
                   help="a checkpoint file, or a run directory (its newest checkpoint)")
    p.add_argument("--prompt", default="", help="text to continue (default: empty = a new document)")
    p.add_argument("--max-tokens", type=int, help="new tokens per sample (sample.max_tokens)")
    p.add_argument("--num-samples", type=int, help="how many samples (sample.num_samples)")
    p.add_argument("--temperature", type=float, help="softmax temperature; 0 = greedy (sample.temperature)")
    p.add_argument("--top-k", type=int, help="keep the k likeliest tokens; 0 = off (sample.top_k, paper: 40)")
    p.add_argument("--top-p", type=float, help="nucleus sampling mass; 1 = off (sample.top_p)")
    p.add_argument("--seed", type=int, help="random seed (sample.seed)")
    p.add_argument("--tokenizer", metavar="DIR", help="tokenizer (default: the one recorded in the checkpoint)")
    p.set_defaults(func=run_cli)


def run_cli(args, cfg) -> int:
    from training.evaluate import load_for_inference

    scfg = cfg.sample.model_copy(update={k: v for k, v in {
        "max_tokens": args.max_tokens, "num_samples": args.num_samples, "temperature": args.temperature,
        "top_k": args.top_k, "top_p": args.top_p, "seed": args.seed}.items() if v is not None})
    type(scfg).model_validate(scfg.model_dump())  # flags obey the same bounds as the config
    model, tokenizer, device = load_for_inference(args.checkpoint, args.tokenizer, scfg.device)
    if tokenizer is None:
        raise ValueError(f"{args.checkpoint} records no tokenizer: pass --tokenizer DIR")
    samples = generate_samples(model, tokenizer, args.prompt, device, scfg.max_tokens, scfg.num_samples,
                               scfg.temperature, scfg.top_k, scfg.top_p, scfg.seed)
    for number, text in enumerate(samples, 1):
        print(f"======== sample {number} of {len(samples)} ========")
        print(args.prompt + text)
    return 0
