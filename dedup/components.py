"""Connected components of a graph too large for one machine, as a fixed number of Beam rounds.

Alternating large-star / small-star (Kiveris et al., "Connected Components in MapReduce and
Beyond", SoCC 2014). Nodes are any totally ordered, deterministically encodable values; every
emitted edge points from a larger node to a smaller one, and each round keeps the edge count
at or below the previous one. The rounds end in a forest of stars whose centres are the minima
of their components; O(log^2 n) rounds in the worst case, a handful in practice (a sorted
path of 1,000 nodes needs 10, a random tree of 100,000 needs 5). A Beam graph cannot loop
until convergence, so `max_rounds` rounds are unrolled and the result is checked: if it is not
yet a star forest the pipeline fails with an error that names the config key to raise, rather
than returning wrong clusters.
"""

from __future__ import annotations

import apache_beam as beam


class NotConvergedError(RuntimeError):
    """The unrolled rounds did not reach a star forest."""


def _both_directions(edge):
    u, v = edge
    yield u, v
    yield v, u


def _large_star(element):
    """Attach every larger neighbour of u to the smallest node of u's neighbourhood.

    Emits (larger, smaller) pairs, already keyed the way small-star groups them.
    """
    u, neighbours = element
    neighbours = set(neighbours)
    smallest = min(min(neighbours), u)
    for v in neighbours:
        if v > u:
            yield v, smallest


def _small_star(element):
    """Attach u and its smaller neighbours to the smallest of them."""
    u, smaller = element
    smaller = set(smaller)
    smallest = min(smaller)
    for v in smaller:
        if v != smallest:
            yield v, smallest
    yield u, smallest


def _parent_and_children(edge):
    child, parent = edge
    yield child, ("parent", parent)
    yield parent, ("child", child)


class _StarLabels(beam.DoFn):
    """(node, [("parent"|"child", other)]) -> (node, centre) for every non-centre node."""

    def __init__(self, config_key: str, rounds: int):
        self.config_key = config_key
        self.rounds = rounds

    def process(self, element):
        node, links = element
        parents = {other for kind, other in links if kind == "parent"}
        has_children = any(kind == "child" for kind, _ in links)
        if len(parents) > 1 or (parents and has_children):
            raise NotConvergedError(
                f"connected components did not converge in {self.config_key}={self.rounds} rounds "
                f"(node {node!r} is not yet attached to its component's minimum); raise {self.config_key}"
            )
        if parents:
            yield node, parents.pop()


class ConnectedComponents(beam.PTransform):
    """Undirected edges (u, v) -> (node, component minimum) for every node that is not a minimum."""

    def __init__(self, max_rounds: int, config_key: str = "dedup.cc_rounds"):
        super().__init__()
        self.max_rounds = max_rounds
        self.config_key = config_key

    def expand(self, edges):
        for i in range(1, self.max_rounds + 1):
            edges = (
                edges
                | f"Round{i}/Undirected" >> beam.FlatMap(_both_directions)
                | f"Round{i}/GroupNeighbours" >> beam.GroupByKey()
                | f"Round{i}/LargeStar" >> beam.FlatMap(_large_star)
                | f"Round{i}/GroupSmaller" >> beam.GroupByKey()
                | f"Round{i}/SmallStar" >> beam.FlatMap(_small_star)
            )
        return (
            edges
            | "Links" >> beam.FlatMap(_parent_and_children)
            | "GroupLinks" >> beam.GroupByKey()
            | "CheckStarsAndLabel" >> beam.ParDo(_StarLabels(self.config_key, self.max_rounds))
        )
