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


def slow_page(n_blocks: int = 48000) -> bytes:
    """A real ~6 MB page that takes trafilatura ~11 s of CPU on a fast idle core (no test hook involved).

    Far longer than the 1 s extraction timeouts the tests set, so a parent that waited for it
    instead of timing out would take many seconds more than one that did, on a loaded machine too.
    """
    blocks = "".join(
        f'<div class="c{i % 7}"><p>Paragraph {i} with some words that look like prose, number {i}.</p>'
        f'<a href="/l{i}">link {i}</a></div>'
        for i in range(n_blocks)
    )
    return f"<html><body>{blocks}</body></html>".encode()
