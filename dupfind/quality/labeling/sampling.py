"""Which candidate pair to ask about next: spread over the score range first, then near the uncertain threshold."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dupfind.quality.labeling.estimate import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_LEVEL,
    GRID,
    Estimate,
    Floats,
    Population,
    estimate_population,
    group_scores,
)

_SPREAD = 10
_EXPLORE_EVERY = 5


class Sampler:
    """Chooses which candidate pair to ask about next, from their scores; deterministic given the seed.

    The first answers are spread over the score range; later ones are drawn near thresholds of the
    bootstrap (where the estimate is uncertain), with one in every few still spread out.
    """

    def __init__(self, scores: NDArray[np.floating], seed: int = 0, n_boot: int = DEFAULT_BOOTSTRAP) -> None:
        self.scores = np.asarray(scores, dtype=np.float64)
        self.seed = seed
        self.n_boot = n_boot
        self.order = np.argsort(self.scores, kind="stable")
        self.sorted = self.scores[self.order]
        self.open = np.ones(len(self.scores), dtype=np.bool_)  # by position in `order`
        self.position = np.empty(len(self.scores), dtype=np.int64)
        self.position[self.order] = np.arange(len(self.scores))
        self.values, counts = group_scores(self.scores)
        self.counts = counts
        self.cell = np.searchsorted(self.values, np.round(self.scores / GRID) * GRID)
        self.answers: dict[int, bool] = {}
        self.skipped: set[int] = set()
        self.outside: list[tuple[float, bool]] = []
        self._draws: Floats = np.zeros(0)
        self._cached: Estimate | None = None

    @property
    def remaining(self) -> int:
        """Pairs neither answered nor skipped."""
        return int(self.open.sum())

    def add(self, index: int, label: bool) -> None:
        """Record the answer about candidate `index`."""
        self._close(index)
        self.answers[index] = label
        self.counts[self.cell[index]] -= 1
        self._cached = None

    def add_outside(self, score: float, label: bool) -> None:
        """Record a labeled pair that is not among the candidates (it counts in the estimate only)."""
        self.outside.append((float(score), label))
        self._cached = None

    def remove(self, index: int) -> None:
        """Forget the answer about candidate `index`: it may be asked again."""
        del self.answers[index]
        self.counts[self.cell[index]] += 1
        self.open[self.position[index]] = True
        self._cached = None

    def skip(self, index: int) -> None:
        """Do not ask about candidate `index` again (it stays unlabeled)."""
        self._close(index)
        self.skipped.add(index)

    def unskip(self, index: int) -> None:
        self.skipped.discard(index)
        self.open[self.position[index]] = True

    def _close(self, index: int) -> None:
        if not self.open[self.position[index]]:
            raise ValueError(f"candidate {index} was already answered or skipped")
        self.open[self.position[index]] = False

    def labeled(self) -> tuple[Floats, NDArray[np.bool_]]:
        """Scores and labels of every answer, candidates first."""
        indices = list(self.answers)
        scores = np.r_[self.scores[indices], [score for score, _ in self.outside]].astype(np.float64)
        labels = np.r_[[self.answers[i] for i in indices], [label for _, label in self.outside]].astype(np.bool_)
        return scores, labels

    def estimate(self) -> Estimate:
        """The current estimate (candidates not answered are the unlabeled population)."""
        if self._cached is None:
            scores, labels = self.labeled()
            keep = self.counts > 0
            population = Population(scores, labels, self.values[keep], self.counts[keep])
            rng = np.random.default_rng((self.seed, len(scores), 1))
            self._cached, self._draws = estimate_population(population, rng, self.n_boot, DEFAULT_LEVEL)
        return self._cached

    def next(self) -> int | None:
        """The candidate to ask about next, or None when none is left."""
        if not self.open.any():
            return None
        estimate = self.estimate()
        n = estimate.n
        rng = np.random.default_rng((self.seed, n, len(self.skipped)))
        low, high = float(self.sorted[0]), float(self.sorted[-1])
        if n < _SPREAD or len(self._draws) == 0 or n % _EXPLORE_EVERY == 0:
            # The n-th of a shuffled sweep over the range, so the first answers cover it evenly.
            sweep = np.random.default_rng((self.seed, n // _SPREAD)).permutation(_SPREAD)
            target = low + (high - low) * (sweep[n % _SPREAD] + rng.random()) / _SPREAD
        else:
            target = float(rng.choice(self._draws))
        return self._nearest_open(target)

    def _nearest_open(self, target: float) -> int:
        at = int(np.searchsorted(self.sorted, target))
        right = at + int(np.argmax(self.open[at:])) if self.open[at:].any() else None
        left = at - 1 - int(np.argmax(self.open[:at][::-1])) if self.open[:at].any() else None
        if right is None or (left is not None and target - self.sorted[left] <= self.sorted[right] - target):
            assert left is not None
            return int(self.order[left])
        return int(self.order[right])
