"""The options that say which model encodes (`embedder_options` → `EmbedderOptions`) and which re-ranks
(`rerank_options`, `rerank_by_default_options` → `RerankOptions`); checked before anything loads."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.options import (
    ModelOption,
    add_options,
    check_range,
)
from dupfind.cli.output import stage, verbose
from dupfind.vectors.encoding import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE

if TYPE_CHECKING:
    from pathlib import Path

    from dupfind.cli.options import F
    from dupfind.pairs.rerank import Reranker
    from dupfind.thresholds import Kind, Rule, Thresholds
    from dupfind.vectors.embedder import Embedder
    from dupfind.vectors.model import ModelRef


@dataclass(frozen=True)
class EmbedderOptions:
    """The options that say how questions become embeddings; checked before anything loads.

    `backend`, `precision` and `device` are resolved on construction (`auto`: chosen for this machine, see
    `dupfind.vectors.backends.resolve_choice`), and `reason` says why; `asked` keeps the backend and precision
    as given (a Ray cluster's nodes resolve them for themselves). A bad or impossible value is kept as `invalid`
    and raised by `resolve` (after the command's own checks, as always).
    """

    model: str | None
    backend: str | None
    batch_size: int
    cache: bool
    thresholds: str | None = None
    precision: str = "auto"
    device: str = "auto"
    reason: str = field(default="", compare=False)
    invalid: str | None = field(default=None, compare=False, repr=False)
    asked: tuple[str | None, str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        from dupfind.errors import DupfindError
        from dupfind.vectors.backends import resolve_choice

        check_range("--batch-size", self.batch_size, 1, MAX_BATCH_SIZE)
        if self.asked is None:  # a copy keeps what the options it copies were given
            object.__setattr__(self, "asked", (self.backend, self.precision))
        try:
            choice = resolve_choice(self.backend, self.precision, self.device)
        except DupfindError as exc:
            object.__setattr__(self, "invalid", str(exc))
            return
        object.__setattr__(self, "invalid", None)
        if (choice.backend, choice.precision, choice.device) != (self.backend, self.precision, self.device):
            for name in ("backend", "precision", "device", "reason"):
                object.__setattr__(self, name, getattr(choice, name))
        elif not self.reason:  # given in full: a copy keeps the reason of the options it copies
            object.__setattr__(self, "reason", choice.reason)

    def thresholds_for(self, ref: ModelRef, fallback: Thresholds | None = None) -> Thresholds:
        """The bi-encoder's thresholds in force: the project file's (`--thresholds`, else ./dupfind.toml) when it
        has them for this model, else `fallback` (an index's), else the model's own calibrated ones."""
        from dupfind.thresholds import project_thresholds_file, thresholds_in_force

        file = project_thresholds_file(self.thresholds)
        found, source = thresholds_in_force(ref, self.precision, file, fallback)
        _tell_source(file, source, ref, f"pair {found.pair}, mining {found.mining}")
        return found

    def rule(
        self,
        kind: Kind,
        ref: ModelRef,
        reranking: RerankOptions,
        threshold: float | None,
        fallback: Thresholds | None = None,
    ) -> Rule:
        """The rule in force for the bi-encoder `ref` (resolved once it is known: an index names its own), with
        --threshold (the cosine, or with a re-ranker its score) and the re-ranker; checked before anything loads."""
        from dupfind.thresholds import project_thresholds_file, resolve_rule

        check_range("--threshold", threshold, 0 if reranking.enabled else -1, 1)
        file = project_thresholds_file(self.thresholds)
        rule = resolve_rule(
            kind,
            ref,
            precision=self.precision,
            project_file=file,
            fallback=fallback,
            reranker=reranking.model(),
            threshold=threshold,
        )
        _tell_source(file, rule.source, ref, rule.describe())
        return rule

    def resolve(self) -> ModelRef:
        """The model these options name; raises a `DupfindError` for a bad model, backend, precision or device,
        before loading."""
        from dupfind.errors import DupfindError
        from dupfind.vectors.model import resolve_model

        if self.invalid is not None:
            raise DupfindError(self.invalid)
        return resolve_model(self.model)

    def load(self, model: str | None = None) -> Embedder:
        """Load the encoder (of `model` when given, else of --model) and wrap it with the cache and batch size; with
        -v, says which backend, precision and device encode, and why."""
        from dupfind.vectors.backends import load_encoder
        from dupfind.vectors.cache import EmbeddingCache
        from dupfind.vectors.embedder import Embedder
        from dupfind.vectors.precision import Choice

        if verbose():
            choice = Choice(str(self.backend), self.precision, self.device, self.reason)
            print(f"dupfind: encoding with {choice.describe()}", file=sys.stderr)
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
                typer.Option(
                    "--backend",
                    help="Encoder backend: auto, torch, onnx or openvino [default: auto, or $DUPFIND_BACKEND].",
                ),
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
                    help="auto (fast on this machine without losing duplicates: `dupfind models` says which), fp32, "
                    "bf16 (openvino) or int8 (openvino: the model quantised once with NNCF; own thresholds).",
                ),
            ],
            "auto",
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
    """`--rerank/--no-rerank` and `--reranker NAME|DIR`: a cross-encoder decides among the bi-encoder's candidates,
    which it proposes at the recall-oriented cosine stored with the re-ranker. `rerank` is None when neither flag
    was given: the command's `default` then decides (on for `compare` and `search`), or `--reranker` alone."""

    rerank: bool | None = None
    reranker: str | None = None
    default: bool = False

    @property
    def enabled(self) -> bool:
        if self.rerank is not None:
            return self.rerank
        return self.default or self.reranker is not None

    def name(self) -> str | None:
        """The re-ranker's name as given (None: no re-ranking), for reports."""
        from dupfind.vectors.model import DEFAULT_RERANKER

        return (self.reranker or DEFAULT_RERANKER) if self.enabled else None

    def model(self) -> ModelRef | None:
        """The re-ranker these options name, None without re-ranking; a `DupfindError` if it cannot be had, or if
        `--no-rerank` and `--reranker` were both given."""
        from dupfind.errors import DupfindError
        from dupfind.vectors.model import resolve_reranker

        if self.rerank is False and self.reranker is not None:
            raise DupfindError("--no-rerank and --reranker contradict each other: give one of them")
        return resolve_reranker(self.reranker) if self.enabled else None

    def load(self, embedding: EmbedderOptions) -> Reranker | None:
        """The re-ranker (None without re-ranking), on the backend, precision and device of the bi-encoder, with the
        score cache when the embedding cache is on."""
        from dupfind.pairs.rerank import Reranker
        from dupfind.thresholds import read_settings
        from dupfind.vectors.backends import load_pair_scorer
        from dupfind.vectors.pair_scorer import score_cache

        ref = self.model()
        if ref is None:
            return None
        with stage("load re-ranker"):
            scorer = load_pair_scorer(self.reranker, embedding.backend, embedding.precision, embedding.device)
        return Reranker(scorer, score_cache() if embedding.cache else None, fusion=read_settings(ref).fusion)


def _tell_source(file: Path | None, source: str, ref: ModelRef, thresholds: str) -> None:
    """With -v, where the thresholds in force come from."""
    if not verbose():
        return
    if file is not None and source == str(file):
        print(f"dupfind: thresholds from {file}: {thresholds}", file=sys.stderr)
    elif file is not None:
        print(f"dupfind: {file} has no thresholds for model {ref.name}; using {source}'s", file=sys.stderr)


def reranking_options(default: bool) -> Callable[[F], F]:
    """A decorator adding --rerank/--no-rerank and --reranker, re-ranking by `default` when neither is given; the
    command receives `reranking: RerankOptions`."""
    state = "on" if default else "off"
    return add_options(
        "reranking",
        {
            "rerank": (
                Annotated[
                    bool | None,
                    typer.Option(
                        "--rerank/--no-rerank",
                        help="Re-rank with the built-in re-ranker: a cross-encoder decides among the bi-encoder's "
                        f"candidates (slower; {state} by default).",
                        show_default=False,
                    ),
                ],
                None,
            ),
            "reranker": (
                Annotated[
                    str | None,
                    typer.Option(
                        "--reranker",
                        help="Re-rank with this re-ranker: a built-in name or a folder from train-reranker.",
                    ),
                ],
                None,
            ),
        },
        functools.partial(RerankOptions, default=default),
    )


rerank_options = reranking_options(default=False)
"""Re-ranking when asked (--rerank): `mine`, `clusters`, `dedupe` and `eval`, where it costs most."""


rerank_by_default_options = reranking_options(default=True)
"""Re-ranking unless --no-rerank: `compare` and `search`, where it adds a fraction of a second."""
