"""`dupfind search`: the nearest questions of a corpus (index or file); also runs `mine --against`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import numpy as np
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
    warn,
)
from dupfind.encoding import DEFAULT_BATCH_SIZE
from dupfind.search import DEFAULT_SEARCH_K

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import NDArray

    from dupfind.encoding import Embeddings, Encoder, TokenCounts
    from dupfind.index import Index
    from dupfind.mining import MinedPairs
    from dupfind.tables import Questions


@dataclass(frozen=True)
class Reader:
    """How to read question files: the input options, the same for every file a command reads."""

    text_col: str | None = None
    id_col: str | None = None
    format_in: str | None = None
    encoding: str = "utf-8"
    skip_bad_lines: bool = False
    quiet: bool = False

    def load(self, source: str) -> Questions:
        from dupfind.tables import load_questions

        questions = load_questions(
            source, self.format_in, self.text_col, self.id_col, self.encoding, self.skip_bad_lines
        )
        report_input(questions, self.quiet)
        return questions


def encode_questions(
    encoder: Encoder, texts: Sequence[str], source: str, batch_size: int, quiet: bool, use_cache: bool
) -> Embeddings:
    """Encode a file's questions with a progress bar, through the embedding cache unless `use_cache` is False."""
    from dupfind.embedding_cache import EmbeddingCache, cached_encode

    with progress_bar(f"Encoding {source}", quiet) as progress:
        return cached_encode(encoder, texts, batch_size, progress, EmbeddingCache() if use_cache else None)


def open_corpus(
    source: str, reader: Reader, model: str | None, backend: str | None, batch_size: int, use_cache: bool
) -> tuple[Index, Encoder]:
    """An index file as stored (its model unless --model, which must match), or a question file encoded now."""
    from dupfind.encoding import load_encoder
    from dupfind.index import is_index, new_index, open_index
    from dupfind.model import resolve_model

    if is_index(source):
        index = open_index(source)
        return index, load_encoder(index.find_model(model, source).name, backend)
    ref = resolve_model(model)
    questions = reader.load(source)
    encoder = load_encoder(model, backend)
    embeddings = encode_questions(encoder, questions.texts, source, batch_size, reader.quiet, use_cache)
    return new_index(ref, questions.ids, questions.texts, embeddings), encoder


@command("search")
def search(
    corpus: Annotated[str, typer.Argument(help="An index (from `index build`) or a question file, encoded now.")],
    question: Annotated[str | None, typer.Argument(help="The question to look up.")] = None,
    queries: Annotated[str | None, typer.Option("--queries", help="Look up every question of this file.")] = None,
    k: Annotated[int, typer.Option("-k", help="Nearest questions shown per query.")] = DEFAULT_SEARCH_K,
    threshold: ThresholdOption = None,
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
    no_cache: NoCacheOption = False,
    quiet: QuietOption = False,
) -> None:
    """Show the questions of a corpus nearest to a question; exit 0 if one is a duplicate, 1 if none.

    The input options apply to every file read (corpus and --queries).

    Example: dupfind search corpus.dfi "How do I reset my password?"
    """
    from dupfind.encoding import encode
    from dupfind.errors import DupfindError
    from dupfind.mining import check_threshold
    from dupfind.tables import output_format as pick_format
    from dupfind.tables import write_table

    if (question is None) == (queries is None):
        raise DupfindError("give either a QUESTION or --queries FILE")
    if question is not None and not question.strip():
        raise DupfindError("the question is blank")
    if threshold is not None:
        check_threshold(threshold)
    if k < 1:
        raise DupfindError(f"-k must be at least 1, got {k}")
    fmt = pick_format(output, output_format, sys.stdout.isatty())
    reader = Reader(text_col, id_col, format_in, encoding, skip_bad_lines, quiet)
    index, encoder = open_corpus(corpus, reader, model, backend, batch_size, not no_cache)
    if threshold is None:
        threshold = index.thresholds.pair
    if queries is None:
        assert question is not None
        asked = None
        embeddings = encode(encoder, [question])
    else:
        asked = reader.load(queries)
        embeddings = encode_questions(encoder, asked.texts, queries, batch_size, quiet, not no_cache)
    found = index.search(embeddings, k)
    frame = _hits_frame(index, found.rows, found.scores, threshold, asked)
    title = f"Nearest to: {question}" if question is not None else None
    write_table(frame, output, fmt, title=title)
    duplicates = int(frame["duplicate"].sum())
    info(f"{duplicates} of {len(frame)} results have cosine ≥ {threshold:.3f} (duplicates)", quiet)
    raise typer.Exit(0 if duplicates else 1)


def _hits_frame(
    index: Index, rows: NDArray[np.int64], scores: NDArray[np.float32], threshold: float, asked: Questions | None
) -> pd.DataFrame:
    """One line per hit: `[query_id, query,] rank, score, duplicate, id, question`."""
    import pandas as pd

    flat_rows, flat_scores = rows.ravel(), scores.ravel().astype(np.float64)
    columns: dict[str, object] = {}
    if asked is not None:
        query = np.repeat(np.arange(rows.shape[0]), rows.shape[1])
        columns["query_id"] = [asked.ids[q] for q in query]
        columns["query"] = [asked.texts[q] for q in query]
    columns["rank"] = np.tile(np.arange(1, rows.shape[1] + 1), rows.shape[0])
    columns["score"] = np.round(flat_scores, 6)
    columns["duplicate"] = flat_scores >= threshold
    columns["id"] = [index.ids[row] for row in flat_rows]
    columns["question"] = [index.texts[row] for row in flat_rows]
    return pd.DataFrame(columns)


def mine_against_corpus(
    file: str,
    against: str | None,
    also_within: bool,
    threshold: float | None,
    top_k: int,
    limit: int | None,
    output: str | None,
    fmt: str,
    reader: Reader,
    model: str | None,
    backend: str | None,
    batch_size: int,
    index: str,
    use_cache: bool,
) -> None:
    """`mine FILE --against CORPUS`: pairs of a FILE question (`id_a`) with a CORPUS question (`id_b`),
    and pairs within FILE too with `--also-within`; written like `mine`'s."""
    from dupfind.clustering import unique_texts
    from dupfind.errors import DupfindError
    from dupfind.mining import MinedPairs, mine_texts, normalize_text, pairs_frame
    from dupfind.search import mine_against
    from dupfind.tables import write_table

    if against is None:
        raise DupfindError("--also-within needs --against CORPUS")
    corpus, encoder = open_corpus(against, reader, model, backend, batch_size, use_cache)
    questions = reader.load(file)
    if threshold is None:
        threshold = corpus.thresholds.mining
    first, inverse = unique_texts(questions.texts)
    distinct = [questions.texts[i] for i in first]
    embeddings = encode_questions(encoder, distinct, file, batch_size, reader.quiet, use_cache)
    cross = mine_against(embeddings[inverse], corpus.embeddings, threshold, top_k)
    parts = [MinedPairs(cross.left, cross.right + len(questions), cross.scores, cross.truncated)]
    if also_within:
        row_of = {normalize_text(text): row for row, text in enumerate(distinct)}

        def embed(texts: Sequence[str], _: TokenCounts | None) -> Embeddings:
            return embeddings[[row_of[normalize_text(text)] for text in texts]]

        parts.append(mine_texts(encoder, questions.texts, threshold, top_k, embed=embed, index=index))
    pairs = _merge(parts)
    if pairs.truncated:
        warn(
            f"{pairs.truncated} questions had more than {top_k} neighbours above {threshold:.3f}; "
            f"only their best {top_k} were kept (raise --top-k)"
        )
    frame = pairs_frame(pairs, [*questions.ids, *corpus.ids], [*questions.texts, *corpus.texts])
    if limit is not None:
        frame = frame.head(limit)
    write_table(frame, output, fmt, title=f"Duplicate pairs with {against} (cosine ≥ {threshold:.3f})")
    within = f", {len(pairs) - len(cross)} within {file}" if also_within else ""
    summary = f"{len(cross)} pairs with cosine ≥ {threshold:.3f} with {len(corpus)} questions of {against}{within}"
    info(summary, reader.quiet)


def _merge(parts: list[MinedPairs]) -> MinedPairs:
    """Several sets of pairs as one, best first."""
    from dupfind.mining import MinedPairs

    left = np.concatenate([part.left for part in parts])
    right = np.concatenate([part.right for part in parts])
    scores = np.concatenate([part.scores for part in parts])
    order = np.lexsort((right, left, -scores))
    return MinedPairs(left[order], right[order], scores[order], sum(part.truncated for part in parts))
