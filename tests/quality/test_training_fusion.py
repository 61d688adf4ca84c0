"""The fusion of the cosine and the cross-encoder's logit: fitted on a split, it ranks it no worse than the cosine."""

from __future__ import annotations

import numpy as np

from dupfind.quality.evaluation.curve import Curve
from dupfind.quality.training.fusion import fit_fusion


def _ap(scores: np.ndarray, labels: np.ndarray) -> float:
    return Curve.of(scores.astype(np.float32), labels, int(labels.sum())).average_precision()


def _split(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.random(600) < 0.4
    cosine = np.clip(0.8 + 0.08 * labels + rng.normal(0, 0.06, 600), -1, 1).astype(np.float32)
    return cosine, labels


def test_an_informative_logit_is_used_and_beats_the_cosine() -> None:
    cosine, labels = _split(0)
    rng = np.random.default_rng(1)
    probability = 1 / (1 + np.exp(-(3.0 * (labels - 0.5) + rng.normal(0, 1.0, len(labels)))))
    fusion = fit_fusion(cosine, probability.astype(np.float32), labels)
    assert fusion.logit > 0.5 and fusion.cosine > 0
    assert _ap(fusion.score(cosine, probability), labels) > _ap(cosine, labels) + 0.05


def test_it_cannot_lose_to_the_cosine_on_its_split() -> None:
    for seed in range(5):
        cosine, labels = _split(seed)
        rng = np.random.default_rng(seed + 100)
        noise = rng.random(len(labels)).astype(np.float32)  # a cross-encoder that knows nothing
        misleading = np.where(labels, 0.2, 0.8).astype(np.float32) * rng.random(len(labels)).astype(np.float32)
        for probability in (noise, misleading):
            fusion = fit_fusion(cosine, probability, labels)
            assert _ap(fusion.score(cosine, probability), labels) >= _ap(cosine, labels)


def test_a_saturated_probability_gives_a_finite_score() -> None:
    cosine, labels = _split(3)
    probability = labels.astype(np.float32)  # 0 and 1 exactly: a logit of +-inf, clipped
    fusion = fit_fusion(cosine, probability, labels)
    scores = fusion.score(cosine, probability)
    assert np.isfinite(scores).all() and _ap(scores, labels) == 1.0
