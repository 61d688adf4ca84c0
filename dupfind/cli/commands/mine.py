"""`dupfind mine`: duplicate pairs within one file, or of a file's questions with a corpus."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
from dupfind.cli.pipelines import Corpus, question_columns
from dupfind.errors import DupfindError
from dupfind.pairs.mining import DEFAULT_TOP_K

if TYPE_CHECKING:
    import pandas as pd

    from dupfind.io.questions import QuestionReader
    from dupfind.pairs.mining import MinedPairs
    from dupfind.thresholds import Rule
    from dupfind.vectors.embedder import Embedder
    from dupfind.vectors.encoding import TokenCounts
    from dupfind.vectors.model import ModelRef


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
    from dupfind.io.destinations import check_destination
    from dupfind.io.formats import output_format as choose_format
    from dupfind.pairs.mining import INDEXES

    check_range("--threshold", threshold, -1, 1)
    check_range("--top-k", top_k, 1)
    check_range("--limit", limit, 0)
    check_choice("--index", index, INDEXES)
    if also_within and against is None:
        raise DupfindError("--also-within needs --against CORPUS")
    fmt = choose_format(output, output_format, sys.stdout.isatty())
    check_destination(output, [file] + ([against] if against else []), parts=True)
    asked = MineRequest(file, reader, embedding, reranking, threshold, top_k, index, limit, output, fmt, quiet)
    if engine.on_ray:
        _mine_on_ray(asked, engine, against)
    elif against is not None:
        _mine_against(asked, against, also_within)
    else:
        _mine_within(asked)


@dataclass(frozen=True)
class MineRequest:
    """What `mine` was asked, once checked: the input, how to encode and decide, and where the pairs go."""

    file: str
    reader: QuestionReader
    embedding: EmbedderOptions
    reranking: RerankOptions
    threshold: float | None
    top_k: int
    index: str
    limit: int | None
    output: str | None
    fmt: str
    quiet: bool

    def rule(self, ref: ModelRef) -> Rule:
        return self.embedding.rule("mining", ref, self.reranking, self.threshold)

    def check_writable(self, columns: dict[str, pd.Series], source: str) -> None:
        """Refuse, before any encoding, ids or questions of `source` that the output's format cannot hold."""
        from dupfind.io.writable import check_writable_columns

        check_writable_columns(columns, self.fmt, self.output, source)

    @property
    def id_name(self) -> str:
        """What the input's ids are called."""
        return self.reader.id_col or "id"

    def write(self, mined: MinedPairs, ids: Sequence[object], texts: Sequence[str], title: str, model: str) -> None:
        """Warn of the questions that had more neighbours than --top-k, and write the best --limit pairs (an HTML
        page says which `model` found them)."""
        from dupfind.cli.pages import page
        from dupfind.io.write import write_table

        if mined.truncated and mined.rule is not None:
            warn(
                f"{mined.truncated} questions had more than {self.top_k} neighbours above {mined.rule.cosine:.3f}; "
                f"only their best {self.top_k} were kept (raise --top-k)"
            )
        frames = mined.head(self.limit).frames(ids, texts)  # written a chunk at a time where the format allows
        counts = [("questions", f"{len(texts):,}"), ("pairs found", f"{len(mined):,}")]
        shown = page(self.embedding, model, mined.rule, mined.candidates, counts)
        with stage("write"):
            write_table(frames, self.output, self.fmt, title=f"{title} ({mined.describe()})", page=shown)


def _mine_within(asked: MineRequest) -> None:
    """`mine FILE`: the duplicate pairs among a file's questions."""
    from dupfind.pairs.mining import mine_texts

    ref = asked.embedding.resolve()
    rule = asked.rule(ref)
    questions = read_questions(asked.reader, asked.file, asked.quiet)
    asked.check_writable(question_columns(questions, asked.id_name), asked.file)
    embedder = asked.embedding.load()
    tokens = _count_tokens(embedder, questions.texts)
    with (
        embedding_progress(embedder, "Encoding", asked.quiet) as progressing,
        progress_bar("Mining", asked.quiet) as mining,
        rerank_progress(asked.reranking.load(asked.embedding), asked.quiet) as reranker,
        stage("encode and mine"),
    ):
        mined = mine_texts(progressing, questions.texts, rule, asked.top_k, asked.index, tokens, mining, reranker)
    asked.write(mined, questions.ids, questions.texts, "Duplicate pairs", ref.name)
    info(f"{len(mined)} pairs with {mined.describe()} among {len(questions)} questions", asked.quiet)


def _mine_on_ray(asked: MineRequest, engine: EngineOptions, against: str | None) -> None:
    """`mine --engine ray`: read, encode, mine (and re-rank) on a Ray cluster; written like `mine`'s."""
    from dupfind.pairs.mining import decide
    from dupfind.ray.mine import mine_texts_ray
    from dupfind.ray.read import read_questions_ray
    from dupfind.ray.rerank import RayScoring, ray_reranker

    if against is not None:
        raise DupfindError("--against is local only; drop --engine ray")
    if asked.index == "exact":
        raise DupfindError("--engine ray mines with the inverted-file index (--index ann); --index exact is local only")
    work_dir = engine.work_folder(asked.output)
    engine.check(asked.file, asked.embedding, work_dir, asked.output)
    ref = asked.embedding.resolve()
    rule = asked.rule(ref)
    with engine.session(asked.quiet):
        with stage("read"):
            questions = read_questions_ray(asked.file, asked.reader)
        report_input(questions, asked.quiet)
        asked.check_writable(question_columns(questions, asked.id_name), asked.file)
        agreed = engine.agree(asked.embedding)
        if agreed.precision != asked.embedding.precision:  # the thresholds of the precision the actors run
            rule = agreed.rule("mining", ref, asked.reranking, asked.threshold)
        on_driver = replace(agreed, device="cpu")  # it only counts tokens, and fingerprints the re-ranker
        embedder = on_driver.load()
        reranker = asked.reranking.load(on_driver)
        tokens = _count_tokens(embedder, questions.texts)
        spec = engine.encoder_spec(agreed, embedder)
        with (
            progress_bar("Encoding on Ray", asked.quiet) as encoding,
            progress_bar("Mining on Ray (cells)", asked.quiet) as mining,
            stage("encode and mine on Ray"),
        ):
            found = mine_texts_ray(
                questions.texts,
                spec,
                work_dir,
                rule.cosine,
                asked.top_k,
                engine.workers(),
                progress=encoding,
                tokens=tokens,
                mining_progress=mining,
            )
        tally = RayScoring()
        if reranker is not None:
            scorer = engine.scorer_spec(agreed, asked.reranking, reranker)
            with progress_bar("Re-ranking on Ray", asked.quiet) as scoring, stage("re-rank on Ray"):
                reranker = ray_reranker(reranker, scorer, work_dir, engine.workers(), scoring, tally)
                mined = decide(found.pairs, questions.texts, rule, reranker)
        else:
            mined = decide(found.pairs, questions.texts, rule)
    asked.write(mined, questions.ids, questions.texts, "Duplicate pairs", ref.name)
    rescored = f", {tally.scored} of {tally.asked} candidate pairs scored now" if tally.asked else ""
    info(
        f"{len(mined)} pairs with {mined.describe()} among {len(questions)} questions "
        f"({found.encoded} of {found.distinct} distinct questions encoded now{rescored}, "
        f"the rest read from {work_dir})",
        asked.quiet,
    )


def _count_tokens(embedder: Embedder, texts: Sequence[str]) -> TokenCounts:
    """The texts' token counts, with a warning for those longer than the model reads."""
    with stage("count tokens"):
        tokens = embedder.count_tokens(texts)
    truncated = embedder.count_truncated(tokens)
    if truncated:
        warn(
            f"{truncated} questions are longer than the model's {embedder.max_seq_length} tokens; "
            "only their start is used"
        )
    return tokens


def _mine_against(asked: MineRequest, against: str, also_within: bool) -> None:
    """`mine FILE --against CORPUS`: pairs of a FILE question (`id_a`) with a CORPUS question (`id_b`),
    and pairs within FILE too with `--also-within`; written like `mine`'s."""
    from dupfind.io.questions import id_column
    from dupfind.pairs.corpus import mine_against_corpus

    opened = Corpus.open(
        against, asked.reader, asked.embedding, asked.reranking, "mining", asked.threshold, asked.quiet
    )
    rule = opened.rule
    questions = read_questions(asked.reader, asked.file, asked.quiet)  # both inputs read before the model loads
    new, known = question_columns(questions, asked.id_name), opened.columns(asked.id_name)
    asked.check_writable(new, asked.file)
    asked.check_writable(known, against)
    if also_within:  # the second column of ids holds both inputs' ids
        both = id_column([*new[asked.id_name], *known[asked.id_name]])
        asked.check_writable({asked.id_name: both}, f"{asked.file} and {against}")
    embedder = asked.embedding.load(opened.model.name)
    loaded = asked.reranking.load(asked.embedding)
    corpus = opened.load(embedder, asked.quiet)
    with (
        embedding_progress(embedder, f"Encoding {asked.file}", asked.quiet) as progressing,
        rerank_progress(loaded, asked.quiet) as reranker,
    ):
        found = mine_against_corpus(
            progressing, questions.ids, questions.texts, corpus, rule, asked.top_k, also_within, asked.index, reranker
        )
    pairs = found.pairs
    asked.write(
        pairs,
        [*questions.ids, *corpus.ids],
        [*questions.texts, *corpus.texts],
        f"Duplicate pairs with {against}",
        corpus.model,
    )
    if not rule.reranks:
        within = f", {found.within} within {asked.file}" if also_within else ""
        summary = f"{found.with_corpus} pairs with {pairs.describe()} with {len(corpus)} questions of {against}{within}"
    else:
        summary = f"{len(pairs)} pairs with {pairs.describe()}, with {len(corpus)} questions of {against}"
        summary += f" and within {asked.file}" if also_within else ""
    info(summary, asked.quiet)
