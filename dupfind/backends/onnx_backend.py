"""The ONNX backend: the exported model on onnxruntime, tokenised with `tokenizers` (no torch at run time)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dupfind.backends.export import OUTPUT_NAME, ExportedEncoder, Features
from dupfind.encoding import available_cores
from dupfind.model import ModelRef


class OnnxEncoder(ExportedEncoder):
    """Encode with onnxruntime on the CPU, one intra-op thread per core; fp32, matches torch to ~1e-6."""

    backend = "onnx"

    def __init__(self, ref: ModelRef, precision: str = "fp32") -> None:
        super().__init__(ref, precision)  # fp32 only: the registry refuses int8 for this backend
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = available_cores()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = ort.InferenceSession(str(self.exported.onnx_file), options, providers=["CPUExecutionProvider"])

    def _run(self, features: Features) -> NDArray[np.float32]:
        return np.asarray(self._session.run([OUTPUT_NAME], features)[0], dtype=np.float32)
