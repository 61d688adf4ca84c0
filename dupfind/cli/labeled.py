"""Reading labeled files on the command line (pairs with a duplicate label, questions with a gold cluster) and
saying what was read and skipped; the options of the commands that read them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.input_options import TableReader, read_frame
from dupfind.cli.output import info, report_skipped

if TYPE_CHECKING:
    import pandas as pd

    from dupfind.quality.evaluation.labeled import GoldClusters, LabeledPairs

# Old spellings of renamed options, accepted (hidden) for one release.
PAIR_COLUMN_ALIASES = {"--q1-col": "--question1-col", "--q2-col": "--question2-col"}

LabeledFileArgument = Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON or Parquet file; - for stdin.")]
CandidatesTopKOption = Annotated[
    int, typer.Option("--top-k", "-k", help="Candidate neighbours per question, as `mine --top-k`.")
]


def labeled_pairs(
    source: str, frame: pd.DataFrame, bad_lines: int, columns: Sequence[str], quiet: bool
) -> LabeledPairs:
    """The labeled pairs of a table read from `source` (`bad_lines` malformed lines skipped), said on stderr."""
    from dupfind.quality.evaluation.labeled import pairs_from_frame

    pairs = pairs_from_frame(source, frame, columns)
    blank = f"{pairs.skipped_blank} pairs with a blank question" if pairs.skipped_blank else None
    report_skipped(source, bad_lines, blank)
    info(f"Read {len(pairs.labels)} pairs ({int(pairs.labels.sum())} duplicates) from {source}", quiet)
    return pairs


def gold_clusters(
    source: str, frame: pd.DataFrame, bad_lines: int, text_col: str | None, cluster_col: str, quiet: bool
) -> GoldClusters:
    """The clustered questions of a table read from `source` (`bad_lines` malformed lines skipped), said on
    stderr."""
    from dupfind.quality.evaluation.labeled import clusters_from_frame

    clustered = clusters_from_frame(source, frame, text_col, cluster_col)
    blank = f"{clustered.skipped_blank} blank questions" if clustered.skipped_blank else None
    report_skipped(source, bad_lines, blank)
    info(f"Read {len(clustered.texts)} questions in {clustered.clusters.max() + 1} clusters from {source}", quiet)
    return clustered


def read_labeled_pairs(table: TableReader, source: str, columns: Sequence[str], quiet: bool) -> LabeledPairs:
    """Read a file of labeled pairs with the command's input options."""
    return labeled_pairs(source, *read_frame(table, source), columns, quiet)


def read_gold_clusters(
    table: TableReader, source: str, text_col: str | None, cluster_col: str, quiet: bool
) -> GoldClusters:
    """Read a file of clustered questions with the command's input options."""
    return gold_clusters(source, *read_frame(table, source), text_col, cluster_col, quiet)
