"""Calibrating a model's thresholds on labelled data, and storing them beside its weights."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dupfind.encoding import Embeddings
from dupfind.errors import DupfindError
from dupfind.evaluation import MINING_TOP_K, Labels, Scores, best_f1, rank_candidates
from dupfind.model import THRESHOLDS_FILE, Thresholds, save_thresholds


@dataclass(frozen=True)
class Calibration:
    """The best-F1 threshold of one kind (`pair` or `mining`, as in `Thresholds`) found on one labelled file."""

    kind: str
    threshold: float
    f1: float
    precision: float
    recall: float
    source: str
    rows: int
    top_k: int | None = None


def calibrate_pairs(scores: Scores, labels: Labels, source: str) -> Calibration:
    """The pair threshold of best F1 on labelled pairs."""
    best = best_f1(scores, labels)
    return Calibration("pair", best.threshold, best.f1, best.precision, best.recall, source, len(scores))


def calibrate_mining(
    embeddings: Embeddings, clusters: NDArray[np.int64], source: str, top_k: int = MINING_TOP_K
) -> Calibration:
    """The mining threshold of best F1 over the top-k candidates of clustered questions."""
    best = rank_candidates(embeddings, clusters, top_k).best_f1
    return Calibration("mining", best.threshold, best.f1, best.precision, best.recall, source, len(clusters), top_k)


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


def store_calibration(model_dir: Path, current: Thresholds, calibrations: Sequence[Calibration]) -> Path:
    """Write the calibrated thresholds beside a model's weights, keeping the record of earlier calibrations."""
    details = _previous_details(model_dir / THRESHOLDS_FILE)
    for calibration in calibrations:
        record = asdict(calibration)
        details[record.pop("kind")] = record
    try:
        return save_thresholds(model_dir, apply(current, calibrations), details)
    except OSError as exc:
        raise DupfindError(
            f"{model_dir}: cannot write {THRESHOLDS_FILE} ({exc.strerror or exc}); "
            "copy the model to a folder you can write and calibrate the copy"
        ) from exc


def _previous_details(file: Path) -> dict[str, object]:
    try:
        details = json.loads(file.read_text(encoding="utf-8")).get("calibration")
    except (OSError, ValueError, AttributeError):
        return {}
    return details if isinstance(details, dict) else {}
