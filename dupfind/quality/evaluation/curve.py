"""Scores ranked against labels: the positives found down the ranking, and the figures read off it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from numpy.typing import NDArray

Labels = NDArray[np.bool_]


@overload
def f1_score(found: float, kept: float, total: float) -> float: ...


@overload
def f1_score(found: NDArray[Any], kept: NDArray[Any] | float, total: NDArray[Any] | float) -> NDArray[np.float64]: ...


def f1_score(found: Any, kept: Any, total: Any) -> Any:
    """F1 of keeping `kept` items of which `found` are among `total` positives: 2·found / (kept + total), the
    harmonic mean of precision and recall; 0 where nothing is found. Numbers or arrays (element by element)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(np.true_divide(2 * np.asarray(found, dtype=np.float64), np.add(kept, total)))
    return f1 if f1.ndim else float(f1)


@dataclass(frozen=True)
class Curve:
    """Positives found down a ranking, counted at the end of each group of equal scores (best first)."""

    scores: NDArray[np.float64]
    ends: NDArray[np.int64]
    found: NDArray[np.int64]
    total: int

    @classmethod
    def of(cls, scores: NDArray[np.floating], hits: Labels, total: int) -> Curve:
        order = np.argsort(-scores, kind="stable")
        ranked = scores[order].astype(np.float64)
        ends = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
        return cls(ranked, ends, np.cumsum(hits[order], dtype=np.int64)[ends], total)

    def cut(self, group: int) -> float:
        """The threshold that keeps groups up to `group`: midway to the next score."""
        end = self.ends[group]
        if end + 1 == len(self.scores):
            return float(self.scores[end])
        middle = float((self.scores[end] + self.scores[end + 1]) / 2)
        return middle if middle != self.scores[end + 1] else float(self.scores[end])

    def precision_recall(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        return self.found / (self.ends + 1), self.found / self.total

    def best_f1(self) -> tuple[float, float, float, float]:
        """Threshold, F1, precision and recall where F1 is highest (the highest such threshold)."""
        precision, recall = self.precision_recall()
        f1 = f1_score(self.found, self.ends + 1, self.total)
        group = int(np.argmax(f1))
        return self.cut(group), float(f1[group]), float(precision[group]), float(recall[group])

    def best_accuracy(self, n: int) -> float:
        """The threshold of highest accuracy; above the best score when predicting no duplicate is best."""
        negatives = n - self.total
        accuracy = (self.found + negatives - (self.ends + 1 - self.found)) / n
        group = int(np.argmax(accuracy))
        if accuracy[group] <= negatives / n:
            return float(np.nextafter(np.float32(self.scores[0]), np.float32(np.inf)))
        return self.cut(group)

    def average_precision(self) -> float:
        """Sum of precision × recall gained at each group, over all positives (found or not)."""
        precision, _ = self.precision_recall()
        gained = np.diff(self.found, prepend=0)
        return float(np.sum(precision * gained) / self.total)

    def roc_auc(self, n: int) -> float:
        true_rate = np.r_[0, self.found] / self.total
        false_rate = np.r_[0, self.ends + 1 - self.found] / (n - self.total)
        return float(np.sum(np.diff(false_rate) * (true_rate[1:] + true_rate[:-1]) / 2))
