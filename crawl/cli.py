"""Subcommands of the crawl stage: `harvest`, `crawl` and `replay`."""


def register(subparsers, common) -> None:
    from crawl import crawler, harvest, replay

    harvest.add_cli(subparsers, common)
    crawler.add_cli(subparsers, common)
    replay.add_cli(subparsers, common)
