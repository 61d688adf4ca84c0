"""Labeling candidate pairs to find a threshold: which pair to ask next, the threshold estimate with its
bootstrap interval, and the labels file.

The population is a set of candidate pairs (e.g. mined at a low threshold) known only by their scores.
A few of them are labeled. The share of duplicates at each score is modelled by a logistic curve fitted
to the labels (the pairs to label are chosen by their score alone, so the fit is not biased by the
choice); the expected F1 of `score ≥ t` over the whole population then gives the threshold of best F1.
Resampling the labels (bootstrap) gives the interval of the threshold and of the F1 there.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.quality.evaluation.curve import f1_score

LABEL_COLUMNS = ("question1", "question2", "is_duplicate", "score")
DEFAULT_BOOTSTRAP = 200
DEFAULT_LEVEL = 0.9
DEFAULT_WIDTH = 0.075
MIN_ANSWERS = 20
MIN_EACH = 5
# Scores of unlabeled pairs are grouped to this precision: the estimate then costs the same for any population.
_GRID = 1e-3
_SPREAD = 10
_EXPLORE_EVERY = 5
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
class _Population:
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
    values, counts = _group(np.zeros(0) if pool is None else np.asarray(pool, dtype=np.float64))
    population = _Population(np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.bool_), values, counts)
    return _estimate(population, rng, n_boot, level)[0]


def _group(scores: Floats) -> tuple[Floats, Floats]:
    values, counts = np.unique(np.round(scores / _GRID) * _GRID, return_counts=True)
    return values.astype(np.float64), counts.astype(np.float64)


def _estimate(population: _Population, rng: np.random.Generator, n_boot: int, level: float) -> tuple[Estimate, Floats]:
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
        found.append(f"only {_count(n, 'label')}: too few to trust (at least {MIN_ANSWERS})")
    if min(duplicates, n - duplicates) < MIN_EACH:
        found.append(
            f"{_count(duplicates, 'duplicate')} and {_count(n - duplicates, 'non-duplicate')}: too one-sided to "
            f"trust (at least {MIN_EACH} of each)"
        )
    return tuple(found)


def _count(n: int, noun: str) -> str:
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
        self.values, counts = _group(self.scores)
        self.counts = counts
        self.cell = np.searchsorted(self.values, np.round(self.scores / _GRID) * _GRID)
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
            population = _Population(scores, labels, self.values[keep], self.counts[keep])
            rng = np.random.default_rng((self.seed, len(scores), 1))
            self._cached, self._draws = _estimate(population, rng, self.n_boot, DEFAULT_LEVEL)
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


@dataclass
class LabelRows:
    """The rows of a labels file."""

    first: list[str] = field(default_factory=list)
    second: list[str] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


def read_labels(path: str | Path) -> LabelRows:
    """The rows of a labels file (`question1,question2,is_duplicate,score`); an absent or empty file has none."""
    path = Path(path)
    rows = LabelRows()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return rows
    except OSError as exc:
        raise DupfindError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not raw:
        return rows
    if not raw.endswith(b"\n"):
        raise DupfindError(f"{path}: the last row is incomplete (no line end); remove it and run again")
    try:
        reader = csv.reader(raw.decode("utf-8").splitlines(keepends=True))
        header = next(reader)
        if tuple(header) != LABEL_COLUMNS:
            raise DupfindError(
                f"{path}: not a labels file: its columns are {','.join(header)}, not {','.join(LABEL_COLUMNS)}; "
                "give another -o"
            )
        for line, row in enumerate(reader, start=2):
            if len(row) != len(LABEL_COLUMNS) or row[2] not in ("0", "1"):
                raise DupfindError(f"{path}: row {line} is not question1,question2,0|1,score")
            try:
                score = float(row[3])
            except ValueError:
                raise DupfindError(f"{path}: row {line} has score '{row[3]}', not a number") from None
            rows.first.append(row[0])
            rows.second.append(row[1])
            rows.labels.append(row[2] == "1")
            rows.scores.append(score)
    except UnicodeDecodeError as exc:
        raise DupfindError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise DupfindError(f"{path}: not a CSV file ({exc})") from None
    return rows


class LabelsWriter:
    """Appends labels to a file, each row flushed and synced to disk at once; the last rows can be taken back."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.handle = self.path.open("a", encoding="utf-8", newline="")
        except OSError as exc:
            raise DupfindError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        if self.handle.tell() == 0:
            self._write(LABEL_COLUMNS)

    def append(self, first: str, second: str, label: bool, score: float) -> int:
        """Write one row; returns the file's size before it (to `truncate` to)."""
        offset = self.handle.tell()
        self._write((first, second, "1" if label else "0", f"{score:.6f}"))
        return offset

    def truncate(self, offset: int) -> None:
        """Take back the rows written from `offset` on."""
        self.handle.truncate(offset)
        self.handle.seek(offset)
        self._sync()

    def close(self) -> None:
        self.handle.close()

    def _write(self, row: tuple[str, ...]) -> None:
        csv.writer(self.handle, lineterminator="\n").writerow(row)
        self._sync()

    def _sync(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
