"""One local Ray per test module (2 CPUs, loopback only), on which fsspec's HTTP file system cannot be imported,
in the test process as in every worker (`tests.ray_workers`)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest

from tests.ray_workers import FSSPEC_HTTP, RUNTIME_ENV, without_http_filesystem


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray for the module's tests, shut down after them."""
    ray = pytest.importorskip("ray")
    from dupfind.ray.session import loopback_only

    loopback_only()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, FSSPEC_HTTP, without_http_filesystem())
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            logging_level=logging.ERROR,
            log_to_driver=False,
            runtime_env=RUNTIME_ENV,
        )
        yield
        ray.shutdown()
