"""`webtext demo`: every stage end to end on the bundled offline sample."""


def register(subparsers, common) -> None:
    """Add the `demo` subcommand."""
