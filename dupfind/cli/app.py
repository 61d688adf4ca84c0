"""The Typer app and what every command runs inside: error handling, exit codes, signals, standard streams."""

from __future__ import annotations

import errno
import functools
import io
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from types import FrameType
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand

from dupfind.cli.output import _invocation, _state, error, warn
from dupfind.errors import DupfindError, plain

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
                error(f"cannot write the output: {exc.strerror or _first_line(exc)}")
                _silence_stdout()
                raise typer.Exit(2) from None
            except (typer.Exit, typer.Abort, typer.BadParameter):
                raise
            except Exception as exc:
                if _state["verbose"]:
                    sys.stderr.write(plain(traceback.format_exc()))
                error(f"unexpected error: {_first_line(exc)} (run with -v for the traceback)")
                raise typer.Exit(2) from None
            finally:
                if main_thread:
                    signal.signal(signal.SIGTERM, previous)

        (group or app).command(name, cls=_recorded(aliases or {}))(wrapper)
        return function

    return decorate


def _first_line(exc: BaseException) -> str:
    """The first line of an error's message (Ray's errors hold a whole traceback), else its type's name."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _recorded(aliases: dict[str, str]) -> type[TyperCommand]:
    """A command class that remembers the command line (for the pages it writes) and accepts old option spellings,
    hidden from --help, with a warning."""

    class RecordedCommand(TyperCommand):
        def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
            names: list[str] = []
            outer = ctx
            while outer.parent is not None:  # the root's name may be `python -m dupfind`
                names.insert(0, outer.info_name or "")
                outer = outer.parent
            _invocation[:] = ["dupfind", *names, *args]
            renamed = []
            for arg in args:
                name, equals, value = arg.partition("=")
                if name in aliases:
                    warn(f"{name} is now {aliases[name]}; the old spelling goes in the next release")
                    arg = aliases[name] + equals + value
                renamed.append(arg)
            return super().parse_args(ctx, renamed)

    return RecordedCommand


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
