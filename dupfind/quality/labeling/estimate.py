"""The threshold estimate from labeled candidate pairs, with its bootstrap interval.

The population is a set of candidate pairs (e.g. mined at a low threshold) known only by their scores.
A few of them are labeled. The share of duplicates at each score is modelled by a logistic curve fitted
to the labels (the pairs to label are chosen by their score alone, so the fit is not biased by the
choice); the expected F1 of `score ≥ t` over the whole population then gives the threshold of best F1.
Resampling the labels (bootstrap) gives the interval of the threshold and of the F1 there.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import NDArray

from dupfind.quality.evaluation.curve import f1_score

DEFAULT_BOOTSTRAP = 200
DEFAULT_LEVEL = 0.9
DEFAULT_WIDTH = 0.075
MIN_ANSWERS = 20
MIN_EACH = 5
# Scores of unlabeled pairs are grouped to this precision: the estimate then costs the same for any population.
GRID = 1e-3
# A ridge on the curve's slope (in units of the labeled scores' spread) keeps it finite when the labels are
# separable; 0.3 estimated F1 best on Quora dev (1.0 flattened the curve and under-estimated F1 by 4-13 points).
_RIDGE = 0.3
# The bootstrap is computed this many (resample, pair) cells at a time, to bound memory on large label sets.
_CELLS = 1 << 21
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Estimate:
    """The threshold of best expected F1 and its interval, the F1 there and its interval, from `n` labels.

    Figures are NaN while the labels hold no duplicate or no non-duplicate; `warnings` say why not to trust them.
    """

    threshold: float
    low: float
    high: float
    f1: float
    f1_low: float
    f1_high: float
    n: int
    duplicates: int
    warnings: tuple[str, ...] = ()

    @property
    def width(self) -> float:
        """Width of the threshold's interval (infinite when there is none)."""
        return self.high - self.low if math.isfinite(self.high - self.low) else math.inf

    def more_needed(self, width: float) -> int:
        """About how many more labels would settle the estimate (`is_settled`): the interval shrinks as 1/√n."""
        short = max(MIN_ANSWERS - self.n, MIN_EACH - min(self.duplicates, self.n - self.duplicates), 0)
        if self.width <= width:
            return short
        if not math.isfinite(self.width) or width <= 0:
            return max(short, 10)
        return max(math.ceil(round(self.n * (self.width / width) ** 2, 6)) - self.n, short, 1)

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-ready values (None for NaN)."""
        return {
            key: (None if isinstance(value, float) and not math.isfinite(value) else value)
            for key, value in {**asdict(self), "warnings": list(self.warnings)}.items()
        }


def is_settled(estimate: Estimate, width: float) -> bool:
    """Whether labeling can stop: enough labels of each kind, and the threshold's interval at most `width`."""
    enough = estimate.n >= MIN_ANSWERS and min(estimate.duplicates, estimate.n - estimate.duplicates) >= MIN_EACH
    return enough and estimate.width <= width


@dataclass(frozen=True)
class Population:
    """Labeled pairs (score, label) and unlabeled pairs grouped by score (value, count)."""

    scores: Floats
    labels: NDArray[np.bool_]
    values: Floats
    counts: Floats


def estimate(
    scores: NDArray[np.floating],
    labels: NDArray[np.bool_],
    rng: np.random.Generator,
    n_boot: int = DEFAULT_BOOTSTRAP,
    pool: NDArray[np.floating] | None = None,
    level: float = DEFAULT_LEVEL,
) -> Estimate:
    """The threshold of best F1 from labeled pairs, with bootstrap intervals at `level` (default 90 %).

    `pool` holds the scores of the population's unlabeled pairs (e.g. the candidates not asked about); their
    share of duplicates is inferred from the labels. Without it the labeled pairs are the whole population,
    and the threshold is the best-F1 threshold of `dupfind calibrate --pairs` (midway between two scores).
    """
    values, counts = group_scores(np.zeros(0) if pool is None else np.asarray(pool, dtype=np.float64))
    population = Population(np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.bool_), values, counts)
    return estimate_population(population, rng, n_boot, level)[0]


def group_scores(scores: Floats) -> tuple[Floats, Floats]:
    """The distinct scores to the grid's precision, and how many pairs score each."""
    values, counts = np.unique(np.round(scores / GRID) * GRID, return_counts=True)
    return values.astype(np.float64), counts.astype(np.float64)


def estimate_population(
    population: Population, rng: np.random.Generator, n_boot: int, level: float
) -> tuple[Estimate, Floats]:
    """The estimate and the bootstrap draws of the threshold (empty when there is no estimate)."""
    scores, labels = population.scores, population.labels
    n, duplicates = len(scores), int(labels.sum())
    warnings = _warnings(n, duplicates)
    if duplicates == 0 or duplicates == n:
        nan = math.nan
        return Estimate(nan, nan, nan, nan, nan, nan, n, duplicates, warnings), np.zeros(0)
    values, counts = population.values, population.counts
    best = _Curves(scores, labels, values, counts, np.ones((1, n))).best()
    threshold, f1 = float(best[0][0]), float(best[1][0])
    drawn = rng.integers(0, n, (n_boot, n)) + n * np.arange(n_boot)[:, None]
    resamples = np.bincount(drawn.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)
    draws, at_threshold = np.empty(n_boot), np.empty(n_boot)
    step = max(1, _CELLS // (n + len(values)))
    for first in range(0, n_boot, step):
        curve = _Curves(scores, labels, values, counts, resamples[first : first + step])
        draws[first : first + step] = curve.best()[0]
        at_threshold[first : first + step] = curve.f1_at(threshold)
    tail = (1 - level) / 2 * 100
    low, high = (float(x) for x in np.percentile(draws, [tail, 100 - tail]))
    f1_low, f1_high = (float(x) for x in np.percentile(at_threshold, [tail, 100 - tail]))
    lowest = np.unique(np.concatenate([scores, values]))[:2]
    if len(lowest) == 2 and low < lowest[1]:
        warnings += (
            f"the threshold may lie at or below the lowest score ({lowest[0]:.3f}): pairs scoring lower were never "
            "candidates, so the estimate is cut off there",
        )
    estimate = Estimate(threshold, low, high, f1, min(f1_low, f1), max(f1_high, f1), n, duplicates, warnings)
    return estimate, draws


def _warnings(n: int, duplicates: int) -> tuple[str, ...]:
    found: list[str] = []
    if n < MIN_ANSWERS:
        found.append(f"only {count(n, 'label')}: too few to trust (at least {MIN_ANSWERS})")
    if min(duplicates, n - duplicates) < MIN_EACH:
        found.append(
            f"{count(duplicates, 'duplicate')} and {count(n - duplicates, 'non-duplicate')}: too one-sided to "
            f"trust (at least {MIN_EACH} of each)"
        )
    return tuple(found)


def count(n: int, noun: str) -> str:
    """`n` and the noun, in the plural unless `n` is 1."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


class _Curves:
    """Expected F1 of `score ≥ t` over the population, for several weightings of the labels at once (one a row).

    Labeled pairs count as labeled; unlabeled ones as pairs times the modelled share of duplicates at their score.
    """

    def __init__(
        self, scores: Floats, labels: NDArray[np.bool_], values: Floats, counts: Floats, weights: Floats
    ) -> None:
        rows = len(weights)
        pairs = np.concatenate([weights, np.broadcast_to(counts, (rows, len(counts)))], axis=1)
        positives = np.concatenate([weights * labels, counts * _logistic(scores, labels, weights, values)], axis=1)
        at = np.concatenate([scores, values])
        order = np.argsort(-at, kind="stable")
        self.ranked = at[order]
        self.pairs, self.positives = pairs[:, order], positives[:, order]
        self.total = self.positives.sum(axis=1)

    def best(self) -> tuple[Floats, Floats]:
        """Per row, the threshold of best expected F1 (the highest such, midway between two scores) and that F1."""
        ranked = self.ranked
        ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
        kept = np.cumsum(self.pairs, axis=1)[:, ends]
        found = np.cumsum(self.positives, axis=1)[:, ends]
        f1 = f1_score(found, kept, self.total[:, None])  # 0 for a resample without duplicates
        group = np.argmax(f1, axis=1)
        end = ends[group]
        below = ranked[np.minimum(end + 1, len(ranked) - 1)]
        middle = (ranked[end] + below) / 2
        cut = np.where((end + 1 == len(ranked)) | (middle == below), ranked[end], middle)
        return cut, f1[np.arange(len(f1)), group]

    def f1_at(self, threshold: float) -> Floats:
        """Per row, the expected F1 of `score ≥ threshold`."""
        above = self.ranked >= threshold
        kept = self.pairs[:, above].sum(axis=1)
        f1: Floats = f1_score(self.positives[:, above].sum(axis=1), kept, self.total)
        return f1


def _logistic(scores: Floats, labels: NDArray[np.bool_], weights: Floats, values: Floats) -> Floats:
    """P(duplicate | score) at `values` per row of `weights`: a logistic curve fitted to the weighted labels,
    with a ridge on its slope, which is kept ≥ 0."""
    if len(values) == 0:
        return np.zeros((len(weights), 0))
    mean, spread = float(scores.mean()), float(scores.std()) or 1.0
    x = (scores - mean) / spread
    y = labels.astype(np.float64)
    share = (weights @ y + 0.5) / (weights.sum(axis=1) + 1)
    a, b = np.log(share / (1 - share)), np.zeros(len(weights))
    with np.errstate(over="ignore"):  # exp overflows to inf for steep curves: p is then 0, as it should be
        return _fit(x, y, weights, a, b, (values - mean) / spread)


def _fit(x: Floats, y: Floats, weights: Floats, a: Floats, b: Floats, at: Floats) -> Floats:
    """Newton steps of the ridge logistic regression from (a, b); the fitted curves at `at`, one row per weighting."""
    for _ in range(30):
        p = 1 / (1 + np.exp(-(a[:, None] + b[:, None] * x)))
        w = weights * p * (1 - p)
        residual = weights * (p - y)
        g0, g1 = residual.sum(axis=1), residual @ x + _RIDGE * b
        h00, h01, h11 = w.sum(axis=1) + 1e-9, w @ x, w @ (x * x) + _RIDGE
        det = h00 * h11 - h01 * h01
        step_a, step_b = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
        a, b = a - step_a, np.maximum(b - step_b, 0.0)
        if max(np.abs(step_a).max(), np.abs(step_b).max()) < 1e-8:
            break
    result: Floats = 1 / (1 + np.exp(-(a[:, None] + b[:, None] * at)))
    return result
