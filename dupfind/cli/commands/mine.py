"""`dupfind mine`: duplicate pairs within one file, or of a file's questions with a corpus."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.app import command
from dupfind.cli.engine_options import EngineOptions, engine_options
from dupfind.cli.input_options import input_options, read_questions
from dupfind.cli.model_options import EmbedderOptions, RerankOptions, embedder_options, rerank_options
from dupfind.cli.options import (
    FileArgument,
    FormatOption,
    QuietOption,
    ThresholdOption,
    TopKOption,
    check_choice,
    check_range,
)
from dupfind.cli.output import embedding_progress, info, progress_bar, report_input, rerank_progress, stage, warn
from dupfind.cli.pipelines import corpus_rule, load_corpus
from dupfind.pairs.mining import DEFAULT_TOP_K

if TYPE_CHECKING:
    from dupfind.io.questions import QuestionReader


@command("mine")
@input_options
@embedder_options
@rerank_options
@engine_options
def mine(
    file: FileArgument,
    reader: QuestionReader,
    embedding: EmbedderOptions,
    reranking: RerankOptions,
    engine: EngineOptions,
    threshold: ThresholdOption = None,
    top_k: TopKOption = DEFAULT_TOP_K,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Only the N best pairs.")] = None,
    against: Annotated[
        str | None,
        typer.Option("--against", help="Only pairs of a FILE question with one of this corpus (file or index)."),
    ] = None,
    also_within: Annotated[bool, typer.Option("--also-within", help="With --against: pairs within FILE too.")] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Write to this file (format from extension), or to a FOLDER/ as Parquet parts of 1M pairs.",
        ),
    ] = None,
    output_format: FormatOption = None,
    index: Annotated[
        str, typer.Option("--index", help="exact, ann (approximate: faster on large files) or auto.")
    ] = "auto",
    quiet: QuietOption = False,
) -> None:
    """Find pairs of duplicate questions in a file, best first.

    With --engine ray, FILE may also be a folder or a glob of shards. Very many pairs are best written to a
    folder (-o pairs/): Parquet parts, best pairs first, that pandas, Arrow, Ray Data and DuckDB read as one table.

    Example: dupfind mine questions.csv --limit 20
    """
    from dupfind.errors import DupfindError
    from dupfind.io.destinations import check_destination
    from dupfind.io.formats import output_format as choose_format
    from dupfind.io.write import write_table
    from dupfind.pairs.mining import INDEXES, mine_texts

    check_range("--threshold", threshold, -1, 1)
    check_range("--top-k", top_k, 1)
    check_range("--limit", limit, 0)
    check_choice("--index", index, INDEXES)
    if also_within and against is None:
        raise DupfindError("--also-within needs --against CORPUS")
    fmt = choose_format(output, output_format, sys.stdout.isatty())
    check_destination(output, [file] + ([against] if against else []), parts=True)
    if engine.on_ray:
        if reranking.enabled:
            raise DupfindError("--rerank is local only; drop --engine ray")
        _mine_on_ray(file, reader, embedding, engine, threshold, top_k, limit, output, fmt, index, against, quiet)
        return
    if against is not None:
        _mine_against(
            file, against, also_within, reader, embedding, reranking, threshold, top_k, limit, output, fmt, index, quiet
        )
        return
    rule = embedding.rule("mining", embedding.resolve(), reranking, threshold)
    questions = read_questions(reader, file, quiet)
    embedder = embedding.load()
    with stage("count tokens"):
        tokens = embedder.count_tokens(questions.texts)
    _warn_long(embedder.count_truncated(tokens), embedder.max_seq_length)
    with (
        embedding_progress(embedder, "Encoding", quiet) as progressing,
        progress_bar("Mining", quiet) as mining,
        rerank_progress(reranking.load(embedding), quiet) as reranker,
        stage("encode and mine"),
    ):
        mined = mine_texts(progressing, questions.texts, rule, top_k, index, tokens, mining, reranker)
    _warn_truncated(mined.truncated, top_k, rule.cosine)
    frame = mined.head(limit).to_frame(questions.ids, questions.texts)
    with stage("write"):
        write_table(frame, output, fmt, title=f"Duplicate pairs ({mined.describe()})")
    info(f"{len(mined)} pairs with {mined.describe()} among {len(questions)} questions", quiet)


def _mine_on_ray(
    file: str,
    reader: QuestionReader,
    embedding: EmbedderOptions,
    engine: EngineOptions,
    threshold: float | None,
    top_k: int,
    limit: int | None,
    output: str | None,
    fmt: str,
    index: str,
    against: str | None,
    quiet: bool,
) -> None:
    """`mine --engine ray`: read, encode and mine on a Ray cluster; written like `mine`'s."""
    from dupfind.errors import DupfindError
    from dupfind.io.write import write_table
    from dupfind.ray.mine import mine_texts_ray
    from dupfind.ray.read import read_questions_ray

    if against is not None:
        raise DupfindError("--against is local only; drop --engine ray")
    if index == "exact":
        raise DupfindError("--engine ray mines with the inverted-file index (--index ann); --index exact is local only")
    work_dir = engine.work_folder(output)
    counting = engine.check(file, embedding)
    ref = embedding.resolve()
    threshold = embedding.thresholds_for(ref).mining if threshold is None else threshold
    with engine.session(quiet):
        with stage("read"):
            questions = read_questions_ray(file, reader)
        report_input(questions, quiet)
        embedder = counting.load()
        with stage("count tokens"):
            tokens = embedder.count_tokens(questions.texts)
        _warn_long(embedder.count_truncated(tokens), embedder.max_seq_length)
        spec = engine.encoder_spec(embedding, embedder)
        with (
            progress_bar("Encoding on Ray", quiet) as encoding,
            progress_bar("Mining on Ray (cells)", quiet) as mining,
            stage("encode and mine on Ray"),
        ):
            found = mine_texts_ray(
                questions.texts,
                spec,
                work_dir,
                threshold,
                top_k,
                engine.workers(),
                progress=encoding,
                tokens=tokens,
                mining_progress=mining,
            )
    mined = found.pairs
    _warn_truncated(mined.truncated, top_k, threshold)
    frame = mined.head(limit).to_frame(questions.ids, questions.texts)
    with stage("write"):
        write_table(frame, output, fmt, title=f"Duplicate pairs (cosine ≥ {threshold:.3f})")
    info(
        f"{len(mined)} pairs with cosine ≥ {threshold:.3f} among {len(questions)} questions "
        f"({found.encoded} of {found.distinct} distinct questions encoded now, the rest read from {work_dir})",
        quiet,
    )


def _warn_long(truncated: int, max_seq_length: int) -> None:
    if truncated:
        warn(f"{truncated} questions are longer than the model's {max_seq_length} tokens; only their start is used")


def _mine_against(
    file: str,
    against: str,
    also_within: bool,
    reader: QuestionReader,
    embedding: EmbedderOptions,
    reranking: RerankOptions,
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
    from dupfind.io.write import write_table
    from dupfind.pairs.corpus import mine_against_corpus

    stored, rule = corpus_rule(against, embedding, reranking, "mining", threshold)
    corpus, embedder = load_corpus(against, stored, reader, embedding, quiet)
    questions = read_questions(reader, file, quiet)
    with (
        embedding_progress(embedder, f"Encoding {file}", quiet) as progressing,
        rerank_progress(reranking.load(embedding), quiet) as reranker,
    ):
        found = mine_against_corpus(
            progressing, questions.ids, questions.texts, corpus, rule, top_k, also_within, index, reranker
        )
    pairs = found.pairs
    _warn_truncated(pairs.truncated, top_k, rule.cosine)
    ids, texts = [*questions.ids, *corpus.ids], [*questions.texts, *corpus.texts]
    frame = pairs.head(limit).to_frame(ids, texts)
    write_table(frame, output, fmt, title=f"Duplicate pairs with {against} ({pairs.describe()})")
    if not rule.reranks:
        within = f", {found.within} within {file}" if also_within else ""
        summary = f"{found.with_corpus} pairs with {pairs.describe()} with {len(corpus)} questions of {against}{within}"
    else:
        summary = f"{len(pairs)} pairs with {pairs.describe()}, with {len(corpus)} questions of {against}"
        summary += f" and within {file}" if also_within else ""
    info(summary, quiet)


def _warn_truncated(truncated: int, top_k: int, threshold: float) -> None:
    if truncated:
        warn(
            f"{truncated} questions had more than {top_k} neighbours above {threshold:.3f}; "
            f"only their best {top_k} were kept (raise --top-k)"
        )
