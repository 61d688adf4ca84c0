"""The ONNX backend: the exported model on onnxruntime, tokenised with `tokenizers` (no torch at run time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dupfind.vectors.backends.export import ExportedEncoder, ExportedPairScorer, Features, Runner
from dupfind.vectors.encoding import available_cores


class OnnxEncoder(ExportedEncoder):
    """Encode with onnxruntime on the CPU, one intra-op thread per core; fp32, matches torch to ~1e-6."""

    backend = "onnx"

    def _load_runner(self) -> Runner:  # fp32 only: the registry refuses int8 for this backend
        return onnx_runner(self.exported.onnx_file, self.exported.output_name)


class OnnxPairScorer(ExportedPairScorer):
    """Score pairs with the exported cross-encoder on onnxruntime, on the CPU."""

    backend = "onnx"

    def _load_runner(self) -> Runner:
        return onnx_runner(self.exported.onnx_file, self.exported.output_name)


def onnx_runner(onnx_file: Path, output_name: str) -> Runner:
    """A function running the ONNX model on a batch's features, one intra-op thread per core."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = available_cores()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])

    def run(features: Features) -> NDArray[np.float32]:
        return np.asarray(session.run([output_name], features)[0], dtype=np.float32)

    return run
