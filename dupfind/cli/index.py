"""`dupfind index build|add`: a persistent, searchable corpus of questions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from dupfind.cli.common import (
    BackendOption,
    BatchSizeOption,
    EncodingOption,
    FormatInOption,
    IdColOption,
    ModelOption,
    NoCacheOption,
    QuietOption,
    SkipBadLinesOption,
    TextColOption,
    command,
    command_group,
    info,
)
from dupfind.cli.search import Reader, encode_questions
from dupfind.encoding import DEFAULT_BATCH_SIZE

F = TypeVar("F", bound=Callable[..., Any])

index_app = command_group("index", "Build and grow an index of questions, for `search` and `mine --against`.")


@command("build", index_app)
def build(
    file: Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON, Parquet or text file; - for stdin.")],
    output: Annotated[str, typer.Option("--output", "-o", help="The index file to write (e.g. corpus.dfi).")],
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
    """Encode a file's questions into an index file (replaced atomically if it exists).

    Example: dupfind index build corpus.csv --id-col id -o corpus.dfi
    """
    from dupfind.encoding import load_encoder
    from dupfind.index import check_destination, new_index, save_index
    from dupfind.model import resolve_model

    check_destination(output)
    ref = resolve_model(model)
    questions = Reader(text_col, id_col, format_in, encoding, skip_bad_lines, quiet).load(file)
    encoder = load_encoder(model, backend)
    embeddings = encode_questions(encoder, questions.texts, file, batch_size, quiet, not no_cache)
    index = new_index(ref, questions.ids, questions.texts, embeddings)
    save_index(index, output)
    info(f"Indexed {len(index)} questions in {output} (model {index.model})", quiet)


@command("add", index_app)
def add(
    index_path: Annotated[str, typer.Argument(metavar="INDEX", help="The index file to grow.")],
    file: Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON, Parquet or text file; - for stdin.")],
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
    """Append a file's questions to an index, atomically, with the index's model.

    Without --id-col, the new rows are numbered on from the index's size.

    Example: dupfind index add corpus.dfi new.csv --id-col id
    """
    from dupfind.encoding import load_encoder
    from dupfind.index import add_to_index, open_index

    index = open_index(index_path)
    model = index.find_model(model, index_path).name
    questions = Reader(text_col, id_col, format_in, encoding, skip_bad_lines, quiet).load(file)
    index.new_ids(questions.ids, id_col is None, file, index_path)  # clashing ids fail before encoding
    encoder = load_encoder(model, backend)
    embeddings = encode_questions(encoder, questions.texts, file, batch_size, quiet, not no_cache)
    grown = add_to_index(
        index_path, questions.ids, questions.texts, embeddings, index.fingerprint, id_col is None, file
    )
    info(f"Added {len(questions)} questions to {index_path} (now {len(grown)})", quiet)
