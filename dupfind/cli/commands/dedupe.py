"""`dupfind dedupe`: the input without its duplicates, one question kept per group."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.app import command
from dupfind.cli.input_options import input_options
from dupfind.cli.model_options import EmbedderOptions, RerankOptions, embedder_options, rerank_options
from dupfind.cli.options import FileArgument, MethodOption, QuietOption, ThresholdOption, TopKOption, check_choice
from dupfind.cli.output import info
from dupfind.cli.pipelines import check_group_options, group_questions, question_columns, row_columns
from dupfind.pairs.clustering import DEFAULT_CLUSTER_TOP_K, DEFAULT_METHOD

if TYPE_CHECKING:
    from dupfind.io.questions import QuestionReader, Questions


@command("dedupe")
@input_options
@embedder_options
@rerank_options
def dedupe(
    file: FileArgument,
    reader: QuestionReader,
    embedding: EmbedderOptions,
    reranking: RerankOptions,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write here [default: stdout], in the input's format.")
    ] = None,
    keep: Annotated[
        str, typer.Option("--keep", help="Row kept per group: first, longest or central (the representative).")
    ] = "first",
    map_path: Annotated[
        str | None,
        typer.Option(
            "--map", help="Write removed id → kept id with the score (csv, jsonl, …; .html: a page to review)."
        ),
    ] = None,
    output_format: Annotated[
        str | None, typer.Option("--format", "-f", help="csv, tsv, jsonl, json, parquet or txt [default: as input].")
    ] = None,
    threshold: ThresholdOption = None,
    method: MethodOption = DEFAULT_METHOD,
    top_k: TopKOption = DEFAULT_CLUSTER_TOP_K,
    quiet: QuietOption = False,
) -> None:
    """Remove duplicate questions, keeping one per group, every column and the input order.

    Blank questions are kept untouched.

    Example: dupfind dedupe tickets.csv -o unique.csv --keep longest --map removed.csv
    """
    import numpy as np

    from dupfind.errors import DupfindError
    from dupfind.io.destinations import check_destination
    from dupfind.io.formats import output_format as choose_format
    from dupfind.io.writable import check_writable_columns
    from dupfind.io.write import write_rows, write_table
    from dupfind.pairs.dedupe import KEEP_POLICIES, deduplicate

    check_choice("--keep", keep, KEEP_POLICIES)
    check_group_options(threshold, method, top_k)
    fmt = choose_format(output, output_format, False, like_input=reader.format_in or file)
    map_fmt = choose_format(map_path, None, False) if map_path is not None else None
    check_destination(output, [file])
    check_destination(map_path, [file])
    if (
        map_path is not None
        and output is not None
        and output != "-"
        and Path(map_path).resolve() == Path(output).resolve()
    ):
        raise DupfindError(f"{map_path}: --map and --output name the same file")

    def check(questions: Questions) -> None:
        if questions.table is None or fmt != questions.table.fmt:  # else its rows are written back as they were
            rows = row_columns(questions)
            kept = {questions.text_col: rows[questions.text_col]} if fmt == "txt" else rows
            check_writable_columns(kept, fmt, output, file)
        if map_fmt is not None:
            check_writable_columns(question_columns(questions, reader.id_col or "id"), map_fmt, map_path, file)

    questions, groups, embeddings = group_questions(
        file, reader, embedding, reranking, threshold, method, top_k, quiet, check
    )
    result = deduplicate(groups, questions.texts, embeddings, keep)
    kept_rows = np.delete(np.arange(len(questions.frame)), questions.rows[result.removed])
    write_rows(questions, kept_rows, output, fmt)
    if map_path is not None and map_fmt is not None:
        from dupfind.cli.pages import page

        facts = [("method", method), ("kept", keep), ("rows in", f"{len(questions.frame):,}")]
        shown = page(embedding, embedding.resolve().name, groups.rule, facts=facts)
        write_table(result.map_frame(questions.ids, questions.texts), map_path, map_fmt, page=shown)
    blank = f"; {questions.skipped_blank} blank rows kept as they are" if questions.skipped_blank else ""
    sizes = groups.sizes
    info(
        f"{len(questions.frame)} rows in, {len(kept_rows)} out: {len(result.removed)} duplicates removed from "
        f"{int((sizes > 1).sum())} groups, the largest of {int(sizes.max())}{blank}",
        quiet,
    )
