import random

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from dedup.components import ConnectedComponents, NotConvergedError
from core.beam import pipeline_options
from core.beam_config import BeamConfig


def _union_find_labels(edges):
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in edges:
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)
    return {(x, find(x)) for x in list(parent) if find(x) != x}


def _graphs():
    """Disjoint graphs (node = (graph, n)) that stress the rounds: paths, a star, random forests."""
    rng = random.Random(5)
    edges = []
    path = list(range(100))
    edges += [(("sorted_path", path[i]), ("sorted_path", path[i + 1])) for i in range(99)]
    rng.shuffle(path)
    edges += [(("random_path", path[i]), ("random_path", path[i + 1])) for i in range(99)]
    edges += [(("star", 0), ("star", i)) for i in range(1, 200)] + [(("star", 5), ("star", 0))]  # duplicate edge
    edges += [(("tree", i), ("tree", rng.randrange(i))) for i in range(1, 500)]
    edges += [(("sparse", rng.randrange(400)), ("sparse", rng.randrange(400))) for _ in range(300)]
    return [(u, v) for u, v in edges if u != v]


def test_components_match_union_find():
    edges = _graphs()
    with beam.Pipeline(options=pipeline_options(BeamConfig())) as p:
        labels = p | beam.Create(edges) | ConnectedComponents(max_rounds=8)  # a sorted 100-path needs 7
        assert_that(labels, equal_to(sorted(_union_find_labels(edges))))


def test_too_few_rounds_fail_naming_the_key():
    path = [(i, i + 1) for i in range(64)]
    with pytest.raises(Exception, match=r"did not converge in dedup\.cc_rounds=1 rounds") as info:
        with beam.Pipeline(options=pipeline_options(BeamConfig())) as p:
            _ = p | beam.Create(path) | ConnectedComponents(max_rounds=1)
    assert "NotConvergedError" in repr(info.value) or isinstance(info.value, NotConvergedError)
