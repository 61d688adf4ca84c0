"""`dupfind clusters`: every question with its group of duplicates."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from dupfind.cli.app import command
from dupfind.cli.input_options import input_options
from dupfind.cli.model_options import EmbedderOptions, RerankOptions, embedder_options, rerank_options
from dupfind.cli.options import (
    FileArgument,
    FormatOption,
    MethodOption,
    OutputOption,
    QuietOption,
    ThresholdOption,
    TopKOption,
)
from dupfind.cli.pipelines import check_group_options, group_questions, question_columns, row_columns
from dupfind.pairs.clustering import DEFAULT_CLUSTER_TOP_K, DEFAULT_METHOD

if TYPE_CHECKING:
    from dupfind.io.questions import QuestionReader, Questions


@command("clusters")
@input_options
@embedder_options
@rerank_options
def clusters(
    file: FileArgument,
    reader: QuestionReader,
    embedding: EmbedderOptions,
    reranking: RerankOptions,
    threshold: ThresholdOption = None,
    method: MethodOption = DEFAULT_METHOD,
    top_k: TopKOption = DEFAULT_CLUSTER_TOP_K,
    output: OutputOption = None,
    output_format: FormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Group duplicate questions: every input row with cluster_id, cluster_size and representative.

    Blank questions keep their row, with empty cluster columns. An input that has a column of one of those names
    is refused (it would be replaced): rename it.

    Example: dupfind clusters questions.csv --id-col id -o clusters.csv
    """
    import numpy as np

    from dupfind.cli.pages import page
    from dupfind.io.destinations import check_destination
    from dupfind.io.formats import output_format as choose_format
    from dupfind.io.writable import check_writable_columns
    from dupfind.io.write import write_rows
    from dupfind.pairs.clustering import check_columns_free

    check_group_options(threshold, method, top_k)
    fmt = choose_format(output, output_format, sys.stdout.isatty())
    check_destination(output, [file])

    def check(questions: Questions) -> None:
        check_columns_free(questions)
        representatives = question_columns(questions)["id"].rename("representative")
        kept = {**row_columns(questions), "representative": representatives}
        check_writable_columns(kept, fmt, output, file)

    questions, groups, _ = group_questions(file, reader, embedding, reranking, threshold, method, top_k, quiet, check)
    model, facts = embedding.resolve().name, [("method", method)]
    shown = page(embedding, model, groups.rule, facts=facts, text_col=questions.text_col, ids=_row_ids(questions))
    every_row = np.arange(len(questions.frame))
    write_rows(questions, every_row, output, fmt, groups.columns(questions), "Groups of duplicates", shown)


def _row_ids(questions: Questions) -> list[object]:
    """Each row's id, for a page of groups (None: a blank row)."""
    ids: list[object] = [None] * len(questions.frame)
    for row, value in zip(questions.rows.tolist(), questions.ids, strict=True):
        ids[row] = value
    return ids
