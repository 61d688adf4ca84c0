"""Pair classification: how well `score ≥ threshold` separates labeled duplicates from the rest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dupfind.quality.evaluation.curve import Curve, f1_score
from dupfind.quality.evaluation.labeled import LabeledPairs, Labels
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.encoding import cosines

Scores = NDArray[np.float32]


@dataclass(frozen=True)
class Classification:
    """How well `score ≥ threshold` separates duplicates from the rest."""

    threshold: float
    accuracy: float
    f1: float
    precision: float
    recall: float


@dataclass(frozen=True)
class PairsReport:
    """Pair classification at the threshold in force, at the best-F1 and best-accuracy thresholds."""

    pairs: int
    duplicates: int
    at_threshold: Classification
    best_f1: Classification
    best_accuracy: Classification
    average_precision: float
    roc_auc: float


def pair_scores(embedder: Embedder, pairs: LabeledPairs) -> Scores:
    """The cosine score of each pair."""
    embeddings = embedder.embed(pairs.first + pairs.second)
    return cosines(embeddings[: len(pairs.first)], embeddings[len(pairs.first) :])


def classify(scores: Scores, labels: Labels, threshold: float) -> Classification:
    """Accuracy, F1, precision and recall of `score ≥ threshold`."""
    predicted = scores >= threshold
    true_pos = int(np.sum(predicted & labels))
    kept, positives = int(predicted.sum()), int(labels.sum())
    precision, recall = true_pos / max(kept, 1), true_pos / max(positives, 1)
    accuracy = float(np.mean(predicted == labels))
    return Classification(float(threshold), accuracy, f1_score(true_pos, kept, positives), precision, recall)


def evaluate_pairs(scores: Scores, labels: Labels, threshold: float) -> PairsReport:
    """Pair classification figures as `BinaryClassificationEvaluator` (cosine) computes them."""
    curve = Curve.of(scores, labels, int(labels.sum()))
    return PairsReport(
        pairs=len(scores),
        duplicates=int(labels.sum()),
        at_threshold=classify(scores, labels, threshold),
        best_f1=classify(scores, labels, curve.best_f1()[0]),
        best_accuracy=classify(scores, labels, curve.best_accuracy(len(scores))),
        average_precision=curve.average_precision(),
        roc_auc=curve.roc_auc(len(scores)),
    )


def best_f1(scores: Scores, labels: Labels) -> Classification:
    """The pair classification at the threshold of best F1 (midway between two scores)."""
    return classify(scores, labels, Curve.of(scores, labels, int(labels.sum())).best_f1()[0])
