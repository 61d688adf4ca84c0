"""Fitting the re-rank score's fusion: a logistic regression of the labels on the bi-encoder's cosine and the
cross-encoder's logit, on a held-out split, that never ranks that split's pairs worse than the cosine alone."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dupfind.quality.evaluation.curve import Curve
from dupfind.thresholds import LOGIT_LIMIT, Fusion

PENALTY = 1e-3  # L2 on the two weights: keeps the fit finite when a signal separates the labels


def fit_fusion(cosines: NDArray[np.float32], probabilities: NDArray[np.float32], labels: NDArray[np.bool_]) -> Fusion:
    """The fusion of both signals fitted on these pairs; when it ranks them worse (average precision) than the
    cosine alone, the logistic model of the cosine alone (logit weight 0), which ranks them as the cosine does."""
    p = np.asarray(probabilities, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logits = np.clip(np.log(p) - np.log1p(-p), -LOGIT_LIMIT, LOGIT_LIMIT)
    cosine = np.asarray(cosines, dtype=np.float64)
    both = _logistic(np.column_stack([cosine, logits]), labels)
    fused = Fusion(both[0], both[1], both[2])
    alone = _logistic(cosine[:, None], labels)
    by_cosine = Fusion(max(alone[0], 1e-6), 0.0, alone[1])
    gold = int(labels.sum())
    if (
        Curve.of(fused.score(cosines, probabilities), labels, gold).average_precision()
        < Curve.of(np.asarray(cosines, dtype=np.float32), labels, gold).average_precision()
    ):
        return by_cosine
    return fused


def _logistic(features: NDArray[np.float64], labels: NDArray[np.bool_], steps: int = 100) -> list[float]:
    """Weights then bias of an L2-penalised (weights only) logistic regression, by Newton's method."""
    x = np.column_stack([features, np.ones(len(features))])
    y = labels.astype(np.float64)
    penalty = np.diag([PENALTY] * features.shape[1] + [0.0])
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        gradient = x.T @ (p - y) + penalty @ w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.max(np.abs(step)) < 1e-9:
            break
    return [float(value) for value in w]
