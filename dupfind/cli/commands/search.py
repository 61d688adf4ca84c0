"""`dupfind search`: the nearest questions of a corpus (index or file) to a question or a file of them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.app import command
from dupfind.cli.input_options import input_options, read_questions
from dupfind.cli.model_options import EmbedderOptions, RerankOptions, embedder_options, rerank_by_default_options
from dupfind.cli.options import FormatOption, OutputOption, QuietOption, ThresholdOption, check_range
from dupfind.cli.output import embedding_progress, info, rerank_progress
from dupfind.cli.pipelines import Corpus, question_columns
from dupfind.pairs.search import DEFAULT_SEARCH_K

if TYPE_CHECKING:
    from dupfind.io.questions import QuestionReader
    from dupfind.thresholds import Rule


@command("search")
@input_options
@embedder_options
@rerank_by_default_options
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

    The built-in re-ranker orders and judges the hits (--no-rerank: the cosine alone). The input options apply
    to every file read (corpus and --queries).

    Example: dupfind search corpus.dfi "How do I reset my password?"
    """
    from dupfind.cli.pages import page
    from dupfind.errors import DupfindError
    from dupfind.io.destinations import check_destination
    from dupfind.io.formats import output_format as choose_format
    from dupfind.io.writable import check_writable_columns
    from dupfind.io.write import write_table
    from dupfind.pairs.corpus import search_corpus

    if (question is None) == (queries is None):
        raise DupfindError("give either a QUESTION or --queries FILE")
    if question is not None and not question.strip():
        raise DupfindError("the question is blank")
    check_range("--threshold", threshold, -1, 1)
    check_range("--top-k", top_k, 1)
    fmt = choose_format(output, output_format, sys.stdout.isatty())
    check_destination(output, [corpus] + ([queries] if queries else []))
    opened = Corpus.open(corpus, reader, embedding, reranking, "pair", threshold, quiet)
    rule = opened.rule
    asked = None if queries is None else read_questions(reader, queries, quiet)  # read before the model loads
    id_name = reader.id_col or "id"
    check_writable_columns(opened.columns(id_name), fmt, output, corpus)
    if asked is not None and queries is not None:
        check_writable_columns(question_columns(asked, id_name), fmt, output, queries)
    embedder = embedding.load(opened.model.name)
    loaded = reranking.load(embedding)
    index = opened.load(embedder, quiet)
    texts = [question or ""] if asked is None else asked.texts
    with (
        embedding_progress(embedder, f"Encoding {queries}", quiet or asked is None) as progressing,
        rerank_progress(loaded, quiet or asked is None) as reranker,
    ):
        found = search_corpus(progressing, index, texts, rule, top_k, reranker)
    asked_columns = None if asked is None else (asked.ids, asked.texts)
    frame = found.to_frame(index.ids, index.texts, asked_columns)
    shown = page(embedding, index.model, rule, facts=[("corpus", f"{len(index):,} questions")], query=question)
    write_table(frame, output, fmt, title=f"Nearest to: {question}" if asked is None else None, page=shown)
    duplicates = int(frame["duplicate"].sum())
    info(f"{duplicates} of {len(frame)} results have {_rule_for_hits(rule)} (duplicates)", quiet)
    raise typer.Exit(0 if duplicates else 1)


def _rule_for_hits(rule: Rule) -> str:
    """The rule as the summary of a search says it."""
    if rule.rerank is None:
        return rule.describe()
    return f"re-rank score ≥ {rule.rerank:.3f} and cosine ≥ {rule.cosine:.3f}"
