"""Subcommand `extract`: main text of local HTML files, exactly as the build pipeline does it."""


def register(subparsers, common) -> None:
    from extract import extractors

    extractors.add_cli(subparsers, common)
