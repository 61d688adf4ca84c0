"""Options that several commands take, declared once as `Annotated` types, and the machinery that adds a group
of them to a command and hands it one object (`add_options`), in the manner of sqlite-utils' shared decorators."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import typer

from dupfind.errors import DupfindError

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
        help="Cosine score from which a pair is a duplicate, -1 to 1; when re-ranking the re-rank score, 0 to 1 "
        "[default: calibrated].",
    ),
]


TopKOption = Annotated[int, typer.Option("--top-k", "-k", help="Neighbours kept per question.")]


OutputOption = Annotated[str | None, typer.Option("--output", "-o", help="Write to this file (format from extension).")]


FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="table, csv, tsv, jsonl, json, parquet or html (a page) [default: table on a terminal, else jsonl].",
    ),
]


ReportFormatOption = Annotated[
    str, typer.Option("--format", "-f", help="table (lines to read) or json (one JSON value on stdout).")
]
REPORT_FORMATS = ("table", "json")
JsonOption = Annotated[bool, typer.Option("--json", hidden=True, help="Deprecated: --format json.")]


def report_format(fmt: str, as_json: bool) -> str:
    """The report format of `--format` (checked), or json for the deprecated `--json`, which warns."""
    from dupfind.cli.output import warn

    check_choice("--format", fmt, REPORT_FORMATS)
    if as_json:
        warn("--json is deprecated and goes in the next release: use --format json")
        return "json"
    return fmt


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


IdColOption = Annotated[str | None, typer.Option("--id-col", help="Id column [default: 1-based row number].")]


SkipBadLinesOption = Annotated[bool, typer.Option("--skip-bad-lines", help="Skip malformed JSONL lines.")]


FormatInOption = Annotated[
    str | None, typer.Option("--format-in", help="Input format: csv, tsv, jsonl, json, parquet, txt.")
]


EncodingOption = Annotated[str, typer.Option("--encoding", help="Text encoding of the input.")]


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
