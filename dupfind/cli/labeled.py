"""Reading labeled files on the command line (pairs with a duplicate label, questions with a gold cluster) and
saying what was read and skipped; the options of the commands that read them, the columns as one group each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, NamedTuple

import typer

from dupfind.cli.input_options import TableReader, read_frame
from dupfind.cli.options import (
    ClusterColOption,
    LabelColOption,
    Question1ColOption,
    Question2ColOption,
    TextColOption,
    add_options,
)
from dupfind.cli.output import info, report_skipped
from dupfind.quality.evaluation.labeled import CLUSTER_COLUMN, PAIR_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from dupfind.quality.evaluation.labeled import GoldClusters, LabeledPairs

# Old spellings of renamed options, accepted (hidden) for one release.
PAIR_COLUMN_ALIASES = {"--q1-col": "--question1-col", "--q2-col": "--question2-col"}

LabeledFileArgument = Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON or Parquet file; - for stdin.")]
CandidatesTopKOption = Annotated[
    int, typer.Option("--top-k", "-k", help="Candidate neighbours per question, as `mine --top-k`.")
]


class PairColumns(NamedTuple):
    """The columns of a labeled pairs file: the two questions and the 0/1 label."""

    question1: str
    question2: str
    label: str


class ClusterColumns(NamedTuple):
    """The columns of a clustered questions file: the question (None: auto-detected) and its gold cluster."""

    text: str | None
    cluster: str


def _pair_columns(question1_col: str, question2_col: str, label_col: str) -> PairColumns:
    return PairColumns(question1_col, question2_col, label_col)


def _cluster_columns(text_col: str | None, cluster_col: str) -> ClusterColumns:
    return ClusterColumns(text_col, cluster_col)


pair_column_options = add_options(
    "pair_columns",
    {
        "question1_col": (Question1ColOption, PAIR_COLUMNS[0]),
        "question2_col": (Question2ColOption, PAIR_COLUMNS[1]),
        "label_col": (LabelColOption, PAIR_COLUMNS[2]),
    },
    _pair_columns,
)
"""Adds --question1-col, --question2-col and --label-col; the command receives `pair_columns: PairColumns`."""

cluster_column_options = add_options(
    "cluster_columns",
    {"text_col": (TextColOption, None), "cluster_col": (ClusterColOption, CLUSTER_COLUMN)},
    _cluster_columns,
)
"""Adds --text-col and --cluster-col; the command receives `cluster_columns: ClusterColumns`."""


def labeled_pairs(source: str, frame: pd.DataFrame, bad_lines: int, columns: PairColumns, quiet: bool) -> LabeledPairs:
    """The labeled pairs of a table read from `source` (`bad_lines` malformed lines skipped), said on stderr."""
    from dupfind.quality.evaluation.labeled import pairs_from_frame

    pairs = pairs_from_frame(source, frame, columns)
    blank = f"{pairs.skipped_blank} pairs with a blank question" if pairs.skipped_blank else None
    report_skipped(source, bad_lines, blank)
    info(f"Read {len(pairs.labels)} pairs ({int(pairs.labels.sum())} duplicates) from {source}", quiet)
    return pairs


def gold_clusters(
    source: str, frame: pd.DataFrame, bad_lines: int, columns: ClusterColumns, quiet: bool
) -> GoldClusters:
    """The clustered questions of a table read from `source` (`bad_lines` malformed lines skipped), said on
    stderr."""
    from dupfind.quality.evaluation.labeled import clusters_from_frame

    clustered = clusters_from_frame(source, frame, columns.text, columns.cluster)
    blank = f"{clustered.skipped_blank} blank questions" if clustered.skipped_blank else None
    report_skipped(source, bad_lines, blank)
    info(f"Read {len(clustered.texts)} questions in {clustered.clusters.max() + 1} clusters from {source}", quiet)
    return clustered


def read_labeled_pairs(table: TableReader, source: str, columns: PairColumns, quiet: bool) -> LabeledPairs:
    """Read a file of labeled pairs with the command's input options."""
    return labeled_pairs(source, *read_frame(table, source), columns, quiet)


def read_gold_clusters(table: TableReader, source: str, columns: ClusterColumns, quiet: bool) -> GoldClusters:
    """Read a file of clustered questions with the command's input options."""
    return gold_clusters(source, *read_frame(table, source), columns, quiet)
