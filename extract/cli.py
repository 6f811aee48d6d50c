"""Subcommands of this stage (registered into the `webtext` CLI)."""


def register(subparsers, common) -> None:
    """Add this stage's subcommands; each sets `func(args, cfg) -> exit code`."""
