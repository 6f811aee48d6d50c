"""Session fixtures: the handwritten WARC crawl and one reference build of it."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from pathlib import Path

import pytest

from shards.cli import dataset_config
from tests.shards.warc_fixture import Fixture, write_fixture
from webtext.cli import main
from webtext.config import load_config

REPO = Path(__file__).resolve().parents[2]
# Small shards, so that the fixture spreads over several files per split.
SMALL_SHARDS = ["build.docs_per_shard=4", "build.row_group_docs=2"]


@pytest.fixture(scope="session")
def crawl(tmp_path_factory) -> Fixture:
    return write_fixture(str(tmp_path_factory.mktemp("crawl")))


def build(overrides: list[str], warc: str, out: str) -> dict:
    """`run_build` with the sections of the config these `--set` overrides make, as the CLI passes them."""
    from shards.build import run_build

    config = load_config(overrides=overrides)
    return run_build(dataset_config(config), config.beam, warc, out)


@pytest.fixture(scope="session")
def built(crawl, tmp_path_factory) -> tuple[str, dict]:
    """(dataset dir, manifest) of an in-process DirectRunner build; tests must not modify it."""
    out = str(tmp_path_factory.mktemp("dataset"))
    return out, build(SMALL_SHARDS, crawl.root, out)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> CliResult:
    """`webtext ARGS` through the real entry point, in this process (a fresh one costs seconds)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return CliResult(code, out.getvalue(), err.getvalue())
