"""Dedupe: which row each group keeps, and the map of removed rows."""

from __future__ import annotations

import numpy as np
import pytest

from dupfind.errors import DupfindError
from dupfind.pairs.clustering import Clusters
from dupfind.pairs.dedupe import choose_kept, deduplicate
from dupfind.vectors.encoding import normalize

TEXTS = ["short", "a much longer text", "solo", "mid length", "tiny"]
CLUSTERS = Clusters(np.array([0, 0, 1, 0, 2]), np.array([3, 2, 4]))


@pytest.mark.parametrize(("keep", "kept"), [("first", [0, 2, 4]), ("longest", [1, 2, 4]), ("central", [3, 2, 4])])
def test_choose_kept(keep: str, kept: list[int]) -> None:
    assert choose_kept(CLUSTERS, TEXTS, keep).tolist() == kept


def test_longest_ties_keep_the_first() -> None:
    assert choose_kept(Clusters(np.array([0, 0, 0]), np.array([2])), ["bb", "aa", "c"], "longest").tolist() == [0]


def test_dedupe_maps_every_removed_row_to_its_kept_row_with_the_cosine() -> None:
    embeddings = normalize(np.random.default_rng(0).normal(size=(5, 8)))
    result = deduplicate(CLUSTERS, TEXTS, embeddings, "longest")
    assert result.kept.tolist() == [1, 2, 4]
    assert result.removed.tolist() == [0, 3]
    assert result.kept_for.tolist() == [1, 1]
    assert np.allclose(result.scores, [embeddings[0] @ embeddings[1], embeddings[3] @ embeddings[1]])
    assert sorted([*result.kept.tolist(), *result.removed.tolist()]) == list(range(5))


def test_unknown_policy() -> None:
    with pytest.raises(DupfindError, match="unknown keep policy 'last'"):
        choose_kept(CLUSTERS, TEXTS, "last")
