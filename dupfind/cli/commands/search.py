"""`dupfind search`: the nearest questions of a corpus (index or file) to a question or a file of them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.app import command
from dupfind.cli.input_options import input_options, read_questions
from dupfind.cli.model_options import EmbedderOptions, RerankOptions, embedder_options, rerank_options
from dupfind.cli.options import FormatOption, OutputOption, QuietOption, ThresholdOption, check_range
from dupfind.cli.output import embedding_progress, info, rerank_progress, stage
from dupfind.cli.pipelines import open_corpus
from dupfind.pairs.search import DEFAULT_SEARCH_K

if TYPE_CHECKING:
    from dupfind.io.questions import QuestionReader


@command("search")
@input_options
@embedder_options
@rerank_options
def search(
    corpus: Annotated[str, typer.Argument(help="An index (from `index build`) or a question file, encoded now.")],
    reader: QuestionReader,
    embedding: EmbedderOptions,
    reranking: RerankOptions,
    question: Annotated[str | None, typer.Argument(help="The question to look up.")] = None,
    queries: Annotated[str | None, typer.Option("--queries", help="Look up every question of this file.")] = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", help="Nearest questions shown per query.")] = DEFAULT_SEARCH_K,
    threshold: ThresholdOption = None,
    output: OutputOption = None,
    output_format: FormatOption = None,
    quiet: QuietOption = False,
) -> None:
    """Show the questions of a corpus nearest to a question; exit 0 if one is a duplicate, 1 if none.

    The input options apply to every file read (corpus and --queries).

    Example: dupfind search corpus.dfi "How do I reset my password?"
    """
    from dupfind.errors import DupfindError
    from dupfind.io.destinations import check_destination
    from dupfind.io.formats import output_format as choose_format
    from dupfind.io.write import write_table

    if (question is None) == (queries is None):
        raise DupfindError("give either a QUESTION or --queries FILE")
    if question is not None and not question.strip():
        raise DupfindError("the question is blank")
    check_range("--threshold", threshold, -1, 1)
    check_range("--top-k", top_k, 1)
    fmt = choose_format(output, output_format, sys.stdout.isatty())
    check_destination(output, [corpus] + ([queries] if queries else []))
    candidate, decide = -1.0, None
    if reranking.rerank:
        ref = embedding.resolve()
        candidate, decide = reranking.thresholds(ref, embedding.thresholds_for(ref), "pair", threshold)
    index, embedder, thresholds = open_corpus(corpus, reader, embedding, quiet)
    threshold = thresholds.pair if threshold is None else threshold
    asked = None if queries is None else read_questions(reader, queries, quiet)
    texts = [question or ""] if asked is None else asked.texts
    with embedding_progress(embedder, f"Encoding {queries}", quiet or asked is None) as progressing:
        found = index.search(progressing.embed(texts), top_k)
    rule = f"cosine ≥ {threshold:.3f}"
    if decide is not None:
        with rerank_progress(reranking.load(embedding), quiet or asked is None) as reranker, stage("re-rank"):
            found = reranker.rerank_neighbours(found, texts, index.texts)
        threshold, rule = decide, f"re-rank score ≥ {decide:.3f} and cosine ≥ {candidate:.3f}"
    asked_columns = None if asked is None else (asked.ids, asked.texts)
    frame = found.to_frame(index.ids, index.texts, threshold, asked_columns, candidate)
    write_table(frame, output, fmt, title=f"Nearest to: {question}" if asked is None else None)
    duplicates = int(frame["duplicate"].sum())
    info(f"{duplicates} of {len(frame)} results have {rule} (duplicates)", quiet)
    raise typer.Exit(0 if duplicates else 1)
