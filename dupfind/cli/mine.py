"""`dupfind mine`: duplicate pairs within one file."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from dupfind.cli.common import (
    BackendOption,
    BatchSizeOption,
    EncodingOption,
    FormatInOption,
    FormatOption,
    IdColOption,
    ModelOption,
    NoCacheOption,
    OutputOption,
    QuietOption,
    SkipBadLinesOption,
    TextColOption,
    ThresholdOption,
    command,
    info,
    progress_bar,
    report_input,
    stage,
    warn,
)
from dupfind.encoding import DEFAULT_BATCH_SIZE
from dupfind.mining import DEFAULT_TOP_K


@command("mine")
def mine(
    file: Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON, Parquet or text file; - for stdin.")],
    threshold: ThresholdOption = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Neighbours kept per question.")] = DEFAULT_TOP_K,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Only the N best pairs.")] = None,
    against: Annotated[
        str | None,
        typer.Option("--against", help="Only pairs of a FILE question with one of this corpus (file or index)."),
    ] = None,
    also_within: Annotated[bool, typer.Option("--also-within", help="With --against: pairs within FILE too.")] = False,
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
    index: Annotated[
        str, typer.Option("--index", help="exact, ann (approximate: faster on large files) or auto.")
    ] = "auto",
    no_cache: NoCacheOption = False,
    quiet: QuietOption = False,
) -> None:
    """Find pairs of duplicate questions in a file, best first.

    Example: dupfind mine questions.csv --limit 20
    """
    from dupfind.embedding_cache import EmbeddingCache, cached_encode
    from dupfind.encoding import count_truncated, load_encoder, token_counts
    from dupfind.mining import check_index, check_threshold, mine_texts, pairs_frame
    from dupfind.model import load_thresholds, resolve_model
    from dupfind.tables import load_questions, write_table
    from dupfind.tables import output_format as pick_format

    if threshold is not None:
        check_threshold(threshold)
    check_index(index)
    if limit is not None and limit < 0:
        raise typer.BadParameter("must be 0 or more", param_hint="--limit")
    fmt = pick_format(output, output_format, sys.stdout.isatty())
    if against is not None or also_within:
        from dupfind.cli.search import Reader, mine_against_corpus

        reader = Reader(text_col, id_col, format_in, encoding, skip_bad_lines, quiet)
        mine_against_corpus(
            file,
            against,
            also_within,
            threshold,
            top_k,
            limit,
            output,
            fmt,
            reader,
            model,
            backend,
            batch_size,
            index,
            not no_cache,
        )
        return
    ref = resolve_model(model)
    with stage("read"):
        questions = load_questions(file, format_in, text_col, id_col, encoding, skip_bad_lines)
    report_input(questions, quiet)
    if threshold is None:
        threshold = load_thresholds(ref).mining
    with stage("load model"):
        encoder = load_encoder(model, backend)
    with stage("count tokens"):
        tokens = token_counts(encoder, questions.texts)
    truncated = count_truncated(encoder, tokens)
    if truncated:
        max_tokens = encoder.max_seq_length
        warn(f"{truncated} questions are longer than the model's {max_tokens} tokens; only their start is used")
    with stage("encode and mine"), progress_bar("Encoding", quiet) as progress:
        cache = None if no_cache else EmbeddingCache()
        mined = mine_texts(
            encoder,
            questions.texts,
            threshold,
            top_k,
            embed=lambda texts, counts: cached_encode(encoder, texts, batch_size, progress, cache, counts),
            index=index,
            tokens=tokens,
        )
    if mined.truncated:
        warn(
            f"{mined.truncated} questions had more than {top_k} neighbours above {threshold:.3f}; "
            f"only their best {top_k} were kept (raise --top-k)"
        )
    frame = pairs_frame(mined, questions.ids, questions.texts)
    if limit is not None:
        frame = frame.head(limit)
    with stage("write"):
        write_table(frame, output, fmt, title=f"Duplicate pairs (cosine ≥ {threshold:.3f})")
    info(f"{len(mined)} pairs with cosine ≥ {threshold:.3f} among {len(questions)} questions", quiet)
