"""LSH bands x rows for a Jaccard threshold: the split that minimises weighted misses and extras.

With b bands of r rows, two documents of Jaccard similarity s share at least one band with
probability P(s) = 1 - (1 - s^r)^b. For a threshold t, the false-positive mass is the integral
of P over [0, t] and the false-negative mass the integral of 1 - P over [t, 1]; we choose the
(b, r) with b * r <= num_perm that minimises
    (1 - w) * integral_0^t P(s) ds + w * integral_t^1 (1 - P(s)) ds,
w being the weight of false negatives. Ties go to the smallest b, then the smallest r (the
first found when counting b and then r up from 1), which gives the same choices as
datasketch 2.0's `MinHashLSH` optimiser.

P is a polynomial of degree b * r <= num_perm, so Gauss-Legendre quadrature with
num_perm // 2 + 1 nodes integrates it exactly (up to rounding): no adaptive integration needed.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def _nodes(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1], exact for polynomials of degree <= num_perm."""
    return np.polynomial.legendre.leggauss(num_perm // 2 + 1)


def _on_interval(low: float, high: float, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights moved to [low, high]."""
    nodes, weights = _nodes(num_perm)
    half = (high - low) / 2
    return low + half * (nodes + 1), half * weights


@functools.cache
def optimal_bands_rows(threshold: float, num_perm: int, false_negative_weight: float) -> tuple[int, int]:
    """(bands, rows) with bands * rows <= num_perm minimising the weighted error integrals above."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    below, below_weights = _on_interval(0.0, threshold, num_perm)
    above, above_weights = _on_interval(threshold, 1.0, num_perm)
    best_error, best = float("inf"), (0, 0)
    for rows in range(1, num_perm + 1):
        bands = np.arange(1, num_perm // rows + 1, dtype=np.float64)[:, None]
        # (1 - s^r)^b, the probability of no shared band, for every b at once
        with np.errstate(divide="ignore"):  # s = 1 (threshold 1.0): log(0) = -inf, miss = 0
            miss_below = np.exp(bands * np.log1p(-below ** rows))
            miss_above = np.exp(bands * np.log1p(-above ** rows))
        false_positive = (1.0 - miss_below) @ below_weights
        false_negative = miss_above @ above_weights
        errors = (1.0 - false_negative_weight) * false_positive + false_negative_weight * false_negative
        for band_count, error in enumerate(errors.tolist(), start=1):
            if (error, band_count, rows) < (best_error, *best):
                best_error, best = error, (band_count, rows)
    return best
