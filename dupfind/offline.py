"""dupfind stays offline: no library it runs may reach the network unless the user opts in to model downloads.

What our dependencies would send, and how it is stopped (each seen under `strace -f -e trace=connect`):
- OpenVINO and NNCF report usage to Google Analytics from `import openvino` on, and write ~/intel/; both fall
  back to a silent stub when `openvino_telemetry` cannot be imported (`block_telemetry`).
- onnxruntime's OneDS client looks up mobile.events.data.microsoft.com from each session, whatever
  `disable_telemetry_events` says; Ray's dashboard asks 169.254.169.254 and metadata.google.internal over HTTP
  whatever its usage setting. Both go through the HTTP proxy of the environment, so the command line points that at
  a closed loopback port (loopback traffic goes direct), and turns Ray's usage reports off (`stay_offline`).
"""

from __future__ import annotations

import os
import sys

ALLOW_DOWNLOADS_ENV = "DUPFIND_ALLOW_DOWNLOADS"
CLOSED_PROXY = "http://127.0.0.1:9"  # the discard port, closed: a request through it is refused at once
NO_USAGE_REPORTS = {"RAY_USAGE_STATS_ENABLED": "0"}
NO_WEB = {
    **{name: CLOSED_PROXY for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY")},
    **{name: "127.0.0.1,localhost,::1" for name in ("no_proxy", "NO_PROXY")},
}


def downloads_allowed() -> bool:
    """Whether the user opted in to downloading models from the Hugging Face hub (`DUPFIND_ALLOW_DOWNLOADS=1`)."""
    return os.environ.get(ALLOW_DOWNLOADS_ENV) == "1"


def block_telemetry() -> None:
    """Keep OpenVINO's and NNCF's telemetry from loading in this process (it must run before they are imported)."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]


def offline_environment() -> dict[str, str]:
    """The environment variables that keep this process and those it starts off the web (all but the proxy ones
    when downloads are allowed, which need it)."""
    return NO_USAGE_REPORTS if downloads_allowed() else {**NO_USAGE_REPORTS, **NO_WEB}


def stay_offline() -> None:
    """For the command line: this process and every process it starts stay off the network."""
    block_telemetry()
    os.environ.update(offline_environment())
