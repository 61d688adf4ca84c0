"""Labeling candidate pairs to find a threshold: the threshold estimate with its bootstrap interval
(`estimate`), which pair to ask next (`sampling`), the labels file (`labels_file`), and the loop that asks
(`session`)."""

from dupfind.quality.labeling.estimate import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_LEVEL,
    DEFAULT_WIDTH,
    MIN_ANSWERS,
    MIN_EACH,
    Estimate,
    estimate,
    is_settled,
)
from dupfind.quality.labeling.labels_file import LABEL_COLUMNS, LabelRows, LabelsWriter, read_labels
from dupfind.quality.labeling.sampling import Sampler
from dupfind.quality.labeling.session import (
    ANSWERS,
    DEFAULT_FLOOR,
    Labeler,
    Prompt,
    Session,
    candidate_pairs,
    describe,
    distinct_pairs,
)

__all__ = [
    "ANSWERS",
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_FLOOR",
    "DEFAULT_LEVEL",
    "DEFAULT_WIDTH",
    "LABEL_COLUMNS",
    "MIN_ANSWERS",
    "MIN_EACH",
    "Estimate",
    "LabelRows",
    "Labeler",
    "LabelsWriter",
    "Prompt",
    "Sampler",
    "Session",
    "candidate_pairs",
    "describe",
    "distinct_pairs",
    "estimate",
    "is_settled",
    "read_labels",
]
