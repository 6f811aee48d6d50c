"""Stage accounting that holds without runner metrics."""

import pytest

from core.stats import counts_from_drops


def test_counts_from_drops_walks_the_chain_backwards():
    counts = counts_from_drops(["read", "extract", "write"], {"read": {"not_http": 2}, "extract": {"too_short": 3, "x": 0}}, 5)
    assert [(c.stage, c.records_in, c.records_out, c.dropped) for c in counts.values()] == [
        ("read", 10, 8, {"not_http": 2}), ("extract", 8, 5, {"too_short": 3}), ("write", 5, 5, {})]
    assert all(c.reconciles() for c in counts.values())


def test_drops_of_an_unknown_stage_are_an_error():
    with pytest.raises(ValueError, match="stage\\(s\\) captures outside the chain read -> write"):
        counts_from_drops(["read", "write"], {"captures": {"duplicate_capture": 1}}, 0)
