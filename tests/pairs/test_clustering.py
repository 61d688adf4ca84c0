"""Clustering: components against a plain union-find, communities without chains, representatives."""

from __future__ import annotations

import numpy as np
import pytest

from dupfind.errors import DupfindError
from dupfind.pairs.clustering import (
    Clusters,
    cluster_embeddings,
    cluster_pairs,
    cluster_texts,
    communities,
    components,
)
from dupfind.pairs.identical import unique_texts
from dupfind.pairs.mining import MinedPairs, mine_embeddings
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.encoding import normalize
from tests.conftest import FakeEncoder
from tests.pairs.test_mining import clustered_embeddings


def pairs_of(links: list[tuple[int, int, float]]) -> MinedPairs:
    left, right, scores = zip(*links, strict=True)
    return MinedPairs(np.array(left), np.array(right), np.array(scores, dtype=np.float32))


def union_find(n: int, pairs: MinedPairs) -> list[set[int]]:
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for a, b in zip(pairs.left.tolist(), pairs.right.tolist(), strict=True):
        parent[root(a)] = root(b)
    groups: dict[int, set[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), set()).add(i)
    return sorted(groups.values(), key=min)


def groups_of(labels: np.ndarray) -> list[set[int]]:
    return sorted(({int(i) for i in np.flatnonzero(labels == label)} for label in np.unique(labels)), key=min)


def test_a_chain_is_one_component_but_two_communities() -> None:
    chain = pairs_of([(0, 1, 0.9), (1, 2, 0.85), (2, 3, 0.9), (3, 4, 0.9)])
    assert groups_of(components(6, chain)) == [{0, 1, 2, 3, 4}, {5}]
    labels, centres = communities(6, chain)
    assert groups_of(labels) == [{0, 1, 2}, {3, 4}, {5}]
    assert centres.tolist() == [1, 3, 5]


def test_components_match_union_find() -> None:
    embeddings = clustered_embeddings(400, seed=3)
    pairs = mine_embeddings(embeddings, 0.8, 5)
    assert groups_of(components(len(embeddings), pairs)) == union_find(len(embeddings), pairs)


def test_every_community_member_is_paired_with_its_centre() -> None:
    embeddings = clustered_embeddings(400, seed=4)
    pairs = mine_embeddings(embeddings, 0.8, 10)
    linked = set(zip(pairs.left.tolist(), pairs.right.tolist(), strict=True))
    clusters = cluster_pairs(embeddings, pairs, "communities")
    for row, label in enumerate(clusters.labels.tolist()):
        centre = int(clusters.representatives[label])
        assert row == centre or (min(row, centre), max(row, centre)) in linked
        assert embeddings[row] @ embeddings[centre] >= 0.8 - 1e-6


@pytest.mark.parametrize("method", ["components", "communities"])
def test_groups_are_numbered_by_first_row_and_partition_the_rows(method: str) -> None:
    embeddings = clustered_embeddings(300, seed=5)
    clusters = cluster_embeddings(embeddings, 0.8, method, top_k=10)
    first_rows = [int(np.flatnonzero(clusters.labels == label)[0]) for label in range(len(clusters))]
    assert first_rows == sorted(first_rows)
    assert clusters.sizes.sum() == 300
    assert np.all(clusters.labels[clusters.representatives] == np.arange(len(clusters)))


def test_a_components_representative_is_the_most_central_member() -> None:
    embeddings = normalize(np.array([[1.0, 0.0], [0.9, 0.3], [0.8, 0.6], [0.5, 0.85], [-1.0, 0.0]]))
    clusters = cluster_embeddings(embeddings, 0.9, "components")
    assert groups_of(clusters.labels) == [{0, 1, 2, 3}, {4}]
    mean_cosine = (embeddings[:4] @ embeddings[:4].T).sum(axis=1)
    assert clusters.representatives[0] == int(np.argmax(mean_cosine)) == 2


def test_unique_texts_ignore_case_and_spaces() -> None:
    first, inverse = unique_texts(["A b", "c", "a  B ", "C", "d"])
    assert first.tolist() == [0, 1, 4]
    assert inverse.tolist() == [0, 1, 0, 1, 2]


def test_cluster_texts_encodes_identical_texts_once(fake_encoder: FakeEncoder) -> None:
    texts = ["red apple pie", "Red  apple pie", "why is the sky blue", "red apple pie recipe", "blue sky why"]
    clusters, embeddings = cluster_texts(Embedder(fake_encoder), texts, rule=0.75, method="communities")
    assert sum(len(call) for call in fake_encoder.calls) == 4
    assert isinstance(clusters, Clusters) and embeddings.shape == (5, FakeEncoder.dim)
    assert clusters.labels[0] == clusters.labels[1]
    assert clusters.labels[0] != clusters.labels[2]
    assert 1 not in clusters.representatives.tolist()  # the first of identical texts stands for them


def test_unknown_method_is_an_error() -> None:
    with pytest.raises(DupfindError, match="unknown clustering method 'louvain'"):
        cluster_embeddings(clustered_embeddings(10), 0.8, "louvain")
