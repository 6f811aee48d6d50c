"""Derived LSH bands x rows: our optimiser makes the choices datasketch 2.0's `MinHashLSH` made."""

import numpy as np
import pytest

from dedup.lsh import optimal_bands_rows


@pytest.mark.parametrize(
    "threshold, num_perm, false_negative_weight, expected",
    [  # (bands, rows) from datasketch 2.0.0's optimiser, which chose them before
        (0.8, 128, 0.95, (16, 8)),  # the configured defaults
        (0.5, 128, 0.95, (26, 3)),
        (0.7, 128, 0.95, (21, 6)),
        (0.9, 128, 0.95, (9, 14)),
        (0.95, 128, 0.95, (6, 21)),
        (0.8, 128, 0.5, (9, 13)),
        (0.8, 256, 0.95, (25, 10)),
        (0.5, 100, 0.95, (26, 3)),
        (0.3, 64, 0.9, (32, 2)),
        (1.0, 128, 0.95, (1, 128)),
    ],
)
def test_same_choices_as_before(threshold, num_perm, false_negative_weight, expected):
    assert optimal_bands_rows(threshold, num_perm, false_negative_weight) == expected


@pytest.mark.parametrize("num_perm", [16, 64, 128])
def test_agrees_with_datasketch_over_a_grid(num_perm):
    from datasketch.lsh import _optimal_param

    for threshold in np.round(np.arange(0.05, 1.0001, 0.05), 2):
        for weight in (0.5, 0.9, 0.95):
            ours = optimal_bands_rows(float(threshold), num_perm, weight)
            assert ours == _optimal_param(float(threshold), num_perm, 1 - weight, weight), (threshold, weight)


def _error(threshold, bands, rows, weight, points=200_001):
    """The weighted error integral by the trapezoid rule on a fine grid (an independent check)."""
    below, above = np.linspace(0, threshold, points), np.linspace(threshold, 1, points)
    false_positive = np.trapezoid(1 - (1 - below ** rows) ** bands, below)
    false_negative = np.trapezoid((1 - above ** rows) ** bands, above)
    return (1 - weight) * false_positive + weight * false_negative


def test_choice_minimises_the_weighted_error():
    threshold, num_perm, weight = 0.8, 128, 0.95
    bands, rows = optimal_bands_rows(threshold, num_perm, weight)
    assert bands * rows <= num_perm
    best = _error(threshold, bands, rows, weight)
    for other_bands, other_rows in [(8, 16), (32, 4), (16, 7), (17, 7), (12, 10), (14, 9), (18, 7)]:
        assert best < _error(threshold, other_bands, other_rows, weight), (other_bands, other_rows)


def test_threshold_must_be_a_similarity():
    with pytest.raises(ValueError, match="threshold"):
        optimal_bands_rows(0.0, 128, 0.95)
