"""Work in progress."""


def add_cli(subparsers, common) -> None:
    pass
