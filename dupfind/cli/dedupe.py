"""`dupfind dedupe`: the input without its duplicates, one question kept per group."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.clusters import ClusterTopKOption, MethodOption, group_questions
from dupfind.cli.common import (
    BackendOption,
    BatchSizeOption,
    EncodingOption,
    FormatInOption,
    IdColOption,
    ModelOption,
    QuietOption,
    SkipBadLinesOption,
    TextColOption,
    ThresholdOption,
    command,
    info,
)
from dupfind.cli.search import Reader
from dupfind.clustering import DEFAULT_CLUSTER_TOP_K, DEFAULT_METHOD
from dupfind.encoding import DEFAULT_BATCH_SIZE

if TYPE_CHECKING:
    import pandas as pd

    from dupfind.dedupe import Deduplicated
    from dupfind.tables import Questions


def _same_format(file: str, output: str | None, output_format: str | None, format_in: str | None) -> str:
    """`--format`, else the output file's extension, else the input's format."""
    from dupfind.errors import DupfindError
    from dupfind.tables import OUTPUT_FORMATS, format_from_path

    guessed = output_format or (format_from_path(output) if output not in (None, "-") else None)
    guessed = guessed or format_in or (format_from_path(file) if file != "-" else None)
    if guessed is None:
        raise DupfindError(f"{file}: cannot tell the output format; use --format or --format-in")
    if guessed not in (*OUTPUT_FORMATS, "txt"):
        raise DupfindError(f"unknown output format '{guessed}' (choose from {', '.join(OUTPUT_FORMATS)}, txt)")
    return guessed


def map_frame(questions: Questions, result: Deduplicated) -> pd.DataFrame:
    """Each removed question with the kept question standing for it: `removed_id, kept_id, score, …`."""
    import numpy as np
    import pandas as pd

    return pd.DataFrame(
        {
            "removed_id": [questions.ids[i] for i in result.removed],
            "kept_id": [questions.ids[i] for i in result.kept_for],
            "score": np.round(result.scores.astype(np.float64), 6),
            "removed_question": [questions.texts[i] for i in result.removed],
            "kept_question": [questions.texts[i] for i in result.kept_for],
        }
    )


@command("dedupe")
def dedupe(
    file: Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON, Parquet or text file; - for stdin.")],
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write here [default: stdout], in the input's format.")
    ] = None,
    keep: Annotated[
        str, typer.Option("--keep", help="Row kept per group: first, longest or central (the representative).")
    ] = "first",
    map_path: Annotated[
        str | None, typer.Option("--map", help="Write removed id → kept id with the score (csv, jsonl, …).")
    ] = None,
    output_format: Annotated[
        str | None, typer.Option("--format", "-f", help="csv, tsv, jsonl, json, parquet or txt [default: as input].")
    ] = None,
    threshold: ThresholdOption = None,
    method: MethodOption = DEFAULT_METHOD,
    top_k: ClusterTopKOption = DEFAULT_CLUSTER_TOP_K,
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
    """Remove duplicate questions, keeping one per group, every column and the input order.

    Blank questions are kept untouched.

    Example: dupfind dedupe tickets.csv -o unique.csv --keep longest --map removed.csv
    """
    import numpy as np

    from dupfind.dedupe import check_keep, deduplicate
    from dupfind.tables import output_format as pick_format
    from dupfind.tables import write_rows

    check_keep(keep)
    fmt = _same_format(file, output, output_format, format_in)
    map_fmt = pick_format(map_path, None, False) if map_path is not None else None
    reader = Reader(text_col, id_col, format_in, encoding, skip_bad_lines, quiet)
    questions, groups, embeddings = group_questions(file, reader, threshold, method, top_k, model, backend, batch_size)
    result = deduplicate(groups, questions.texts, embeddings, keep)
    kept_rows = np.delete(np.arange(len(questions.frame)), questions.rows[result.removed])
    write_rows(questions, kept_rows, output, fmt)
    if map_path is not None and map_fmt is not None:
        from dupfind.tables import write_table

        write_table(map_frame(questions, result), map_path, map_fmt)
    blank = f"; {questions.skipped_blank} blank rows kept as they are" if questions.skipped_blank else ""
    sizes = groups.sizes
    info(
        f"{len(questions.frame)} rows in, {len(kept_rows)} out: {len(result.removed)} duplicates removed from "
        f"{int((sizes > 1).sum())} groups, the largest of {int(sizes.max())}{blank}",
        quiet,
    )
