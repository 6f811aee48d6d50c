"""Subcommands of the dataset stage: `build` and `verify`."""


def register(subparsers, common) -> None:
    from shards import build, verify

    build.add_cli(subparsers, common)
    verify.add_cli(subparsers, common)
