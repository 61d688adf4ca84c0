"""Batches of pairs of similar length for the re-ranker: a cross-encoder batch is padded to its longest pair, and
Quora pairs are short with a long tail (median 27 tokens, a random batch of 32 pads to about 67), so drawing each
batch from pairs of similar length halves the work of an epoch. Batches stay random: the order is shuffled, then
sorted by length only within chunks of `GROUP` batches, and the batches are shuffled again. (It imports
sentence-transformers: import it only to train.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sentence_transformers.base.sampler import DefaultBatchSampler

GROUP = 64  # batches per chunk sorted by length


def length_batches(
    lengths: NDArray[np.int64], batch_size: int, rng: np.random.Generator, drop_last: bool = False
) -> list[NDArray[np.int64]]:
    """Every index of `lengths` in one batch of `batch_size` (the last of a chunk may be smaller; dropped with
    `drop_last`), each drawn from pairs of similar length, the batches in random order."""
    order = rng.permutation(len(lengths))
    batches = []
    for start in range(0, len(order), batch_size * GROUP):
        chunk = order[start : start + batch_size * GROUP]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    if drop_last:
        batches = [batch for batch in batches if len(batch) == batch_size]
    return [batches[i] for i in rng.permutation(len(batches)).tolist()]


class LengthGroupedBatchSampler(DefaultBatchSampler):
    """A sentence-transformers batch sampler (its training arguments take the class) of `length_batches` over
    the pairs' lengths in characters, reshuffled each epoch from the seed."""

    def __init__(self, dataset: Any, batch_size: int, drop_last: bool, **kwargs: Any) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last, **kwargs)
        first, second = list(dataset["sentence1"]), list(dataset["sentence2"])
        self.lengths = np.array([len(a) + len(b) for a, b in zip(first, second, strict=True)], dtype=np.int64)

    def _batches(self) -> list[NDArray[np.int64]]:
        rng = np.random.default_rng(self.seed + getattr(self, "epoch", 0))
        return length_batches(self.lengths, self.batch_size, rng, self.drop_last)

    def __iter__(self) -> Iterator[list[int]]:
        return iter([batch.tolist() for batch in self._batches()])

    def __len__(self) -> int:
        return len(self._batches())
