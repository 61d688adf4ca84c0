"""Ray for a command: joined or started on loopback only, its own logging kept quiet, and a worker's error
brought back as dupfind's one-line error."""

from __future__ import annotations

import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from dupfind.errors import DupfindError
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
def ray_session(address: str | None = None, progress_bars: bool = False) -> Iterator[None]:
    """Ray for the block: joined at `address` (`auto`: $RAY_ADDRESS or the cluster running here), else a local
    Ray on every core of this machine, listening on 127.0.0.1 only, shut down after. A Ray this process
    already started is used as it is (and left running). Ray's own log lines and deprecation warnings are
    kept off stderr; its progress bars only with `progress_bars`."""
    require_ray()
    import ray
    from ray.data import DataContext

    with warnings.catch_warnings(), _quiet_loggers():
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
                with _environment(offline_environment()):  # the processes Ray starts here inherit it
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


def loopback_only() -> None:
    """Make a Ray started by this process listen on 127.0.0.1 only. Ray turns `_node_ip_address="127.0.0.1"`
    into this machine's address unless clusters are off (`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`), a setting
    it reads when imported: set for the processes it starts, and for this one if it imported Ray already."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def _worker_error(exc: Exception) -> DupfindError | None:
    """The `DupfindError` that a worker raised (an encoder it cannot load, another model on its node), as
    its own one-line error, out of the exception Ray raises on the driver; None if there is none. A task's
    error is its `cause`; an actor that failed to start leaves only its traceback's text (`ActorDiedError`)."""
    seen: set[int] = set()
    found: BaseException | None = exc
    while found is not None and id(found) not in seen:
        seen.add(id(found))
        cause = getattr(found, "cause", None)
        if isinstance(found, DupfindError) and not isinstance(cause, BaseException):
            return DupfindError(str(found.args[0]) if found.args else str(found))
        told = _TOLD.findall(str(found))
        if told:
            return DupfindError(told[-1].strip())
        found = cause if isinstance(cause, BaseException) else (found.__cause__ or found.__context__)
    return None


@contextmanager
def worker_errors() -> Iterator[None]:
    """A worker's `DupfindError` raised again on the driver as itself, in one line (`_worker_error`)."""
    try:
        yield
    except Exception as exc:
        error = _worker_error(exc)
        if error is None:
            raise
        raise error from None


_TOLD = re.compile(r"^dupfind\.errors\.DupfindError: (.+)$", re.MULTILINE)
