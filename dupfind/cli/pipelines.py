"""What several commands do alike: open a corpus (an index, or a question file embedded now) after the rule that
judges it is known, and group a file's questions (`clusters`, `dedupe`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

from dupfind.cli.input_options import read_questions
from dupfind.cli.model_options import EmbedderOptions, RerankOptions
from dupfind.cli.options import check_choice, check_range
from dupfind.cli.output import embedding_progress, info, rerank_progress, stage, verbose

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from dupfind.io.questions import QuestionReader, Questions
    from dupfind.pairs.clustering import Clusters
    from dupfind.pairs.index import Index
    from dupfind.thresholds import Kind, Rule
    from dupfind.vectors.embedder import Embedder
    from dupfind.vectors.encoding import Embeddings
    from dupfind.vectors.model import ModelRef


@dataclass(frozen=True)
class Corpus:
    """A corpus to search or mine against, before any model loads: the index it is (None: a question file,
    read now and embedded by `load`), the model that encodes it (an index's own, or --model, which must be the
    same), the rule in force for that model, and the precision it is (or will be) embedded at."""

    source: str
    stored: Index | None
    questions: Questions | None
    model: ModelRef
    rule: Rule
    precision: str

    @classmethod
    def open(
        cls,
        source: str,
        reader: QuestionReader,
        embedding: EmbedderOptions,
        reranking: RerankOptions,
        kind: Kind,
        threshold: float | None,
        quiet: bool,
    ) -> Corpus:
        from dupfind.pairs.index import is_index, open_index

        if not is_index(source):
            ref = embedding.resolve()
            rule = embedding.rule(kind, ref, reranking, threshold)
            return cls(source, None, read_questions(reader, source, quiet), ref, rule, embedding.precision)
        with stage("read index"):
            index = open_index(source)
        check_index_precision(index, embedding, source)
        ref = index.find_model(embedding.model, source)
        rule = embedding.rule(kind, ref, reranking, threshold, index.thresholds)
        return cls(source, index, None, ref, rule, index.precision)

    def columns(self, id_name: str = "id") -> dict[str, pd.Series]:
        """Its ids and texts as a result holds them (`question_columns`), by row number."""
        if self.stored is None:
            return question_columns(cast("Questions", self.questions), id_name)
        numbers = np.arange(1, len(self.stored) + 1)
        return _columns(self.stored.ids, self.stored.texts, numbers, id_name, "question")

    def load(self, embedder: Embedder, quiet: bool) -> Index:
        """The corpus: the index as stored, or the question file embedded now by `embedder` (of `self.model`)."""
        from dupfind.pairs.corpus import index_questions

        if self.stored is not None:
            return self.stored
        with embedding_progress(embedder, f"Encoding {self.source}", quiet) as progressing:
            return index_questions(self.model, progressing, cast("Questions", self.questions), self.precision)


def check_index_precision(index: Index, embedding: EmbedderOptions, source: str) -> None:
    """Refuse to encode at another precision than the index's (before the model loads); with -v, say when an
    older index names no precision and is taken as fp32."""
    if embedding.invalid is not None:
        return  # the bad option is reported as such, later
    if not index.named_precision and verbose():
        print(f"dupfind: {source} names no precision (an older index): taken as {index.precision}", file=sys.stderr)
    index.check_precision(embedding.precision, source)


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
    check: Callable[[Questions], None] | None = None,
) -> tuple[Questions, Clusters, Embeddings]:
    """Read a file and group its questions into duplicates (for `clusters` and `dedupe`); `check` refuses a
    table the command cannot write back, before any encoding."""
    from dupfind.pairs.clustering import cluster_texts

    rule = embedding.rule("mining", embedding.resolve(), reranking, threshold)
    questions = read_questions(reader, file, quiet)
    if check is not None:
        check(questions)
    embedder = embedding.load()
    with (
        embedding_progress(embedder, "Encoding", quiet) as progressing,
        rerank_progress(reranking.load(embedding), quiet) as reranker,
    ):
        groups, embeddings = cluster_texts(progressing, questions.texts, rule, method, top_k, reranker)
    info(groups.describe(method), quiet)
    return questions, groups, embeddings


def question_columns(questions: Questions, id_name: str = "id") -> dict[str, pd.Series]:
    """The ids (called `id_name`) and texts of a file's questions as a result holds them, indexed by their row
    numbers (for `dupfind.io.writable.check_writable_columns`)."""
    return _columns(questions.ids, questions.texts, _numbers(questions), id_name, questions.text_col)


def row_columns(questions: Questions) -> dict[str, pd.Series]:
    """Every column of a file's rows, indexed by their row numbers, for `check_writable_columns`."""
    numbers = _row_numbers(questions)
    return {str(name): questions.frame[name].set_axis(numbers) for name in questions.frame.columns}


def _row_numbers(questions: Questions) -> NDArray[np.int64]:
    """Each row's number as a person counts it."""
    if questions.table is None:
        return np.arange(1, len(questions.frame) + 1)
    return np.asarray(questions.table.numbers, dtype=np.int64)


def _numbers(questions: Questions) -> NDArray[np.int64]:
    """Each question's row number as a person counts it."""
    return _row_numbers(questions)[questions.rows]


def _columns(
    ids: list[Any], texts: list[str], numbers: NDArray[np.int64], id_name: str, text_col: str
) -> dict[str, pd.Series]:
    import pandas as pd

    from dupfind.io.questions import id_column

    return {id_name: id_column(ids).set_axis(numbers), text_col: pd.Series(texts, index=numbers, dtype=object)}
