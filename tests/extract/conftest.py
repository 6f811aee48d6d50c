"""Fixtures for the extract tests: handwritten pages under fixtures/ and a small config."""

from pathlib import Path

import pytest

from extract.config import ExtractConfig

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def pages() -> dict[str, bytes]:
    return {path.stem: path.read_bytes() for path in FIXTURES.glob("*.html")}


@pytest.fixture(scope="session")
def config() -> ExtractConfig:
    return ExtractConfig()


def slow_page(n_blocks: int = 12000) -> bytes:
    """A real ~1.5 MB page that takes trafilatura many seconds (5+ on a fast idle core) (no test hook involved)."""
    blocks = "".join(
        f'<div class="c{i % 7}"><p>Paragraph {i} with some words that look like prose, number {i}.</p>'
        f'<a href="/l{i}">link {i}</a></div>'
        for i in range(n_blocks)
    )
    return f"<html><body>{blocks}</body></html>".encode()
