"""The benchmark's scorer reproduces the published floor row ("raw HTML as text") on a subset."""

import numpy as np
import pytest

from bench.bench_extraction import EVAL_DIR, PUBLISHED, load_eval_set, precision_recall_f1, score_page
from extract.decode import decode_html

pytestmark = pytest.mark.shared


def test_score_page_counts_snippets_after_whitespace_collapse():
    assert score_page("a  b\n c d", ["a b c", "x"], ["c d", "y"]) == (1, 1, 1, 1)
    assert score_page(None, ["a"], ["b"]) == (0, 1, 0, 1)


def test_floor_row_on_a_subset(shared_dir):
    if not (EVAL_DIR / "pages.tar.gz").is_file():
        pytest.skip("extraction eval set is absent")
    pages = load_eval_set()[::5]  # 198 pages
    rows = np.array([score_page(decode_html(page["body"], None)[0], page["with"], page["without"]) for page in pages])
    ours = precision_recall_f1(rows)
    for got, published in zip(ours, PUBLISHED["raw HTML as text (floor)"]):
        assert abs(got - published) <= 0.02, (ours, PUBLISHED["raw HTML as text (floor)"])
