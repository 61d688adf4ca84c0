"""What every command shares: the Typer app, error handling, stderr messages, progress bars, and the options.

Options that several commands take are declared once here: as `Annotated` types, and as groups that a
decorator adds to a command and hands it as one object (`input_options` → a `QuestionReader`,
`embedder_options` → `EmbedderOptions`), in the manner of sqlite-utils' shared option decorators."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.errors import DupfindError
from dupfind.vectors.encoding import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE

if TYPE_CHECKING:
    from dupfind.io.questions import QuestionReader
    from dupfind.pairs.rerank import Reranker
    from dupfind.ray.engine import EncoderSpec, Workers
    from dupfind.thresholds import Thresholds
    from dupfind.vectors.embedder import Embedder
    from dupfind.vectors.model import ModelRef
from dupfind.cli.options import (
    DelimiterOption,
    EncodingOption,
    FormatInOption,
    ModelOption,
    TextColOption,
    add_options,
    check_choice,
    check_range,
)
from dupfind.cli.output import stage, stderr_is_terminal, verbose


def _reader(
    text_col: str | None,
    id_col: str | None,
    format_in: str | None,
    encoding: str,
    skip_bad_lines: bool,
    delimiter: str | None,
) -> QuestionReader:
    from dupfind.io.questions import QuestionReader

    return QuestionReader(text_col, id_col, format_in, encoding, skip_bad_lines, delimiter)


input_options = add_options(
    "reader",
    {
        "text_col": (TextColOption, None),
        "id_col": (
            Annotated[str | None, typer.Option("--id-col", help="Id column [default: 1-based row number].")],
            None,
        ),
        "format_in": (FormatInOption, None),
        "encoding": (EncodingOption, "utf-8"),
        "skip_bad_lines": (
            Annotated[bool, typer.Option("--skip-bad-lines", help="Skip malformed JSONL lines.")],
            False,
        ),
        "delimiter": (DelimiterOption, None),
    },
    _reader,
)


"""Adds the options that say how to read question files; the command receives `reader: QuestionReader`."""


@dataclass(frozen=True)
class EmbedderOptions:
    """The options that say how questions become embeddings; checked before anything loads."""

    model: str | None
    backend: str | None
    batch_size: int
    cache: bool
    thresholds: str | None = None
    precision: str = "fp32"
    device: str = "auto"

    def __post_init__(self) -> None:
        check_range("--batch-size", self.batch_size, 1, MAX_BATCH_SIZE)

    def thresholds_for(self, ref: ModelRef, fallback: Thresholds | None = None) -> Thresholds:
        """The thresholds in force for a model: the project file's (`--thresholds`, else ./dupfind.toml) when it
        has them for this model, else `fallback` (e.g. an index's), else the model's own calibrated ones."""
        from dupfind.thresholds import load_thresholds, project_thresholds_file, read_project_thresholds

        file = project_thresholds_file(self.thresholds)
        found = None if file is None else read_project_thresholds(file, ref, self.precision)
        if found is not None:
            if verbose():
                print(f"dupfind: thresholds from {file}: pair {found.pair}, mining {found.mining}", file=sys.stderr)
            return found
        if file is not None and verbose():
            print(f"dupfind: {file} has no thresholds for model {ref.name}; using the model's", file=sys.stderr)
        return load_thresholds(ref, self.precision) if fallback is None else fallback

    def resolve(self) -> ModelRef:
        """The model these options name; raises a `DupfindError` for a bad model, backend, precision or device,
        before loading."""
        from dupfind.vectors.backends import check_backend, check_device, check_precision
        from dupfind.vectors.model import resolve_model

        backend = check_backend(self.backend)
        check_precision(backend, self.precision)
        check_device(backend, self.device)
        return resolve_model(self.model)

    def load(self, model: str | None = None) -> Embedder:
        """Load the encoder (of `model` when given, else of --model) and wrap it with the cache and batch size."""
        from dupfind.vectors.backends import load_encoder
        from dupfind.vectors.cache import EmbeddingCache
        from dupfind.vectors.embedder import Embedder

        with stage("load model"):
            encoder = load_encoder(model or self.model, self.backend, self.precision, self.device)
        return Embedder(encoder, EmbeddingCache() if self.cache else None, self.batch_size)


embedder_options = add_options(
    "embedding",
    {
        "model": (ModelOption, None),
        "backend": (
            Annotated[
                str | None,
                typer.Option("--backend", help="Encoder backend: torch, onnx or openvino [default: fastest exact]."),
            ],
            None,
        ),
        "batch_size": (
            Annotated[int, typer.Option("--batch-size", help=f"Texts encoded per batch, at most {MAX_BATCH_SIZE}.")],
            DEFAULT_BATCH_SIZE,
        ),
        "cache": (
            Annotated[bool, typer.Option("--cache/--no-cache", help="Read and fill the embedding cache.")],
            True,
        ),
        "thresholds": (
            Annotated[
                str | None,
                typer.Option(
                    "--thresholds",
                    help="This project's thresholds file, from `calibrate --thresholds` [default: ./dupfind.toml].",
                ),
            ],
            None,
        ),
        "precision": (
            Annotated[
                str,
                typer.Option(
                    "--precision",
                    help="fp32, or int8 (openvino: the model quantised once with NNCF; own thresholds).",
                ),
            ],
            "fp32",
        ),
        "device": (
            Annotated[
                str, typer.Option("--device", help="cpu, cuda (torch backend, fp16) or auto (cuda if torch sees one).")
            ],
            "auto",
        ),
    },
    EmbedderOptions,
)


"""Adds --model, --backend, --batch-size, --no-cache, --thresholds, --precision and --device; the command
receives `embedding: EmbedderOptions`."""


@dataclass(frozen=True)
class RerankOptions:
    """`--rerank`: a cross-encoder (`--reranker`, default the built-in one) decides among the bi-encoder's
    candidates, which it proposes at the recall-oriented threshold stored with the re-ranker."""

    rerank: bool
    reranker: str | None = None

    def __post_init__(self) -> None:
        if self.reranker is not None and not self.rerank:
            raise DupfindError("--reranker goes with --rerank")

    def name(self) -> str | None:
        """The re-ranker's name as given (None: the built-in one), for reports."""
        from dupfind.vectors.model import DEFAULT_RERANKER

        return (self.reranker or DEFAULT_RERANKER) if self.rerank else None

    def thresholds(self, ref: ModelRef, own: Thresholds, kind: str, given: float | None) -> tuple[float, float]:
        """The bi-encoder's candidate threshold and the re-rank threshold of a kind (`pair` or `mining`), for the
        bi-encoder `ref` whose own thresholds are `own`; `given`: --threshold (a re-rank score). Checked before
        anything loads. Without --rerank: (-1, -1), unused."""
        from dupfind.thresholds import read_settings
        from dupfind.vectors.model import fingerprint, resolve_reranker

        if not self.rerank:
            return -1.0, -1.0
        check_range("--threshold", given, 0, 1)
        settings = read_settings(resolve_reranker(self.reranker))
        candidates = settings.candidates_for(fingerprint(ref), own)
        decide: float = getattr(settings.thresholds, kind) if given is None else given
        return float(getattr(candidates, kind)), decide

    def load(self, embedding: EmbedderOptions) -> Reranker:
        """The re-ranker, on the backend of the bi-encoder, with the score cache when the embedding cache is on."""
        from dupfind.pairs.rerank import Reranker
        from dupfind.vectors.backends import load_pair_scorer
        from dupfind.vectors.pair_scorer import score_cache

        with stage("load re-ranker"):
            scorer = load_pair_scorer(self.reranker, embedding.backend)
        return Reranker(scorer, score_cache() if embedding.cache else None)


rerank_options = add_options(
    "reranking",
    {
        "rerank": (
            Annotated[
                bool,
                typer.Option(
                    "--rerank", help="A cross-encoder re-ranker decides among the bi-encoder's candidates (slower)."
                ),
            ],
            False,
        ),
        "reranker": (
            Annotated[
                str | None,
                typer.Option("--reranker", help="With --rerank: a built-in re-ranker or a re-ranker's folder."),
            ],
            None,
        ),
    },
    RerankOptions,
)


"""Adds --rerank and --reranker; the command receives `reranking: RerankOptions`."""


ENGINES = ("local", "ray")


@dataclass(frozen=True)
class EngineOptions:
    """Where the work runs: in this process (`local`), or read, encoded (and mined) on a Ray cluster (`ray`),
    which keeps its embeddings in a work folder for re-runs."""

    engine: str = "local"
    ray_address: str | None = None
    work_dir: str | None = None
    gpus_per_actor: float = 0.0

    def __post_init__(self) -> None:
        check_choice("--engine", self.engine, ENGINES)
        check_range("--gpus-per-actor", self.gpus_per_actor, 0)
        ray_only = self.ray_address is not None or self.work_dir is not None or self.gpus_per_actor
        if self.engine == "local" and ray_only:
            raise DupfindError("--ray-address, --work-dir and --gpus-per-actor go with --engine ray")

    @property
    def on_ray(self) -> bool:
        return self.engine == "ray"

    def work_folder(self, output: str | None) -> Path:
        """--work-dir, else the output's name with `.work` (absolute: the cluster's workers run elsewhere)."""
        from dupfind.io.destinations import is_folder_output

        if self.work_dir is not None:
            folder = Path(self.work_dir).absolute()
        elif output is not None and output != "-":
            folder = Path(f"{output.rstrip('/')}.work").absolute()
        else:
            raise DupfindError("--engine ray keeps its embeddings in --work-dir: give one, or --output")
        if folder.exists() and not folder.is_dir():
            raise DupfindError(f"--work-dir {folder}: is not a folder")
        if is_folder_output(output) and folder.resolve().is_relative_to(Path(str(output)).resolve()):
            raise DupfindError(f"--work-dir {folder}: is inside the output folder {output}, which is replaced whole")
        return folder

    def check(self, source: str, embedding: EmbedderOptions) -> EmbedderOptions:
        """Check that Ray is installed, that the input has files and that the encoder options fit the actors
        (before anything starts); returns the options of this process's own encoder, which only counts tokens,
        on the CPU."""
        from dupfind.ray.engine import input_paths, require_ray
        from dupfind.vectors.backends import check_backend

        input_paths(source)
        backend = check_backend(embedding.backend)
        if self.gpus_per_actor and backend != "torch":
            raise DupfindError(f"--gpus-per-actor needs --backend torch (the {backend} backend runs on CPUs)")
        if embedding.device == "cuda" and not self.gpus_per_actor:
            raise DupfindError("with --engine ray, --gpus-per-actor N puts the encoder actors on GPUs (not --device)")
        require_ray()
        return replace(embedding, device="cpu")

    def encoder_spec(self, embedding: EmbedderOptions, embedder: Embedder) -> EncoderSpec:
        """How the actors load the encoder: on a GPU with --gpus-per-actor, else like `embedder` on their CPUs."""
        from dupfind.ray.engine import EncoderSpec
        from dupfind.vectors.backends import check_backend
        from dupfind.vectors.backends.torch_backend import torch_fingerprint

        device = "cuda" if self.gpus_per_actor else "cpu"
        fingerprint = torch_fingerprint(embedding.resolve(), device) if self.gpus_per_actor else embedder.fingerprint
        backend = check_backend(embedding.backend)
        return EncoderSpec.of(embedding.model, backend, fingerprint, embedding.batch_size, embedding.precision, device)

    def workers(self) -> Workers:
        from dupfind.ray.engine import Workers

        return Workers(gpus=self.gpus_per_actor)

    @contextmanager
    def session(self, quiet: bool) -> Iterator[None]:
        """Ray for the block: joined at --ray-address, else started here and shut down after."""
        from dupfind.ray.engine import ray_session

        with stage("start Ray"), ray_session(self.ray_address, progress_bars=stderr_is_terminal() and not quiet):
            yield


engine_options = add_options(
    "engine",
    {
        "engine": (
            Annotated[
                str,
                typer.Option("--engine", help="local, or ray: read, encode (and mine) on a Ray cluster (dupfind[ray])"),
            ],
            "local",
        ),
        "ray_address": (
            Annotated[
                str | None,
                typer.Option(
                    "--ray-address",
                    help="With --engine ray: join this cluster (auto: $RAY_ADDRESS) [default: start one here].",
                ),
            ],
            None,
        ),
        "work_dir": (
            Annotated[
                str | None,
                typer.Option(
                    "--work-dir",
                    help="With --engine ray: embeddings kept for re-runs, on storage every node sees "
                    "[default: OUTPUT.work].",
                ),
            ],
            None,
        ),
        "gpus_per_actor": (
            Annotated[
                float,
                typer.Option("--gpus-per-actor", help="With --engine ray: GPUs of each encoder actor (torch backend)."),
            ],
            0.0,
        ),
    },
    EngineOptions,
)


"""Adds --engine, --ray-address, --work-dir and --gpus-per-actor; the command receives `engine: EngineOptions`."""
