"""What every command shares: the Typer app, error handling, stderr messages, progress bars, and the options.

Options that several commands take are declared once here: as `Annotated` types, and as groups that a
decorator adds to a command and hands it as one object (`input_options` → a `QuestionReader`,
`embedder_options` → `EmbedderOptions`), in the manner of sqlite-utils' shared option decorators.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import io
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand

from dupfind.encoding import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, Progress
from dupfind.errors import DupfindError

if TYPE_CHECKING:
    from dupfind.clustering import Clusters
    from dupfind.embedder import Embedder
    from dupfind.encoding import Embeddings
    from dupfind.index import Index
    from dupfind.model import ModelRef, Thresholds
    from dupfind.ray_engine import EncoderSpec, Workers
    from dupfind.reranker import Reranker
    from dupfind.tables import QuestionReader, Questions

app = typer.Typer(
    name="dupfind",
    help="Find duplicate questions with sentence embeddings.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)

F = TypeVar("F", bound=Callable[..., Any])

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model", "-m", help="A built-in model (dupfind models) or a local sentence-transformers model directory."
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars, summaries or warnings on stderr.")]
TextColOption = Annotated[str | None, typer.Option("--text-col", help="Question column [default: auto-detected].")]
DelimiterOption = Annotated[
    str | None,
    typer.Option("--delimiter", help="CSV field separator [default: sniffed from the header: , ; | or tab]."),
]
ThresholdOption = Annotated[
    float | None,
    typer.Option(
        "--threshold",
        "-t",
        help="Cosine score from which a pair is a duplicate, -1 to 1; with --rerank the re-rank score, 0 to 1 "
        "[default: calibrated].",
    ),
]
TopKOption = Annotated[int, typer.Option("--top-k", "-k", help="Neighbours kept per question.")]
OutputOption = Annotated[str | None, typer.Option("--output", "-o", help="Write to this file (format from extension).")]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", "-f", help="table, csv, tsv, jsonl, json or parquet [default: table on a terminal, else jsonl]."
    ),
]
FileArgument = Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON, Parquet or text file; - for stdin.")]
MethodOption = Annotated[
    str,
    typer.Option(
        "--method",
        help="communities: every member is a duplicate of the group's centre; "
        "components: duplicates of duplicates join (chains).",
    ),
]
Question1ColOption = Annotated[str, typer.Option("--question1-col", help="First question column.")]
Question2ColOption = Annotated[str, typer.Option("--question2-col", help="Second question column.")]
LabelColOption = Annotated[str, typer.Option("--label-col", help="Label column (1 duplicate, 0 not).")]
ClusterColOption = Annotated[str, typer.Option("--cluster-col", help="Gold cluster column.")]
FormatInOption = Annotated[
    str | None, typer.Option("--format-in", help="Input format: csv, tsv, jsonl, json, parquet, txt.")
]
EncodingOption = Annotated[str, typer.Option("--encoding", help="Text encoding of the input.")]

_state = {"verbose": False, "quiet": False}
_displays: list[Any] = []  # the progress display on screen, if any


def _version(show: bool) -> None:
    if show:
        from dupfind import __version__

        print(f"dupfind {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print timings of each stage, and tracebacks, on stderr.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Find duplicate questions with sentence embeddings, offline.

    Example: dupfind mine questions.csv --limit 20
    """
    _state["verbose"] = verbose


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Time a stage of a command; the time is printed on stderr with --verbose."""
    started = time.perf_counter()
    yield
    if _state["verbose"]:
        print(f"dupfind: {name}: {time.perf_counter() - started:.2f} s", file=sys.stderr)


def error(message: str) -> None:
    """One line on stderr."""
    print(f"dupfind: error: {message}", file=sys.stderr)


def info(message: str, quiet: bool = False) -> None:
    """A summary line on stderr (never stdout, which carries only data); nothing with --quiet."""
    if not (quiet or _state["quiet"]):
        print(message, file=sys.stderr)


def warn(message: str) -> None:
    """A warning line on stderr; nothing with --quiet."""
    if not _state["quiet"]:
        print(f"dupfind: warning: {message}", file=sys.stderr)


def verbose() -> bool:
    """Whether --verbose was given."""
    return _state["verbose"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (from `timeout`, systemd, Kubernetes, Slurm), handled like Ctrl-C: nothing is left half-written."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def command(name: str, group: typer.Typer | None = None, aliases: dict[str, str] | None = None) -> Callable[[F], F]:
    """Register a command (on `group`, else the top level) that turns user errors into one line and exit 2,
    an interrupt or SIGTERM into exit 130/143 with nothing half-written, a closed pipe into a quiet exit, and any
    other error into one line and exit 2 (the traceback with --verbose). `aliases` maps old option spellings to
    the current ones: they still work, hidden, with a warning."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _state["quiet"] = bool(kwargs.get("quiet", False))
            main_thread = threading.current_thread() is threading.main_thread()  # signals reach only that one
            previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("always")
                    warnings.showwarning = _show_warning
                    result = function(*args, **kwargs)
                sys.stdout.flush()
                return result
            except DupfindError as exc:
                error(str(exc))
                raise typer.Exit(2) from None
            except BrokenPipeError:
                _silence_stdout()
                raise typer.Exit(0) from None
            except Terminated:
                error("terminated")
                raise typer.Exit(143) from None
            except KeyboardInterrupt:
                error("interrupted")
                raise typer.Exit(130) from None
            except OSError as exc:
                error(f"cannot write the output: {exc.strerror or exc}")
                _silence_stdout()
                raise typer.Exit(2) from None
            except (typer.Exit, typer.Abort, typer.BadParameter):
                raise
            except Exception as exc:
                if _state["verbose"]:
                    traceback.print_exc(file=sys.stderr)
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                error(f"unexpected error: {detail} (run with -v for the traceback)")
                raise typer.Exit(2) from None
            finally:
                if main_thread:
                    signal.signal(signal.SIGTERM, previous)

        settings: dict[str, Any] = {"cls": _aliased(aliases)} if aliases else {}
        (group or app).command(name, **settings)(wrapper)
        return function

    return decorate


def _aliased(aliases: dict[str, str]) -> type[TyperCommand]:
    """A command class that accepts old option spellings, hidden from --help, with a warning."""

    class AliasedCommand(TyperCommand):
        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            renamed = []
            for arg in args:
                name, equals, value = arg.partition("=")
                if name in aliases:
                    warn(f"{name} is now {aliases[name]}; the old spelling goes in the next release")
                    arg = aliases[name] + equals + value
                renamed.append(arg)
            return super().parse_args(ctx, renamed)

    return AliasedCommand


def _show_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None
) -> None:
    """Library warnings as one `dupfind: warning:` line on stderr (none with --quiet)."""
    warn(str(message))


def command_group(name: str, help: str) -> typer.Typer:
    """A group of subcommands (`dupfind NAME ...`), registered on the top level."""
    group = typer.Typer(name=name, help=help, no_args_is_help=True, rich_markup_mode=None)
    app.add_typer(group, name=name)
    return group


def _silence_stdout() -> None:
    """After the reader of stdout went away, point stdout at /dev/null so the exit flush does not fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass


class ClosedStream(io.TextIOBase):
    """Standard output when the shell closed it (`>&-`): writing data there is an error, not a silent loss."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")

    def isatty(self) -> bool:
        return False


def guard_standard_streams() -> None:
    """Hold fds 0-2 open (on /dev/null) when the shell closed them, so no file we open takes their place:
    closed stdin reads as empty, closed stdout refuses data, closed stderr swallows messages."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
            if fd == 0:
                sys.stdin = open(fd, encoding="utf-8", closefd=False)  # noqa: SIM115
            elif fd == 1:
                sys.stdout = ClosedStream()
            else:
                sys.stderr = open(fd, "w", encoding="utf-8", closefd=False)  # noqa: SIM115


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty() and not os.environ.get("DUPFIND_NO_PROGRESS")


@contextmanager
def progress_bar(description: str, quiet: bool) -> Iterator[Progress]:
    """A rich progress bar on stderr, shown only to a terminal and unless quiet; yields `progress(done, total)`.

    Opened while another is shown, it is a second line of the same display (rich shows one at a time).
    """
    if quiet or not stderr_is_terminal():
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Display

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    outer = _displays[-1] if _displays else None
    with (
        contextlib.nullcontext(outer)
        if outer
        else Display(*columns, console=Console(stderr=True), transient=True) as display
    ):
        _displays.append(display)
        task = display.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            display.update(task, advance=done, total=total)

        try:
            yield advance
        finally:
            _displays.pop()
            if outer is not None:
                display.remove_task(task)


def report_input(questions: Questions, quiet: bool) -> None:
    """Say on stderr what was read and what was skipped."""
    skipped = []
    if questions.skipped_blank:
        skipped.append(f"{questions.skipped_blank} blank")
    if questions.skipped_bad_lines:
        skipped.append(f"{questions.skipped_bad_lines} malformed lines")
    if skipped:
        warn(f"{questions.source}: skipped {' and '.join(skipped)}")
    info(f"Read {len(questions)} questions from {questions.source} (column '{questions.text_col}')", quiet)


def check_range(flag: str, value: float | None, low: float, high: float | None = None) -> None:
    """A one-line error naming the option when a number given to it is out of range (None: not given)."""
    if value is None or (low <= value and (high is None or value <= high)):
        return
    if high is None:
        raise DupfindError(f"{flag} must be at least {low:g}, got {value:g}")
    raise DupfindError(f"{flag} must be between {low:g} and {high:g}, got {value:g}")


def check_choice(flag: str, value: str, choices: Sequence[str]) -> None:
    """A one-line error naming the option when its value is not one of `choices`."""
    if value not in choices:
        raise DupfindError(f"unknown {flag} '{value}' (choose from {', '.join(choices)})")


def read_questions(reader: QuestionReader, source: str, quiet: bool) -> Questions:
    """Read a question file with the command's input options, and say what was read."""
    with stage("read"):
        questions = reader.load(source)
    report_input(questions, quiet)
    return questions


def add_options(target: str, options: dict[str, tuple[Any, Any]], build: Callable[..., Any]) -> Callable[[F], F]:
    """A decorator adding the options `{name: (Annotated type, default)}` to a command, which then receives
    `target=build(**their values)` instead of each of them."""

    def decorate(function: F) -> F:
        signature = inspect.signature(function)
        names = inspect.unwrap(function).__globals__  # the command module's: its annotations are strings
        kept = [_evaluated(parameter, names) for parameter in signature.parameters.values() if parameter.name != target]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
            for name, (annotation, default) in options.items()
        ]

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            kwargs[target] = build(**{name: kwargs.pop(name) for name in options})
            return function(*args, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {parameter.name: parameter.annotation for parameter in [*kept, *added]}
        return wrapper  # type: ignore[return-value]

    return decorate


def _evaluated(parameter: inspect.Parameter, names: dict[str, Any]) -> inspect.Parameter:
    """The parameter with its annotation evaluated in the command module, unless it names a type imported only
    for type checking (the group object another decorator hands the command)."""
    if not isinstance(parameter.annotation, str):
        return parameter
    try:
        return parameter.replace(annotation=eval(parameter.annotation, names))
    except NameError:
        return parameter


def _reader(
    text_col: str | None,
    id_col: str | None,
    format_in: str | None,
    encoding: str,
    skip_bad_lines: bool,
    delimiter: str | None,
) -> QuestionReader:
    from dupfind.tables import QuestionReader

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
        from dupfind.model import load_thresholds, project_thresholds_file, read_project_thresholds

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
        from dupfind.backends import check_backend, check_device, check_precision
        from dupfind.model import resolve_model

        backend = check_backend(self.backend)
        check_precision(backend, self.precision)
        check_device(backend, self.device)
        return resolve_model(self.model)

    def load(self, model: str | None = None) -> Embedder:
        """Load the encoder (of `model` when given, else of --model) and wrap it with the cache and batch size."""
        from dupfind.backends import load_encoder
        from dupfind.embedder import Embedder
        from dupfind.embedding_cache import EmbeddingCache

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
        from dupfind.model import DEFAULT_RERANKER

        return (self.reranker or DEFAULT_RERANKER) if self.rerank else None

    def thresholds(self, ref: ModelRef, own: Thresholds, kind: str, given: float | None) -> tuple[float, float]:
        """The bi-encoder's candidate threshold and the re-rank threshold of a kind (`pair` or `mining`), for the
        bi-encoder `ref` whose own thresholds are `own`; `given`: --threshold (a re-rank score). Checked before
        anything loads. Without --rerank: (-1, -1), unused."""
        from dupfind.model import fingerprint, resolve_reranker
        from dupfind.reranker import read_settings

        if not self.rerank:
            return -1.0, -1.0
        check_range("--threshold", given, 0, 1)
        settings = read_settings(resolve_reranker(self.reranker))
        candidates = settings.candidates_for(fingerprint(ref), own)
        decide: float = getattr(settings.thresholds, kind) if given is None else given
        return float(getattr(candidates, kind)), decide

    def load(self, embedding: EmbedderOptions) -> Reranker:
        """The re-ranker, on the backend of the bi-encoder, with the score cache when the embedding cache is on."""
        from dupfind.backends import load_reranker
        from dupfind.reranker import score_cache

        with stage("load re-ranker"):
            return load_reranker(self.reranker, embedding.backend, score_cache() if embedding.cache else None)


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
        from dupfind.tables import is_folder_output

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
        from dupfind.backends import check_backend
        from dupfind.ray_engine import input_paths, require_ray

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
        from dupfind.backends import check_backend
        from dupfind.backends.torch_backend import torch_fingerprint
        from dupfind.ray_engine import EncoderSpec

        device = "cuda" if self.gpus_per_actor else "cpu"
        fingerprint = torch_fingerprint(embedding.resolve(), device) if self.gpus_per_actor else embedder.fingerprint
        backend = check_backend(embedding.backend)
        return EncoderSpec.of(embedding.model, backend, fingerprint, embedding.batch_size, embedding.precision, device)

    def workers(self) -> Workers:
        from dupfind.ray_engine import Workers

        return Workers(gpus=self.gpus_per_actor)

    @contextmanager
    def session(self, quiet: bool) -> Iterator[None]:
        """Ray for the block: joined at --ray-address, else started here and shut down after."""
        from dupfind.ray_engine import ray_session

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


@contextmanager
def rerank_progress(reranker: Reranker, quiet: bool) -> Iterator[Reranker]:
    """The re-ranker with a progress bar on stderr while the block runs."""
    with progress_bar("Re-ranking", quiet) as progress:
        yield reranker.with_progress(progress)


@contextmanager
def embedding_progress(embedder: Embedder, description: str, quiet: bool) -> Iterator[Embedder]:
    """The embedder with a progress bar on stderr while the block runs."""
    with progress_bar(description, quiet) as progress:
        yield embedder.with_progress(progress)


def open_corpus(
    source: str, reader: QuestionReader, embedding: EmbedderOptions, quiet: bool
) -> tuple[Index, Embedder, Thresholds]:
    """A corpus to search or mine against, the embedder of its model and the thresholds in force: an index file
    as stored (its own model unless --model, which must be the same), or a question file embedded now."""
    from dupfind.corpus import index_questions
    from dupfind.index import is_index, open_index

    if is_index(source):
        with stage("read index"):
            index = open_index(source)
        ref = index.find_model(embedding.model, source)
        return index, embedding.load(ref.name), embedding.thresholds_for(ref, index.thresholds)
    ref = embedding.resolve()
    questions = read_questions(reader, source, quiet)
    embedder = embedding.load()
    with embedding_progress(embedder, f"Encoding {source}", quiet) as progressing:
        index = index_questions(ref, progressing, questions)
    return index, embedder, embedding.thresholds_for(ref, index.thresholds)


def check_group_options(threshold: float | None, method: str, top_k: int) -> None:
    """The checks of the options that say how `clusters` and `dedupe` group questions."""
    from dupfind.clustering import METHODS

    check_range("--threshold", threshold, -1, 1)
    check_choice("--method", method, METHODS)
    check_range("--top-k", top_k, 1)


def group_questions(
    file: str,
    reader: QuestionReader,
    embedding: EmbedderOptions,
    reranking: RerankOptions,
    threshold: float | None,
    method: str,
    top_k: int,
    quiet: bool,
) -> tuple[Questions, Clusters, Embeddings]:
    """Read a file and group its questions into duplicates (for `clusters` and `dedupe`)."""
    from dupfind.clustering import cluster_texts

    ref = embedding.resolve()
    own = embedding.thresholds_for(ref)
    decide = None
    if reranking.rerank:
        threshold, decide = reranking.thresholds(ref, own, "mining", threshold)
    threshold = own.mining if threshold is None else threshold
    questions = read_questions(reader, file, quiet)
    embedder = embedding.load()
    with embedding_progress(embedder, "Encoding", quiet) as progressing:
        if decide is None:
            groups, embeddings = cluster_texts(progressing, questions.texts, threshold, method, top_k)
        else:
            with rerank_progress(reranking.load(embedding), quiet) as reranker:
                rerank = (reranker, decide)
                groups, embeddings = cluster_texts(progressing, questions.texts, threshold, method, top_k, rerank)
    rule = f"cosine ≥ {threshold:.3f}"
    if decide is not None:
        rule = f"re-rank score ≥ {decide:.3f} among candidates with {rule}"
    info(groups.describe(rule, method), quiet)
    return questions, groups, embeddings
