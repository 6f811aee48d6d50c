"""Subcommands of the training stage: `tokenizer train`, `tokenize`, `train`, `sample`, `eval`,
`export-hf` and `import-hf`.

Argument parsing, printing and exit codes live here; the library modules take arguments and
return data. This module is cheap to import: each command imports what it runs (torch among
it) only when it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
from pathlib import Path

EVAL_FORMATS_HELP = """\
file formats (docs/evaluation.md has the details):
  --text FILE       any UTF-8 text; scored as one document after <|endoftext|>, with a sliding
                    window (eval.context tokens, step eval.stride) so every token sees up to a
                    window of context.
  --lambada FILE    JSON Lines (*.jsonl), one object per line: {"text": "... passage ending in the
                    target word"}, or the official tokenised lambada_test_plain_text.txt (one passage
                    per line). The last word is the target; it counts as correct when greedy decoding
                    from the rest of the passage yields exactly that word (the token after it must not
                    continue the word). Also reports the accuracy with the paper's stop-word filter and
                    the target-word perplexity.
  --cbt FILE        JSON Lines (*.jsonl): {"context": "...", "question": "... XXXXX ...", "options":
                    ["a", ...], "answer": "a"}, or an official cbtest_*.txt file. Every option is put
                    into the gap; the model picks the one under which the option and the rest of the
                    sentence are most probable (the GPT-2 paper's method).
  --suite paper --data DIR
                    every benchmark file of the paper's Table 3 found under DIR (wiki.test.tokens in
                    wikitext-2*/ or wikitext-103*/, ptb.test.txt, news.en.heldout-00000-of-00050,
                    lambada_test.jsonl or lambada_test_plain_text.txt, cbtest_CN/NE_test_2500ex.txt,
                    enwik8, text8), scored by the paper's protocol; writes table3.md and table3.json
                    (our row beside the paper's GPT-2 of the same size) to --out.
"""


def register(subparsers, common) -> None:
    _add_tokenizer(subparsers, common)
    _add_tokenize(subparsers, common)
    _add_train(subparsers, common)
    _add_sample(subparsers, common)
    _add_eval(subparsers, common)
    _add_hf(subparsers, common)


# -- webtext tokenizer train ------------------------------------------------------------------
def _add_tokenizer(subparsers, common) -> None:
    parser = subparsers.add_parser("tokenizer", help="train a GPT-2 byte-level BPE tokenizer",
                                   description="Byte-level BPE tokenizer (GPT-2 layout).")
    actions = parser.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    train = actions.add_parser(
        "train", parents=[common], help="learn the BPE vocabulary from the train split of dataset shards",
        description="Learn a byte-level BPE vocabulary (tokenizer.vocab_size tokens, <|endoftext|> last) "
                    "from DIR/<tokenizer.train_split>/*.parquet and save tokenizer.json, encoder.json "
                    "and vocab.bpe to TOKDIR.",
    )
    train.add_argument("--shards", required=True, metavar="DIR",
                       help="dataset shards: a finished `webtext build` (with DIR/manifest.json)")
    train.add_argument("--out", required=True, metavar="TOKDIR", help="directory to write the tokenizer to")
    train.set_defaults(func=_tokenizer_train)


def _tokenizer_train(args, config) -> int:
    from tqdm import tqdm

    from training.tokenize import check_finished_dataset, iter_split_texts, split_files
    from training.tokenizer import train_tokenizer

    tokenizer_config = config.tokenizer
    check_finished_dataset(args.shards)
    files = split_files(args.shards, tokenizer_config.train_split)
    texts, total = iter_split_texts(files, tokenizer_config.train_max_documents)
    progress = tqdm(texts, total=total, unit="doc", desc="reading texts")
    tokenizer = train_tokenizer(progress, tokenizer_config, show_progress=True)
    progress.close()
    tokenizer.save(args.out)
    print(f"tokenizer: {tokenizer.vocab_size} tokens (<|endoftext|> = {tokenizer.eot_id}) from {progress.n} "
          f"documents of {args.shards}/{tokenizer_config.train_split} -> {args.out}  "
          f"sha256 {tokenizer.sha256()[:16]}")
    return 0


# -- webtext tokenize -------------------------------------------------------------------------
def _add_tokenize(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "tokenize", parents=[common], help="dataset shards -> token shards for training",
        description="Tokenize DIR/<split>/*.parquet (column `text`) into TOKENS/<split>/shard-NNNNN.bin "
                    "(little-endian uint16/uint32, <|endoftext|> after every document) with "
                    "TOKENS/manifest.json. Resumable: rerun the same command after an interruption.",
    )
    parser.add_argument("--shards", required=True, metavar="DIR",
                        help="dataset shards: a finished `webtext build` (with DIR/manifest.json); a local folder "
                             "or an s3:// or gs:// prefix")
    parser.add_argument("--tokenizer", required=True, metavar="TOKDIR",
                        help="tokenizer directory (tokenizer.json, or GPT-2's encoder.json + vocab.bpe)")
    parser.add_argument("--out", required=True, metavar="TOKENS",
                        help="output directory for token shards (a local folder, or an s3:// or gs:// prefix: "
                             "copy it to a local disk to train)")
    parser.set_defaults(func=_tokenize)


def _tokenize(args, config) -> int:
    from core.stats import format_counts_table
    from training.tokenize import MANIFEST, check_finished_dataset, stage_counts, tokenize_shards

    check_finished_dataset(args.shards)
    manifest = tokenize_shards(args.shards, args.tokenizer, args.out, config.tokenizer)
    print(format_counts_table({"tokenize": stage_counts(manifest)}))
    for split, split_state in manifest["splits"].items():
        print(f"{split:<6} {split_state['tokens']:>14,} tokens {split_state['documents']:>10,} documents "
              f"{len(split_state['shards']):>5} shards")
    print(f"{manifest['dtype']} token shards -> {args.out}/{MANIFEST}")
    return 0


# -- webtext train ----------------------------------------------------------------------------
def _add_train(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "train", parents=[common], help="train GPT-2 on token shards",
        description="Train GPT-2 on token shards written by `webtext tokenize`. Settings: the train: and "
                    "model: sections of pipelines.yaml (--set train.max_steps=1000 ...); their `auto` values "
                    "(the default preset, batch, steps, warmup and learning rate) are chosen for the device and "
                    "the train split, printed at start and kept by --resume. Multi-GPU/CPU: "
                    "launch with `torchrun --nproc_per_node=N -m webtext.cli train ...` (NCCL on CUDA, gloo "
                    "on CPU); only rank 0 writes logs and checkpoints, and one run at a time may write RUNDIR. "
                    "Ctrl-C (SIGINT) or SIGTERM finishes the current step, saves a checkpoint and exits with "
                    "status 130/143; a second Ctrl-C stops at once without saving (status 130). --resume "
                    "continues bit-exactly from the newest intact checkpoint (corrupted ones are moved aside "
                    "as *.corrupt); it refuses a changed model shape and applies changed train settings, "
                    "recording them in log.jsonl. On CPU under glibc it keeps "
                    "freed memory mapped and restarts itself once with malloc on huge pages "
                    "(GLIBC_TUNABLES=glibc.malloc.hugetlb=1); WEBTEXT_MALLOC_TUNING=0 turns that off.",
    )
    parser.add_argument("--tokens", required=True, metavar="DIR", help="token-shard directory (with manifest.json)")
    parser.add_argument("--out", required=True, metavar="RUNDIR",
                        help="run directory: checkpoints ckpt-*.pt, log.jsonl, loss.png")
    parser.add_argument("--resume", action="store_true", help="continue from the newest intact checkpoint in RUNDIR")
    parser.add_argument("--until-step", type=int, metavar="N",
                        help="checkpoint and stop after step N (the schedule still runs to train.max_steps)")
    parser.add_argument("--tokenizer", metavar="DIR",
                        help="tokenizer directory for bits per byte (default: the one named in the token manifest)")
    parser.set_defaults(func=_train)


def _train(args, config) -> int:
    from training import host_memory

    try:
        host_memory.relaunch_with_huge_pages("train")  # before torch is imported: it costs seconds
    except ValueError as exc:  # a bad WEBTEXT_MALLOC_TUNING
        print(f"webtext: {exc}", file=sys.stderr)
        return 2
    from training.train import NonFiniteLossError, StopWithoutSaving, train

    try:
        result = train(config.train, config.model, args.tokens, args.out, resume=args.resume,
                       until_step=args.until_step, tokenizer_dir=args.tokenizer)
    except NonFiniteLossError as exc:
        print(f"webtext train: stopped: {exc}")
        return 3
    except StopWithoutSaving as exc:
        print(f"webtext train: {exc}; resume from the newest checkpoint with: {_resume_command(args)}",
              file=sys.stderr)
        return 130
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"\nstopped by {result.stopped_by} at step {result.step} ({result.tokens:,} tokens)")
        if result.final_loss is not None:
            print(f"last train loss {result.final_loss:.4f}")
        if result.val:
            print("validation: " + _format_values({name: value for name, value in result.val.items()
                                                   if value is not None}))
        print(f"checkpoint {result.checkpoint}\nlog {result.run_dir / 'log.jsonl'}\n"
              f"loss curve {result.run_dir / 'loss.png'}")
        if result.stopped_by not in ("max_steps", "until_step"):
            print(f"resume with: {_resume_command(args)}")
    if result.stopped_by in ("SIGINT", "SIGTERM"):  # checkpointed, but not finished: say so to scripts
        return 128 + signal.Signals[result.stopped_by].value
    return 0


def _resume_command(args) -> str:
    """This run's command line with --resume: a resume must keep the model's settings."""
    words = ["webtext", "train", "--tokens", args.tokens, "--out", args.out]
    words += ["--config", args.config] if args.config else []
    words += [word for override in args.overrides for word in ("--set", override)]
    words += ["--tokenizer", args.tokenizer] if args.tokenizer else []
    return shlex.join(words + ["--resume"])


def _format_values(values: dict) -> str:
    """`name value, ...` with floats to 4 decimals."""
    return ", ".join(f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}"
                     for name, value in values.items())


# -- webtext sample ---------------------------------------------------------------------------
def _add_sample(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "sample", parents=[common], help="generate text from a checkpoint",
        description="Sample continuations of a prompt from a GPT-2 checkpoint. Defaults come from the "
                    "sample: section of pipelines.yaml; the flags override them.",
    )
    parser.add_argument("--checkpoint", required=True, metavar="RUNDIR_OR_FILE",
                        help="a checkpoint file, or a run directory (its newest checkpoint)")
    parser.add_argument("--prompt", default="", help="text to continue (default: empty = a new document)")
    parser.add_argument("--max-tokens", type=int, help="new tokens per sample (sample.max_tokens)")
    parser.add_argument("--num-samples", type=int, help="how many samples (sample.num_samples)")
    parser.add_argument("--temperature", type=float, help="softmax temperature; 0 = greedy (sample.temperature)")
    parser.add_argument("--top-k", type=int, help="keep the k likeliest tokens; 0 = off (sample.top_k, paper: 40)")
    parser.add_argument("--top-p", type=float, help="nucleus sampling mass; 1 = off (sample.top_p)")
    parser.add_argument("--seed", type=int, help="random seed (sample.seed)")
    parser.add_argument("--tokenizer", metavar="DIR", help="tokenizer (default: the one recorded in the checkpoint)")
    parser.set_defaults(func=_sample)


def _sample(args, config) -> int:
    from training.checkpoint import load_for_inference
    from training.sample import generate_samples

    flags = {"max_tokens": args.max_tokens, "num_samples": args.num_samples, "temperature": args.temperature,
             "top_k": args.top_k, "top_p": args.top_p, "seed": args.seed}
    sample_config = config.sample.model_copy(update={key: value for key, value in flags.items() if value is not None})
    type(sample_config).model_validate(sample_config.model_dump())  # flags obey the same bounds as the config
    model, tokenizer, device = load_for_inference(args.checkpoint, args.tokenizer, sample_config.device)
    if tokenizer is None:
        raise ValueError(f"{args.checkpoint} records no tokenizer: pass --tokenizer DIR")
    samples = generate_samples(model, tokenizer, args.prompt, device, sample_config.max_tokens,
                               sample_config.num_samples, sample_config.temperature, sample_config.top_k,
                               sample_config.top_p, sample_config.seed)
    for number, text in enumerate(samples, 1):
        print(f"======== sample {number} of {len(samples)} ========")
        print(args.prompt + text)
    return 0


# -- webtext eval -----------------------------------------------------------------------------
def _add_eval(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "eval", parents=[common], help="perplexity, bits per byte, LAMBADA / CBT accuracy of a checkpoint",
        description="Evaluate a GPT-2 checkpoint zero-shot. Give any of --text, --shards, --lambada, --cbt, "
                    "--suite paper --data DIR.",
        epilog=EVAL_FORMATS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, metavar="RUNDIR_OR_FILE",
                        help="a checkpoint file, or a run directory (its newest checkpoint)")
    parser.add_argument("--text", metavar="FILE", help="UTF-8 text file: perplexity and bits per byte")
    parser.add_argument("--shards", metavar="TOKENS", help="token-shard directory: perplexity and bits per byte")
    parser.add_argument("--split", help="split of --shards (default: eval.split)")
    parser.add_argument("--lambada", metavar="FILE", help="LAMBADA last-word accuracy (.jsonl or the official .txt)")
    parser.add_argument("--cbt", metavar="FILE",
                        help="CBT multiple-choice accuracy (.jsonl or an official cbtest_*.txt)")
    parser.add_argument("--suite", choices=["paper"], help="paper: the GPT-2 paper's Table 3 on the files in --data")
    parser.add_argument("--data", metavar="DIR", help="folder searched for the benchmark files of --suite")
    parser.add_argument("--out", metavar="DIR",
                        help="where --suite writes table3.md and table3.json (default: the checkpoint's folder)")
    parser.add_argument("--tokenizer", metavar="DIR", help="tokenizer (default: the one recorded in the checkpoint)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.set_defaults(func=_eval)


def _eval(args, config) -> int:
    from core.fsio import atomic_write_text
    from training.checkpoint import load_for_inference
    from training.checkpoint import resolve_checkpoint
    from training.evaluate import evaluate_shards, evaluate_text, token_byte_lengths
    from training.zero_shot.cbt import evaluate_cbt
    from training.zero_shot.lambada import evaluate_lambada
    from training.zero_shot.paper import run_suite, table3, table3_markdown

    eval_config = config.eval
    if bool(args.suite) != bool(args.data):
        raise ValueError("--suite paper and --data DIR go together: give both")
    if args.out and not args.suite:
        raise ValueError("--out is where --suite paper writes its table: give --suite paper --data DIR too")
    if not (args.text or args.shards or args.lambada or args.cbt or args.suite):
        raise ValueError("nothing to evaluate: give --text, --shards, --lambada, --cbt and/or --suite paper --data DIR")
    model, tokenizer, device = load_for_inference(args.checkpoint, args.tokenizer, eval_config.device)
    if tokenizer is None and (args.text or args.lambada or args.cbt or args.suite):
        raise ValueError(f"{args.checkpoint} records no tokenizer: pass --tokenizer DIR")
    results: dict[str, dict] = {}
    if args.text:
        text = Path(args.text).read_bytes().decode("utf-8", "replace")
        results["text"] = evaluate_text(model, tokenizer, text, device, eval_config)
    if args.shards:
        byte_lengths = token_byte_lengths(tokenizer) if tokenizer else None
        results["shards"] = evaluate_shards(model, args.shards, args.split or eval_config.split, device, eval_config,
                                            byte_lengths)
    if args.lambada:
        results["lambada"] = evaluate_lambada(model, tokenizer, args.lambada, device, eval_config)
    if args.cbt:
        results["cbt"] = evaluate_cbt(model, tokenizer, args.cbt, device, eval_config)
    for name, values in results.items():
        print(f"{name:8s} {_format_values(values)}")
    if args.suite:
        table = table3(run_suite(model, tokenizer, args.data, device, eval_config), model.config, model.num_params(),
                       args.checkpoint, eval_config)
        out = Path(args.out) if args.out else resolve_checkpoint(args.checkpoint).parent
        out.mkdir(parents=True, exist_ok=True)
        markdown = table3_markdown(table)
        atomic_write_text(str(out / "table3.md"), markdown)
        atomic_write_text(str(out / "table3.json"), json.dumps(table, indent=2) + "\n")
        results["paper"] = table
        print(markdown)
        print(f"wrote {out / 'table3.md'} and {out / 'table3.json'}")
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=2) + "\n")
    return 0


# -- webtext export-hf / import-hf ------------------------------------------------------------
def _add_hf(subparsers, common) -> None:
    export = subparsers.add_parser(
        "export-hf", parents=[common], help="checkpoint -> transformers GPT2LMHeadModel directory",
        description="Write config.json, model.safetensors and tokenizer files that "
                    "GPT2LMHeadModel.from_pretrained(OUT) and AutoTokenizer.from_pretrained(OUT) load.",
    )
    export.add_argument("checkpoint", metavar="CKPT", help="checkpoint file or run directory (newest checkpoint)")
    export.add_argument("out", metavar="OUT", help="output directory")
    export.add_argument("--tokenizer", metavar="TOKDIR", help="tokenizer (default: the one the checkpoint names)")
    export.set_defaults(func=_export_hf)
    imported = subparsers.add_parser(
        "import-hf", parents=[common], help="transformers GPT-2 directory -> webtext checkpoint",
        description="Load a transformers GPT-2 directory (config.json + model.safetensors or "
                    "pytorch_model.bin, e.g. your own copy of OpenAI's GPT-2) into a webtext checkpoint "
                    "to continue training or evaluate it. Its tokenizer, if any, is saved next to CKPT "
                    "as <name>-tokenizer/.",
    )
    imported.add_argument("directory", metavar="DIR", help="transformers model directory")
    imported.add_argument("--out", required=True, metavar="CKPT", help="checkpoint file to write, e.g. out/gpt2.pt")
    imported.set_defaults(func=_import_hf)


def _export_hf(args, config) -> int:
    from training.hf import export_hf

    out = export_hf(args.checkpoint, args.out, args.tokenizer)
    print(f"exported {args.checkpoint} -> {out} (GPT2LMHeadModel + tokenizer)")
    return 0


def _import_hf(args, config) -> int:
    from training.hf import import_hf

    out = import_hf(args.directory, args.out)
    print(f"imported {args.directory} -> {out}")
    return 0
