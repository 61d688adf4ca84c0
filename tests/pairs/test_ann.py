"""The inverted-file index: its cells, and its pair recall against exact mining on real questions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dupfind.io.cache_dir import cache_dir
from dupfind.pairs.ann import IvfParams, cells_of, partition, shares_of
from dupfind.pairs.identical import normalize_text
from dupfind.pairs.mining import mine_embeddings
from dupfind.vectors.cache import EmbeddingCache
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.encoding import normalize
from tests.conftest import QUORA, needs_quora
from tests.pairs.test_mining import clustered_embeddings

REAL_ROWS = 10_000
REAL_THRESHOLD = 0.744


def test_every_row_is_stored_once_and_probes_its_own_cell_first() -> None:
    embeddings = clustered_embeddings(2000)
    params = IvfParams(cells_factor=2.0, probes=5)
    cells = partition(embeddings, params)
    assert len(cells) == params.cells(2000) == 89
    stored = np.concatenate([cells.cell(c).stored for c in range(len(cells))])
    assert sorted(stored.tolist()) == list(range(2000))
    probed_by = {row: [] for row in range(2000)}
    for c in range(len(cells)):
        for row in cells.cell(c).probing.tolist():
            probed_by[row].append(c)
    home = {row: c for c in range(len(cells)) for row in cells.cell(c).stored.tolist()}
    assert all(len(set(found)) == 5 and home[row] in found for row, found in probed_by.items())


@pytest.mark.parametrize("block", [300, 2000])
def test_some_cells_listed_from_the_blocks_shares_are_the_partition_s(block: int) -> None:
    cells = partition(clustered_embeddings(2000), IvfParams(cells_factor=2.0, probes=5))
    groups = [np.array([0, 3, 4]), np.array([40, 88])]  # the first, neighbours, one inside and the last
    shares = [
        shares_of(cells.probes[start : start + block], start, groups, len(cells)) for start in range(0, 2000, block)
    ]
    for index, group in enumerate(groups):
        listed = list(cells_of([per_block[index] for per_block in shares], group))
        assert len(listed) == len(group)
        for cell, rows in zip(group.tolist(), listed, strict=True):
            expected = cells.cell(cell)
            assert len(rows.probing) > 0 and rows.probing.dtype == rows.stored.dtype == np.int64
            for field in ("probing", "homes", "stored", "probes"):
                assert np.array_equal(getattr(rows, field), getattr(expected, field)), field


def test_a_group_s_shares_hold_only_the_probes_of_its_cells_rows() -> None:
    cells = partition(clustered_embeddings(2000), IvfParams(cells_factor=2.0, probes=5))
    group = np.array([10, 11])
    (share,) = shares_of(cells.probes, 0, [group], len(cells))
    assert set(share.probed.tolist()) == {10, 11}
    assert set(share.stored.tolist()) == set(np.flatnonzero(np.isin(cells.probes[:, 0], group)).tolist())
    assert len(share.probing) + share.probes.size < cells.probes.size // 10  # a tenth of all the probes


def test_partition_is_deterministic() -> None:
    embeddings = clustered_embeddings(1500, seed=3)
    first, again = partition(embeddings), partition(embeddings)
    assert np.array_equal(first.stored, again.stored) and np.array_equal(first.probing, again.probing)


@pytest.mark.parametrize("rows", [1, 7, 9, 40])
def test_tiny_inputs(rows: int) -> None:
    cells = partition(normalize(np.random.default_rng(rows).normal(size=(rows, 8))))
    assert sorted(cells.stored.tolist()) == list(range(rows))


@pytest.mark.slow
@needs_quora()
def test_pair_recall_on_real_questions(real_encoder) -> None:  # type: ignore[no-untyped-def]
    """≥ 99.9% of the exact pairs at 0.744, on 10k real questions (in the user's embedding cache after one run)."""
    distinct: dict[str, str] = {}
    for text in pd.read_csv(QUORA / "train-questions.csv").question.dropna().astype(str):
        distinct.setdefault(normalize_text(text), text)
    texts = list(distinct.values())[:REAL_ROWS]
    embeddings = Embedder(real_encoder, EmbeddingCache(cache_dir() / "embeddings")).embed(texts)
    exact = mine_embeddings(embeddings, REAL_THRESHOLD, index="exact")
    approximate = mine_embeddings(embeddings, REAL_THRESHOLD, index="ann")
    exact_pairs = set(zip(exact.left.tolist(), exact.right.tolist(), strict=True))
    found = set(zip(approximate.left.tolist(), approximate.right.tolist(), strict=True))
    assert len(exact_pairs) > 5000
    assert len(found & exact_pairs) >= 0.999 * len(exact_pairs)
    assert len(found - exact_pairs) <= 0.001 * len(exact_pairs)
