"""Subcommands of the training stage."""


def register(subparsers, common) -> None:
    from training import evaluate, hf, sample, tokenize, tokenizer, train

    tokenizer.add_cli(subparsers, common)  # webtext tokenizer train
    tokenize.add_cli(subparsers, common)  # webtext tokenize
    train.add_cli(subparsers, common)  # webtext train
    sample.add_cli(subparsers, common)  # webtext sample
    evaluate.add_cli(subparsers, common)  # webtext eval
    hf.add_cli(subparsers, common)  # webtext export-hf / import-hf
