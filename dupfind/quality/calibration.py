"""Calibrating a model's thresholds on labeled data, and storing them beside its weights."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dupfind.errors import DupfindError
from dupfind.quality.evaluation.labeled import GoldClusters, LabeledPairs, Labels
from dupfind.quality.evaluation.mining import MINING_TOP_K, rank_candidates
from dupfind.quality.evaluation.pairs import Scores, best_f1, pair_scores
from dupfind.thresholds import Thresholds, save_thresholds
from dupfind.vectors.embedder import Embedder
from dupfind.vectors.encoding import Embeddings
from dupfind.vectors.model import THRESHOLDS_FILE


@dataclass(frozen=True)
class Calibration:
    """The best-F1 threshold of one kind (`pair` or `mining`, as in `Thresholds`) found on one labeled file."""

    kind: str
    threshold: float
    f1: float
    precision: float
    recall: float
    source: str
    rows: int
    top_k: int | None = None
    threshold_range: tuple[float, float] | None = None  # 90 % bootstrap interval (pairs only)
    f1_range: tuple[float, float] | None = None
    warnings: tuple[str, ...] = ()


def calibrate_pairs(scores: Scores, labels: Labels, source: str) -> Calibration:
    """The pair threshold of best F1 on labeled pairs, with bootstrap intervals of the threshold and of F1, and
    warnings when the labels are too few or too one-sided to trust."""
    from dupfind.quality.labeling import estimate

    best = best_f1(scores, labels)
    found = estimate(scores, labels, np.random.default_rng(0))
    return Calibration(
        "pair",
        best.threshold,
        best.f1,
        best.precision,
        best.recall,
        source,
        len(scores),
        threshold_range=(found.low, found.high),
        f1_range=(found.f1_low, found.f1_high),
        warnings=found.warnings,
    )


def calibrate_mining(
    embeddings: Embeddings, clusters: NDArray[np.int64], source: str, top_k: int = MINING_TOP_K
) -> Calibration:
    """The mining threshold of best F1 over the top-k candidates of clustered questions."""
    best = rank_candidates(embeddings, clusters, top_k).best_f1
    return Calibration("mining", best.threshold, best.f1, best.precision, best.recall, source, len(clusters), top_k)


def detect_kind(source: str, columns: Iterable[object], pair_columns: Sequence[str], cluster_col: str) -> str:
    """What a file holds, told by its columns: labeled `pairs`, or questions with a gold cluster (`mining`)."""
    names = {str(column) for column in columns}
    if set(pair_columns) <= names:
        return "pairs"
    if cluster_col in names:
        return "mining"
    raise DupfindError(
        f"{source}: neither labeled pairs ({', '.join(pair_columns)}) nor gold clusters ({cluster_col}); "
        "name the columns (--question1-col, --cluster-col, ...) or use --kind"
    )


def calibrate_all(
    embedder: Embedder, inputs: Sequence[tuple[str, LabeledPairs | GoldClusters]], top_k: int = MINING_TOP_K
) -> list[Calibration]:
    """The best-F1 threshold of each labeled file: the pair threshold of pairs, the mining one of gold clusters."""
    calibrations = []
    for source, data in inputs:
        if isinstance(data, LabeledPairs):
            calibrations.append(calibrate_pairs(pair_scores(embedder, data), data.labels, source))
        else:
            calibrations.append(calibrate_mining(embedder.embed(data.texts), data.clusters, source, top_k))
    return calibrations


def apply(thresholds: Thresholds, calibrations: Sequence[Calibration]) -> Thresholds:
    """The thresholds with the calibrated ones replaced."""
    for calibration in calibrations:
        thresholds = replace(thresholds, **{calibration.kind: calibration.threshold})
    return thresholds


def check_writable(model_dir: Path) -> None:
    """Fail before the long work when the thresholds could not be stored beside the model."""
    if not os.access(model_dir, os.W_OK):
        raise DupfindError(
            f"{model_dir}: cannot write {THRESHOLDS_FILE} there; copy the model to a folder you can write, "
            "or print the thresholds with --dry-run"
        )


def store_calibration(
    model_dir: Path, current: Thresholds, calibrations: Sequence[Calibration], precision: str = "fp32"
) -> Path:
    """Write the thresholds calibrated at `precision` beside a model's weights, keeping the record of earlier
    calibrations (and the thresholds of the other precisions)."""
    details = _previous_details(model_dir / THRESHOLDS_FILE, precision)
    for calibration in calibrations:
        record = asdict(calibration)
        details[record.pop("kind")] = record
    try:
        return save_thresholds(model_dir, apply(current, calibrations), details, precision)
    except OSError as exc:
        raise DupfindError(
            f"{model_dir}: cannot write {THRESHOLDS_FILE} ({exc.strerror or exc}); "
            "copy the model to a folder you can write and calibrate the copy"
        ) from exc


def _previous_details(file: Path, precision: str) -> dict[str, object]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        details = (data if precision == "fp32" else data.get(precision, {})).get("calibration")
    except (OSError, ValueError, AttributeError):
        return {}
    return details if isinstance(details, dict) else {}


def thresholds_from_holdout(pair_threshold: float, base: Thresholds) -> Thresholds:
    """A trained model's thresholds: the held-out best-F1 pair threshold; mining keeps the base model's offset.

    The held-out questions are too few to calibrate mining: with fewer distractors than a real corpus,
    the best mining threshold comes out close to the pair threshold.
    """
    return Thresholds(pair=pair_threshold, mining=min(1.0, pair_threshold + base.mining - base.pair))
