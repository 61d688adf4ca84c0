"""`dupfind mine`: duplicate pairs within one file, or of a file's questions with a corpus."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.common import (
    EmbedderOptions,
    FileArgument,
    FormatOption,
    OutputOption,
    QuietOption,
    ThresholdOption,
    TopKOption,
    check_choice,
    check_range,
    command,
    embedder_options,
    embedding_progress,
    info,
    input_options,
    open_corpus,
    read_questions,
    stage,
    warn,
)
from dupfind.mining import DEFAULT_TOP_K

if TYPE_CHECKING:
    from dupfind.mining import MinedPairs
    from dupfind.tables import QuestionReader


@command("mine")
@input_options
@embedder_options
def mine(
    file: FileArgument,
    reader: QuestionReader,
    embedding: EmbedderOptions,
    threshold: ThresholdOption = None,
    top_k: TopKOption = DEFAULT_TOP_K,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Only the N best pairs.")] = None,
    against: Annotated[
        str | None,
        typer.Option("--against", help="Only pairs of a FILE question with one of this corpus (file or index)."),
    ] = None,
    also_within: Annotated[bool, typer.Option("--also-within", help="With --against: pairs within FILE too.")] = False,
    output: OutputOption = None,
    output_format: FormatOption = None,
    index: Annotated[
        str, typer.Option("--index", help="exact, ann (approximate: faster on large files) or auto.")
    ] = "auto",
    quiet: QuietOption = False,
) -> None:
    """Find pairs of duplicate questions in a file, best first.

    Example: dupfind mine questions.csv --limit 20
    """
    from dupfind.errors import DupfindError
    from dupfind.mining import INDEXES, mine_texts
    from dupfind.model import load_thresholds
    from dupfind.tables import check_destination, write_table
    from dupfind.tables import output_format as choose_format

    check_range("--threshold", threshold, -1, 1)
    check_range("--top-k", top_k, 1)
    check_range("--limit", limit, 0)
    check_choice("--index", index, INDEXES)
    if also_within and against is None:
        raise DupfindError("--also-within needs --against CORPUS")
    fmt = choose_format(output, output_format, sys.stdout.isatty())
    check_destination(output, [file] + ([against] if against else []))
    if against is not None:
        _mine_against(file, against, also_within, reader, embedding, threshold, top_k, limit, output, fmt, index, quiet)
        return
    ref = embedding.resolve()
    questions = read_questions(reader, file, quiet)
    threshold = load_thresholds(ref, embedding.precision).mining if threshold is None else threshold
    embedder = embedding.load()
    with stage("count tokens"):
        tokens = embedder.count_tokens(questions.texts)
    truncated = embedder.count_truncated(tokens)
    if truncated:
        warn(
            f"{truncated} questions are longer than the model's {embedder.max_seq_length} tokens; "
            "only their start is used"
        )
    with embedding_progress(embedder, "Encoding", quiet) as progressing, stage("encode and mine"):
        mined = mine_texts(progressing, questions.texts, threshold, top_k, index=index, tokens=tokens)
    _warn_truncated(mined, top_k, threshold)
    frame = mined.head(limit).to_frame(questions.ids, questions.texts)
    with stage("write"):
        write_table(frame, output, fmt, title=f"Duplicate pairs (cosine ≥ {threshold:.3f})")
    info(f"{len(mined)} pairs with cosine ≥ {threshold:.3f} among {len(questions)} questions", quiet)


def _mine_against(
    file: str,
    against: str,
    also_within: bool,
    reader: QuestionReader,
    embedding: EmbedderOptions,
    threshold: float | None,
    top_k: int,
    limit: int | None,
    output: str | None,
    fmt: str,
    index: str,
    quiet: bool,
) -> None:
    """`mine FILE --against CORPUS`: pairs of a FILE question (`id_a`) with a CORPUS question (`id_b`),
    and pairs within FILE too with `--also-within`; written like `mine`'s."""
    from dupfind.corpus import mine_against_corpus
    from dupfind.tables import write_table

    corpus, embedder = open_corpus(against, reader, embedding, quiet)
    questions = read_questions(reader, file, quiet)
    threshold = corpus.thresholds.mining if threshold is None else threshold
    with embedding_progress(embedder, f"Encoding {file}", quiet) as progressing:
        found = mine_against_corpus(
            progressing, questions.ids, questions.texts, corpus, threshold, top_k, also_within, index
        )
    _warn_truncated(found.pairs, top_k, threshold)
    frame = found.pairs.head(limit).to_frame([*questions.ids, *corpus.ids], [*questions.texts, *corpus.texts])
    write_table(frame, output, fmt, title=f"Duplicate pairs with {against} (cosine ≥ {threshold:.3f})")
    within = f", {found.within} within {file}" if also_within else ""
    info(
        f"{found.with_corpus} pairs with cosine ≥ {threshold:.3f} with {len(corpus)} questions of {against}{within}",
        quiet,
    )


def _warn_truncated(mined: MinedPairs, top_k: int, threshold: float) -> None:
    if mined.truncated:
        warn(
            f"{mined.truncated} questions had more than {top_k} neighbours above {threshold:.3f}; "
            f"only their best {top_k} were kept (raise --top-k)"
        )
