"""Ray for a command: joined or started on loopback only, its own output kept off stderr and stdout (its
Python loggers, its C++ log lines, the errors it relays from workers), SIGTERM and Ctrl-C left to dupfind, and an
error that crosses Ray brought back as dupfind's one-line error."""

from __future__ import annotations

import builtins
import io
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from dupfind.errors import DupfindError, plain
from dupfind.offline import offline_environment
from dupfind.vectors.encoding import available_cores

RAY_MISSING = "--engine ray needs Ray, which is not installed: pip install 'dupfind[ray]'"
RETRIES = 3  # a failed task is run again, a dead actor restarted, this many times
MAX_TEMP_PARENT = 24  # characters of a temporary folder under which Ray's socket paths still fit


def require_ray() -> None:
    """Raise a `DupfindError` saying how to install Ray when it cannot be imported."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise DupfindError(RAY_MISSING) from None


@contextmanager
def ray_session(address: str | None = None, progress_bars: bool = False, native_logs: bool = False) -> Iterator[None]:
    """Ray for the block: joined at `address` (`auto`: $RAY_ADDRESS or the cluster running here), else a local
    Ray on every core of this machine, listening on 127.0.0.1 only, shut down after (its session folder
    removed), on an error, SIGTERM or Ctrl-C too. A Ray this process already started is used as it is (and
    left running). Ray's own log lines (its C++ ones unless `native_logs`), the errors it relays and its
    deprecation warnings are kept off stderr and stdout; its progress bars only with `progress_bars`. An error
    that crosses Ray comes out of the block in one line (`worker_errors`)."""
    require_ray()
    import ray
    from ray.data import DataContext

    with warnings.catch_warnings(), _quiet_loggers(), _quiet_relay(), worker_errors():
        for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)
        context = DataContext.get_current()
        context.execution_options.preserve_order = True  # blocks encoded in the order made (longest texts first)
        context.enable_progress_bars = progress_bars
        context.print_on_execution_start = False
        if ray.is_initialized():
            yield
            return
        settings: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
        with ExitStack() as stack:
            if not native_logs:
                stack.enter_context(_native_stderr_off())
            if address is None:
                loopback_only()
                temporary = stack.enter_context(tempfile.TemporaryDirectory(prefix="dupfind-ray-", dir=_temp_parent()))
                settings |= {
                    "num_cpus": available_cores(),
                    "include_dashboard": False,
                    "_node_ip_address": "127.0.0.1",
                    "_temp_dir": temporary,  # its sockets, logs and spilled objects: removed, not left in /tmp/ray
                }
            try:
                with _environment(offline_environment()), _own_signal_handlers():  # the processes Ray starts inherit it
                    ray.init(address=address, **settings)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise DupfindError(f"cannot start or join Ray at {address or 'this machine'}: {exc}") from None
            try:
                yield
            finally:
                ray.shutdown()


def _temp_parent() -> str:
    """Where a local Ray keeps its session: the temporary folder, unless its path is too long for the Unix
    sockets Ray makes in it (at most 107 bytes, ~80 of them Ray's own), then /tmp."""
    parent = tempfile.gettempdir()
    return parent if len(parent) <= MAX_TEMP_PARENT or not os.path.isdir("/tmp") else "/tmp"


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """These environment variables for the block (the processes started in it keep them), then as they were."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _quiet_loggers() -> Iterator[None]:
    """Ray's loggers quiet for the block: Ray Data logs every dataset it runs at INFO, and a worker's failure
    with its traceback at ERROR, which dupfind reports in one line itself."""
    loggers = [logging.getLogger(name) for name in ("ray", "ray.data")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextmanager
def _quiet_relay() -> Iterator[None]:
    """No worker's log lines nor task failures relayed by Ray for the block: the driver prints those on stdout,
    in colour, whatever `log_to_driver` says (`ray._private.worker.print_worker_logs`), where they would mix
    with the data; dupfind reports the error that ends a run itself."""
    from ray._private import worker

    enabled = getattr(worker, "_worker_logs_enabled", True)
    worker._worker_logs_enabled = False
    try:
        yield
    finally:
        worker._worker_logs_enabled = enabled


@contextmanager
def _native_stderr_off() -> Iterator[None]:
    """What the C++ code of this process writes on its stderr (file descriptor 2) discarded for the block, while
    Python's `sys.stderr` writes where it did: Ray's core worker logs its ERROR and WARNING lines there (the
    constructor arguments of Ray Data's own actors in the object store, for one, which dupfind cannot avoid),
    and no setting of Ray turns them off without a line of its own (`RAY_BACKEND_LOG_LEVEL`). Nothing changes
    when `sys.stderr` is not descriptor 2 (a test's capture)."""
    try:
        python_stderr = sys.stderr
        if python_stderr.fileno() != 2:
            raise ValueError
    except (AttributeError, ValueError, io.UnsupportedOperation):
        yield
        return
    python_stderr.flush()
    saved = os.dup(2)
    sys.stderr = open(  # noqa: SIM115 -- closed below, after descriptor 2 is back
        saved, "w", encoding=python_stderr.encoding, errors=python_stderr.errors, buffering=1
    )
    discard = os.open(os.devnull, os.O_WRONLY)
    os.dup2(discard, 2)
    os.close(discard)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        sys.stderr.close()
        sys.stderr = python_stderr


@contextmanager
def _own_signal_handlers() -> Iterator[None]:
    """This process's handlers of SIGTERM and SIGINT back after the block: starting Ray installs a C++ handler
    that prints a stack dump and aborts on SIGTERM, where dupfind shuts Ray down and exits 143."""
    if threading.current_thread() is not threading.main_thread():  # signals reach only that one
        yield
        return
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in handlers.items():
            if handler is not None:
                signal.signal(signum, handler)


def loopback_only() -> None:
    """Make a Ray started by this process listen on 127.0.0.1 only. Ray turns `_node_ip_address="127.0.0.1"`
    into this machine's address unless clusters are off (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`), a setting
    it reads when imported: set for the processes it starts, and for this one if it imported Ray already."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


class WorkerFailure(RuntimeError):
    """An unexpected error on the Ray cluster (a worker's bug, a worker or node lost), in one line."""


def worker_error(exc: BaseException) -> Exception | None:
    """What an exception that crossed Ray stands for, in one line: a worker's `DupfindError` as itself, its
    `OSError` as a `DupfindError` naming the file, anything else as a `WorkerFailure`; None for an exception
    that is not Ray's. A task's error comes back as an object (`RayTaskError.cause`); Ray Data's actors and
    an actor that failed to start leave only the text of the worker's traceback, which names it."""
    from ray.exceptions import RayError, RayTaskError

    if not isinstance(exc, RayError):
        return None
    found: BaseException = exc
    seen: set[int] = set()
    while isinstance(found, RayTaskError) and isinstance(found.cause, BaseException) and id(found) not in seen:
        seen.add(id(found))
        found = found.cause
    if not isinstance(found, RayError):
        if isinstance(found, OSError) and found.strerror:
            return DupfindError(_os_message(found.strerror, found.filename))
        return _error_named(type(found).__name__, str(found))
    told = [match for match in _EXCEPTION_LINE.finditer(plain(str(exc))) if not match["name"].startswith("ray.")]
    if told:
        return _error_named(told[0]["name"], told[0]["message"])
    return WorkerFailure(f"on the Ray cluster: {_first_line(str(exc))}")


def _error_named(name: str, message: str) -> Exception:
    """The one-line error of a worker's exception of type `name` (qualified or not) with `message`."""
    kind = name.rsplit(".", 1)[-1]
    if kind == DupfindError.__name__:
        return DupfindError(_first_line(message))
    builtin = getattr(builtins, kind, None)
    if isinstance(builtin, type) and issubclass(builtin, OSError):
        told = _OS_MESSAGE.fullmatch(_first_line(message))
        return DupfindError(_os_message(told["strerror"], told["filename"]) if told else _os_message(message, None))
    return WorkerFailure(f"on the Ray cluster: {kind}: {_first_line(message)}")


def _os_message(strerror: str, filename: object) -> str:
    """An `OSError` of a worker, naming the file where known."""
    return f"{filename}: {strerror}" if filename else f"on the Ray cluster: {_first_line(strerror)}"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in plain(text).splitlines() if line.strip()]
    return lines[0] if lines else "no message"


@contextmanager
def worker_errors() -> Iterator[None]:
    """An error that crossed Ray raised again on the driver in one line (`worker_error`), Ray's own behind it."""
    try:
        yield
    except Exception as exc:
        error = worker_error(exc)
        if error is None:
            raise
        raise error from exc


# A traceback's last line, `module.Type: message`, at the start of a line of the text Ray gives a worker's error.
_EXCEPTION_LINE = re.compile(r"^(?P<name>(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception)): (?P<message>.*)$", re.M)
_OS_MESSAGE = re.compile(r"\[Errno \d+\] (?P<strerror>.+?)(?:: '(?P<filename>.+)')?")
