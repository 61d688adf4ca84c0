"""Where the work runs: `engine_options` hands `mine` and `index build` an `EngineOptions` (local, or Ray)."""

from __future__ import annotations

import fnmatch
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dupfind.cli.model_options import EmbedderOptions, RerankOptions
from dupfind.cli.options import (
    add_options,
    check_choice,
    check_range,
)
from dupfind.cli.output import stage, stderr_is_terminal, verbose
from dupfind.errors import DupfindError

if TYPE_CHECKING:
    from dupfind.pairs.rerank import Reranker
    from dupfind.ray.actors import ModelSpec, Workers
    from dupfind.vectors.embedder import Embedder

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

    def check(self, source: str, embedding: EmbedderOptions, work_dir: Path, output: str | None) -> None:
        """Check that Ray is installed, that the input has files, none of them in the work folder (`work_folder`),
        that the output would not be read back as input by the next run, and that the encoder options fit the
        actors (before anything starts)."""
        from dupfind.ray.read import input_files
        from dupfind.ray.session import require_ray
        from dupfind.vectors.backends import check_backend

        files = input_files(source)
        folder = work_dir.resolve()
        if _in_input_folder(folder, source):
            raise DupfindError(
                f"--work-dir {work_dir}: is inside the input folder {source}, all of which is read; put it elsewhere"
            )
        if any(Path(file.path).is_relative_to(folder) for file in files):
            raise DupfindError(f"--work-dir {work_dir}: holds files of the input {source}; put it elsewhere")
        _check_output_outside_input(source, output)
        backend = check_backend(embedding.backend)
        if self.gpus_per_actor and backend != "torch":
            raise DupfindError(f"--gpus-per-actor needs --backend torch (the {backend} backend runs on CPUs)")
        if embedding.device == "cuda" and not self.gpus_per_actor:
            raise DupfindError("with --engine ray, --gpus-per-actor N puts the encoder actors on GPUs (not --device)")
        require_ray()

    def agree(self, embedding: EmbedderOptions) -> EmbedderOptions:
        """The encoder options of every actor: on CPUs, the backend and precision given (`auto` too) resolved on
        each node of the cluster, the most conservative of their choices for all (-v says each node's); on GPUs,
        `embedding` as it is."""
        from dupfind.ray.encode import choose_on_nodes
        from dupfind.vectors.backends import check_backend

        if self.gpus_per_actor:
            return embedding
        backend, precision = embedding.asked or (embedding.backend, embedding.precision)
        chosen = choose_on_nodes(check_backend(backend), precision)
        if verbose():
            for node, choice in chosen.nodes.items():
                print(f"dupfind: node {node} chooses {choice.describe()}", file=sys.stderr)
        agreed = chosen.agreed
        return replace(
            embedding, backend=agreed.backend, precision=agreed.precision, device=agreed.device, reason=agreed.reason
        )

    def encoder_spec(self, embedding: EmbedderOptions, embedder: Embedder) -> ModelSpec:
        """How the actors load the encoder: on a GPU with --gpus-per-actor, else like `embedder` on their CPUs."""
        from dupfind.ray.actors import ModelSpec
        from dupfind.vectors.backends import check_backend
        from dupfind.vectors.backends.torch_backend import torch_fingerprint

        device = self._actor_device()
        fingerprint = torch_fingerprint(embedding.resolve(), device) if self.gpus_per_actor else embedder.fingerprint
        backend = check_backend(embedding.backend)
        return ModelSpec.of(embedding.model, backend, fingerprint, embedding.batch_size, embedding.precision, device)

    def scorer_spec(self, embedding: EmbedderOptions, reranking: RerankOptions, reranker: Reranker) -> ModelSpec:
        """How the actors load the re-ranker `reranker` (loaded on the driver): on the devices and at the precision
        of the encoder actors."""
        from dupfind.ray.actors import ModelSpec
        from dupfind.vectors.backends import check_backend

        backend = check_backend(embedding.backend)
        return ModelSpec.of(
            reranking.reranker,
            backend,
            reranker.scorer.fingerprint,
            embedding.batch_size,
            embedding.precision,
            self._actor_device(),
        )

    def _actor_device(self) -> str:
        return "cuda" if self.gpus_per_actor else "cpu"

    def workers(self) -> Workers:
        from dupfind.ray.actors import Workers

        return Workers(gpus=self.gpus_per_actor)

    @contextmanager
    def session(self, quiet: bool) -> Iterator[None]:
        """Ray for the block: joined at --ray-address, else started here and shut down after; Ray's C++ log
        lines only with -v."""
        from dupfind.ray.session import ray_session

        bars = stderr_is_terminal() and not quiet
        with stage("start Ray"), ray_session(self.ray_address, progress_bars=bars, native_logs=verbose()):
            yield


engine_options = add_options(
    "engine",
    {
        "engine": (
            Annotated[
                str,
                typer.Option(
                    "--engine", help="local, or ray: read, encode (mine and re-rank) on a Ray cluster (dupfind[ray])"
                ),
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
                    help="With --engine ray: embeddings (and re-rank scores) kept for re-runs, on storage every "
                    "node sees [default: OUTPUT.work].",
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


def _check_output_outside_input(source: str, output: str | None) -> None:
    """Refuse an output inside the input folder, or matching the input glob: the next run would read it back as
    questions (the output file itself being an input is refused with the other destination checks)."""
    if output is None or output == "-":
        return
    target = Path(output).absolute()
    if _in_input_folder(target, source):
        raise DupfindError(
            f"{output}: is inside the input folder {source}, all of which is read; write the result elsewhere"
        )
    if not Path(source).exists() and _matches_glob(target, source):
        raise DupfindError(f"{output}: matches the input {source}, so a later run would read it; write it elsewhere")


def _in_input_folder(path: Path, source: str) -> bool:
    """Whether `path` lies in the input `source` when that is a folder (all of which is read)."""
    return Path(source).is_dir() and path.resolve().is_relative_to(Path(source).resolve())


def _matches_glob(path: Path, pattern: str) -> bool:
    """Whether `path`, or a part file in it (a folder output), would be one of the glob's files (`**`: any depth)."""
    absolute = str(Path(pattern).absolute())
    written = [path, path / "part-00000.parquet"]
    if "**" in absolute:
        return any(fnmatch.fnmatchcase(str(file), absolute) for file in written)
    return any(file.match(absolute) for file in written)
