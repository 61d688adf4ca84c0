"""`dupfind index build|add`: a persistent, searchable corpus of questions."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.app import command, command_group
from dupfind.cli.engine_options import EngineOptions, engine_options
from dupfind.cli.input_options import input_options, read_questions
from dupfind.cli.model_options import EmbedderOptions, embedder_options
from dupfind.cli.options import FileArgument, QuietOption
from dupfind.cli.output import embedding_progress, info, progress_bar, report_input, stage

if TYPE_CHECKING:
    from dupfind.io.questions import QuestionReader
    from dupfind.pairs.index import Index
    from dupfind.vectors.model import ModelRef

index_app = command_group("index", "Build and grow an index of questions, for `search` and `mine --against`.")


@command("build", index_app)
@input_options
@embedder_options
@engine_options
def build(
    file: FileArgument,
    reader: QuestionReader,
    embedding: EmbedderOptions,
    engine: EngineOptions,
    output: Annotated[str, typer.Option("--output", "-o", help="The index file to write (e.g. corpus.dfi).")],
    quiet: QuietOption = False,
) -> None:
    """Encode a file's questions into an index file (replaced atomically if it exists).

    With --engine ray, FILE may also be a folder or a glob of shards, encoded on the cluster.

    Example: dupfind index build corpus.csv --id-col id -o corpus.dfi
    """
    from dupfind.io.destinations import check_destination
    from dupfind.pairs.corpus import index_questions
    from dupfind.pairs.index import save_index
    from dupfind.thresholds import load_thresholds

    check_destination(output, [file])
    ref = embedding.resolve()
    load_thresholds(ref)  # stored in the index: a bad thresholds file beside the model fails before the encoding
    if engine.on_ray:
        index = _index_on_ray(file, reader, embedding, engine, ref, output, quiet)
    else:
        questions = read_questions(reader, file, quiet)
        embedder = embedding.load()
        with embedding_progress(embedder, f"Encoding {file}", quiet) as progressing:
            index = index_questions(ref, progressing, questions, embedding.precision)
    with stage("write"):
        save_index(index, output)
    info(f"Indexed {len(index)} questions in {output} (model {index.model})", quiet)


def _index_on_ray(
    file: str,
    reader: QuestionReader,
    embedding: EmbedderOptions,
    engine: EngineOptions,
    ref: ModelRef,
    output: str,
    quiet: bool,
) -> Index:
    """`index build --engine ray`: read and encode on a Ray cluster, keeping the embeddings in the work folder."""
    from dupfind.pairs.index import new_index
    from dupfind.ray.encode import embed_texts_ray
    from dupfind.ray.read import read_questions_ray

    work_dir = engine.work_folder(output)
    engine.check(file, embedding, work_dir, output)
    with engine.session(quiet):
        with stage("read"):
            questions = read_questions_ray(file, reader)
        report_input(questions, quiet)
        agreed = engine.agree(embedding)
        spec = engine.encoder_spec(agreed, replace(agreed, device="cpu").load())  # it only fingerprints
        with progress_bar(f"Encoding {file} on Ray", quiet) as progress, stage("encode on Ray"):
            embedded = embed_texts_ray(questions.texts, spec, work_dir, engine.workers(), progress)
    info(
        f"{embedded.encoded} of {embedded.distinct} distinct questions encoded now, the rest read from {work_dir}",
        quiet,
    )
    return new_index(ref, questions.ids, questions.texts, embedded.embeddings, embedding.precision)


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
    """Append a file's questions to an index, atomically, with the index's model at its precision.

    Without --id-col, the new rows are numbered on from the index's size.

    Example: dupfind index add corpus.dfi new.csv --id-col id
    """
    from dupfind.cli.pipelines import check_index_precision
    from dupfind.io.destinations import check_destination
    from dupfind.pairs.index import add_to_index, open_index

    index = open_index(index_path)
    check_index_precision(index, embedding, index_path)
    check_destination(index_path, [file])  # it is replaced, grown, after the encoding
    model = index.find_model(embedding.model, index_path).name
    questions = read_questions(reader, file, quiet)
    number_on = reader.id_col is None
    index.new_ids(questions.ids, number_on, file, index_path)  # clashing ids fail before encoding
    embedder = embedding.load(model)
    with embedding_progress(embedder, f"Encoding {file}", quiet) as progressing:
        embeddings = progressing.embed(questions.texts)
    grown = add_to_index(
        index_path, questions.ids, questions.texts, embeddings, index.fingerprint, number_on, file, embedding.precision
    )
    info(f"Added {len(questions)} questions to {index_path} (now {len(grown)})", quiet)
