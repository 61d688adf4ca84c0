"""`dupfind index build|add`: a persistent, searchable corpus of questions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.common import (
    EmbedderOptions,
    FileArgument,
    QuietOption,
    command,
    command_group,
    embedder_options,
    embedding_progress,
    info,
    input_options,
    read_questions,
)

if TYPE_CHECKING:
    from dupfind.tables import QuestionReader

index_app = command_group("index", "Build and grow an index of questions, for `search` and `mine --against`.")


@command("build", index_app)
@input_options
@embedder_options
def build(
    file: FileArgument,
    reader: QuestionReader,
    embedding: EmbedderOptions,
    output: Annotated[str, typer.Option("--output", "-o", help="The index file to write (e.g. corpus.dfi).")],
    quiet: QuietOption = False,
) -> None:
    """Encode a file's questions into an index file (replaced atomically if it exists).

    Example: dupfind index build corpus.csv --id-col id -o corpus.dfi
    """
    from dupfind.corpus import index_questions
    from dupfind.index import save_index
    from dupfind.tables import check_destination

    check_destination(output, [file])
    ref = embedding.resolve()
    questions = read_questions(reader, file, quiet)
    embedder = embedding.load()
    with embedding_progress(embedder, f"Encoding {file}", quiet) as progressing:
        index = index_questions(ref, progressing, questions)
    save_index(index, output)
    info(f"Indexed {len(index)} questions in {output} (model {index.model})", quiet)


@command("add", index_app)
@input_options
@embedder_options
def add(
    index_path: Annotated[str, typer.Argument(metavar="INDEX", help="The index file to grow.")],
    file: FileArgument,
    reader: QuestionReader,
    embedding: EmbedderOptions,
    quiet: QuietOption = False,
) -> None:
    """Append a file's questions to an index, atomically, with the index's model.

    Without --id-col, the new rows are numbered on from the index's size.

    Example: dupfind index add corpus.dfi new.csv --id-col id
    """
    from dupfind.index import add_to_index, open_index

    index = open_index(index_path)
    model = index.find_model(embedding.model, index_path).name
    questions = read_questions(reader, file, quiet)
    number_on = reader.id_col is None
    index.new_ids(questions.ids, number_on, file, index_path)  # clashing ids fail before encoding
    embedder = embedding.load(model)
    with embedding_progress(embedder, f"Encoding {file}", quiet) as progressing:
        embeddings = progressing.embed(questions.texts)
    grown = add_to_index(index_path, questions.ids, questions.texts, embeddings, index.fingerprint, number_on, file)
    info(f"Added {len(questions)} questions to {index_path} (now {len(grown)})", quiet)
