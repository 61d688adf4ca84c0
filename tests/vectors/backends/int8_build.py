"""Build the int8 model with a fake quantisation step that holds signals like a long native call:
`python -m tests.vectors.backends.int8_build CACHE_FOLDER`, exit 130/143 like the CLI when interrupted.

The step writes `started` in the folder and blocks SIGINT and SIGTERM in a native wait of an hour: a run that
waits for it to return hangs.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from dupfind.cli.app import Terminated, _terminate
from dupfind.vectors.backends import quantize
from dupfind.vectors.backends.export import OPENVINO_DIR, OPENVINO_XML, ExportedModel


def slow_quantize(exported: ExportedModel, source: Path, out_file: Path) -> None:
    (exported.path / "started").touch()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    time.sleep(3600)


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    (folder / OPENVINO_DIR).mkdir(parents=True)
    (folder / OPENVINO_DIR / OPENVINO_XML).write_text("<net/>", encoding="utf-8")
    quantize._quantize_openvino = slow_quantize  # type: ignore[assignment]
    quantize._nncf = lambda: None
    signal.signal(signal.SIGTERM, _terminate)
    try:
        quantize.ensure_int8_openvino(ExportedModel(folder, "fake", 8, False, ("input_ids",)))
    except Terminated:
        sys.exit(143)
    except KeyboardInterrupt:
        sys.exit(130)
