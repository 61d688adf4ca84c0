"""The options that say which model encodes (`embedder_options` → `EmbedderOptions`) and which re-ranks
(`rerank_options` → `RerankOptions`); checked before anything loads."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.options import (
    ModelOption,
    add_options,
    check_range,
)
from dupfind.cli.output import stage, verbose
from dupfind.errors import DupfindError
from dupfind.vectors.encoding import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE

if TYPE_CHECKING:
    from dupfind.pairs.rerank import Reranker
    from dupfind.thresholds import Thresholds
    from dupfind.vectors.embedder import Embedder
    from dupfind.vectors.model import ModelRef


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
