"""The `webtext` command. Each stage package registers its own subcommands.

Every subcommand accepts `--config FILE` and repeated `--set section.key=value`; arguments
after a bare `--` are Beam pipeline options (e.g. `-- --runner=DataflowRunner --project=p`).
Those and the config's `beam.options` also configure object-store paths (s3://, gs://) for
every command, Beam or not; each bucket on the command line is checked before the command runs.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback

from core import __version__, fsio, netguard
from core.lock import FolderBusyError

# Stage packages whose `cli.register(subparsers, common)` adds subcommands, in --help order,
# with the commands each registers: a command imports only its own stage (torch, Scrapy and
# Beam are slow to import).
STAGE_CLIS = {
    "crawl.cli": ("harvest", "crawl", "replay"),
    "shards.cli": ("build", "verify"),
    "extract.cli": ("extract",),
    "dedup.cli": ("dedup",),
    "training.cli": ("tokenizer", "tokenize", "train", "sample", "eval", "export-hf", "import-hf"),
    "overlap.cli": ("overlap",),
    "webtext.demo": ("demo",),
}


def _common_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", action="append", default=[],
        help="config file layered over pipelines.yaml's defaults; it may hold only the keys it changes "
             "(repeatable: later files win)",
    )
    common.add_argument(
        "--set", dest="overrides", metavar="SECTION.KEY=VALUE", action="append", default=[],
        help="override one config key (repeatable), e.g. --set crawl.download_timeout=10",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return common


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or (given a known `command`) one with only that stage's commands."""
    parser = argparse.ArgumentParser(
        prog="webtext",
        description="Rebuild GPT-2's WebText: Reddit dumps -> crawl -> extract/dedup -> shards -> train GPT-2.",
        epilog="Arguments after a bare '--' are passed to Apache Beam as pipeline options; they also set up "
               "s3:// and gs:// paths for every command (e.g. --s3_endpoint_url=URL --s3_access_key_id=KEY "
               "--s3_secret_access_key=SECRET, or --project=P).",
    )
    parser.add_argument("--version", action="version", version=f"webtext {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common_parser()
    modules = [m for m, cmds in STAGE_CLIS.items() if command in cmds] or list(STAGE_CLIS)
    for module in modules:
        importlib.import_module(module).register(subparsers, common)
    return parser


def _command(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    from webtext.config import ConfigError, load_config

    netguard.install_if_requested()
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, passthrough = argv[:cut], argv[cut + 1:]
    logging.basicConfig(
        level=logging.DEBUG if ("-v" in argv or "--verbose" in argv) else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    if not ("-v" in argv or "--verbose" in argv):
        logging.getLogger("apache_beam").setLevel(logging.WARNING)  # runner chatter, not progress
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # font-cache chatter even under -v
    args = build_parser(_command(argv)).parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"webtext: {exc}", file=sys.stderr)
        return 2
    args.beam_args = passthrough
    try:
        fsio.use_options(list(cfg.beam.options) + passthrough)  # S3 endpoint/credentials, GCP project
        for path in fsio.remote_paths(argv):
            fsio.check_remote(path)
        return int(args.func(args, cfg) or 0)
    except KeyboardInterrupt:
        print("webtext: interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError, FolderBusyError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"webtext {args.command}: error: {exc}", file=sys.stderr)
        return 1


def run() -> None:
    """Process entry point: `main`, then exit without interpreter teardown.

    Native thread pools of the libraries we load (Arrow, gRPC via Beam, torch) occasionally
    abort the process while Python tears them down after a finished command ("terminate called
    without an active exception"), turning a success into exit status 134. All our output is
    written and closed by then, so flush what is buffered and leave directly.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    run()
