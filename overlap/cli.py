"""Subcommand `overlap`: build / report / decontaminate."""


def register(subparsers, common) -> None:
    from overlap import report

    report.add_cli(subparsers, common)
