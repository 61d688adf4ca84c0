"""`dupfind clusters`: every question with its group of duplicates."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.common import (
    BackendOption,
    BatchSizeOption,
    EncodingOption,
    FormatInOption,
    FormatOption,
    IdColOption,
    ModelOption,
    OutputOption,
    QuietOption,
    SkipBadLinesOption,
    TextColOption,
    ThresholdOption,
    command,
    info,
    progress_bar,
)
from dupfind.cli.search import Reader
from dupfind.clustering import DEFAULT_CLUSTER_TOP_K, DEFAULT_METHOD
from dupfind.encoding import DEFAULT_BATCH_SIZE

if TYPE_CHECKING:
    import pandas as pd

    from dupfind.clustering import Clusters
    from dupfind.encoding import Embeddings
    from dupfind.tables import Questions

MethodOption = Annotated[
    str,
    typer.Option(
        "--method",
        help="communities: every member is a duplicate of the group's centre; "
        "components: duplicates of duplicates join (chains).",
    ),
]
ClusterTopKOption = Annotated[int, typer.Option("--top-k", "-k", help="Neighbours considered per question.")]


def group_questions(
    file: str,
    reader: Reader,
    threshold: float | None,
    method: str,
    top_k: int,
    model: str | None,
    backend: str | None,
    batch_size: int,
) -> tuple[Questions, Clusters, Embeddings]:
    """Read a file and group its questions into duplicates (shared by `clusters` and `dedupe`)."""
    from dupfind.clustering import check_method, cluster_texts
    from dupfind.encoding import load_encoder
    from dupfind.mining import check_threshold
    from dupfind.model import load_thresholds, resolve_model

    check_method(method)
    if threshold is not None:
        check_threshold(threshold)
    ref = resolve_model(model)
    questions = reader.load(file)
    if threshold is None:
        threshold = load_thresholds(ref).mining
    encoder = load_encoder(model, backend)
    with progress_bar("Encoding", reader.quiet) as progress:
        clusters, embeddings = cluster_texts(encoder, questions.texts, threshold, method, top_k, batch_size, progress)
    sizes = clusters.sizes
    info(
        f"{len(questions)} questions in {len(clusters)} groups (cosine ≥ {threshold:.3f}, {method}): "
        f"{int((sizes > 1).sum())} groups of duplicates, the largest of {int(sizes.max())}",
        reader.quiet,
    )
    return questions, clusters, embeddings


def clusters_frame(questions: Questions, clusters: Clusters) -> pd.DataFrame:
    """The whole input with `cluster_id` (from 1), `cluster_size` and `representative` (an id); blank rows get nulls."""
    import pandas as pd

    frame = questions.frame.copy()
    count = len(frame)
    cluster_id = pd.array([pd.NA] * count, dtype="Int64")
    cluster_size = pd.array([pd.NA] * count, dtype="Int64")
    representative: list[object] = [None] * count
    cluster_id[questions.rows] = clusters.labels + 1
    cluster_size[questions.rows] = clusters.sizes[clusters.labels]
    for row, label in zip(questions.rows.tolist(), clusters.labels.tolist(), strict=True):
        representative[row] = questions.ids[int(clusters.representatives[label])]
    frame["cluster_id"] = cluster_id
    frame["cluster_size"] = cluster_size
    frame["representative"] = pd.Series(representative, index=frame.index, dtype=object)
    return frame


@command("clusters")
def clusters(
    file: Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON, Parquet or text file; - for stdin.")],
    threshold: ThresholdOption = None,
    method: MethodOption = DEFAULT_METHOD,
    top_k: ClusterTopKOption = DEFAULT_CLUSTER_TOP_K,
    output: OutputOption = None,
    output_format: FormatOption = None,
    text_col: TextColOption = None,
    id_col: IdColOption = None,
    format_in: FormatInOption = None,
    encoding: EncodingOption = "utf-8",
    skip_bad_lines: SkipBadLinesOption = False,
    model: ModelOption = None,
    backend: BackendOption = None,
    batch_size: BatchSizeOption = DEFAULT_BATCH_SIZE,
    quiet: QuietOption = False,
) -> None:
    """Group duplicate questions: every input row with cluster_id, cluster_size and representative.

    Blank questions keep their row, with empty cluster columns.

    Example: dupfind clusters questions.csv --id-col id -o clusters.csv
    """
    from dupfind.tables import output_format as pick_format
    from dupfind.tables import write_table

    fmt = pick_format(output, output_format, sys.stdout.isatty())
    reader = Reader(text_col, id_col, format_in, encoding, skip_bad_lines, quiet)
    questions, groups, _ = group_questions(file, reader, threshold, method, top_k, model, backend, batch_size)
    write_table(clusters_frame(questions, groups), output, fmt, title="Groups of duplicates")
