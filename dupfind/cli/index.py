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
    from dupfind.errors import DupfindError
    from dupfind.index import open_index, save_index
    from dupfind.model import resolve_model

    index = open_index(index_path)
    model = embedding.model or index.model
    index.check_model(resolve_model(model), index_path)
    questions = read_questions(reader, file, quiet)
    ids = questions.ids if reader.id_col is not None else [len(index) + row for row in questions.ids]
    clashes = set(map(str, ids)) & set(map(str, index.ids))
    if clashes:
        shown = ", ".join(sorted(clashes)[:5]) + (", …" if len(clashes) > 5 else "")
        raise DupfindError(f"{len(clashes)} ids of {file} are already in {index_path} ({shown})")
    embedder = embedding.load(model)
    with embedding_progress(embedder, f"Encoding {file}", quiet) as progressing:
        embeddings = progressing.embed(questions.texts)
    grown = index.add(ids, questions.texts, embeddings)
    save_index(grown, index_path)
    info(f"Added {len(questions)} questions to {index_path} (now {len(grown)})", quiet)
