"""The command line's own pipelines (to move into the library).

Options that several commands take are declared once here: as `Annotated` types, and as groups that a
decorator adds to a command and hands it as one object (`input_options` → a `QuestionReader`,
`embedder_options` → `EmbedderOptions`), in the manner of sqlite-utils' shared option decorators."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dupfind.cli.input_options import read_questions
from dupfind.cli.model_options import EmbedderOptions, RerankOptions
from dupfind.cli.options import check_choice, check_range
from dupfind.cli.output import embedding_progress, info, rerank_progress, stage

if TYPE_CHECKING:
    from dupfind.io.questions import QuestionReader, Questions
    from dupfind.pairs.clustering import Clusters
    from dupfind.pairs.index import Index
    from dupfind.thresholds import Thresholds
    from dupfind.vectors.embedder import Embedder
    from dupfind.vectors.encoding import Embeddings


def open_corpus(
    source: str, reader: QuestionReader, embedding: EmbedderOptions, quiet: bool
) -> tuple[Index, Embedder, Thresholds]:
    """A corpus to search or mine against, the embedder of its model and the thresholds in force: an index file
    as stored (its own model unless --model, which must be the same), or a question file embedded now."""
    from dupfind.pairs.corpus import index_questions
    from dupfind.pairs.index import is_index, open_index

    if is_index(source):
        with stage("read index"):
            index = open_index(source)
        ref = index.find_model(embedding.model, source)
        return index, embedding.load(ref.name), embedding.thresholds_for(ref, index.thresholds)
    ref = embedding.resolve()
    questions = read_questions(reader, source, quiet)
    embedder = embedding.load()
    with embedding_progress(embedder, f"Encoding {source}", quiet) as progressing:
        index = index_questions(ref, progressing, questions)
    return index, embedder, embedding.thresholds_for(ref, index.thresholds)


def check_group_options(threshold: float | None, method: str, top_k: int) -> None:
    """The checks of the options that say how `clusters` and `dedupe` group questions."""
    from dupfind.pairs.clustering import METHODS

    check_range("--threshold", threshold, -1, 1)
    check_choice("--method", method, METHODS)
    check_range("--top-k", top_k, 1)


def group_questions(
    file: str,
    reader: QuestionReader,
    embedding: EmbedderOptions,
    reranking: RerankOptions,
    threshold: float | None,
    method: str,
    top_k: int,
    quiet: bool,
) -> tuple[Questions, Clusters, Embeddings]:
    """Read a file and group its questions into duplicates (for `clusters` and `dedupe`)."""
    from dupfind.pairs.clustering import cluster_texts

    ref = embedding.resolve()
    own = embedding.thresholds_for(ref)
    decide = None
    if reranking.rerank:
        threshold, decide = reranking.thresholds(ref, own, "mining", threshold)
    threshold = own.mining if threshold is None else threshold
    questions = read_questions(reader, file, quiet)
    embedder = embedding.load()
    with embedding_progress(embedder, "Encoding", quiet) as progressing:
        if decide is None:
            groups, embeddings = cluster_texts(progressing, questions.texts, threshold, method, top_k)
        else:
            with rerank_progress(reranking.load(embedding), quiet) as reranker:
                rerank = (reranker, decide)
                groups, embeddings = cluster_texts(progressing, questions.texts, threshold, method, top_k, rerank)
    rule = f"cosine ≥ {threshold:.3f}"
    if decide is not None:
        rule = f"re-rank score ≥ {decide:.3f} among candidates with {rule}"
    info(groups.describe(rule, method), quiet)
    return questions, groups, embeddings
