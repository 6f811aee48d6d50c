"""The benchmark's scorer reproduces the published floor row ("raw HTML as text") on a subset,
and it scores the text the pipeline keeps."""

import numpy as np
import pytest

from bench.bench_extraction import (
    EVAL_DIR, MODES, PUBLISHED, UNCLEANED, _extract_all_modes, load_eval_set, precision_recall_f1, score_page,
)
from extract.config import ExtractConfig
from extract.decode import decode_html
from extract.extractors import extract_page


def test_score_page_counts_snippets_after_whitespace_collapse():
    assert score_page("a  b\n c d", ["a b c", "x"], ["c d", "y"]) == (1, 1, 1, 1)
    assert score_page(None, ["a"], ["b"]) == (0, 1, 0, 1)


def test_bench_scores_the_text_extract_page_gives_the_pipeline(pages):
    """Every mode's scored text is extract_page's (line rules applied); the uncleaned row is not."""
    outputs = _extract_all_modes({"body": pages["article_furniture"], "url": None})
    for mode in MODES:
        outcome = extract_page(pages["article_furniture"], None, None, ExtractConfig(extractor=mode))
        assert outputs[mode] == outcome.extraction.text, mode
        assert outputs[f"{mode} lines removed"] == outcome.lines_removed, mode
    assert "Posted 2017-06-20 by Tom Becker" in outputs[UNCLEANED]


@pytest.mark.shared
def test_floor_row_on_a_subset(shared_dir):
    if not (EVAL_DIR / "pages.tar.gz").is_file():
        pytest.skip("extraction eval set is absent")
    pages = load_eval_set()[::5]  # 198 pages
    rows = np.array([score_page(decode_html(page["body"], None)[0], page["with"], page["without"]) for page in pages])
    ours = precision_recall_f1(rows)
    for got, published in zip(ours, PUBLISHED["raw HTML as text (floor)"]):
        assert abs(got - published) <= 0.02, (ours, PUBLISHED["raw HTML as text (floor)"])
