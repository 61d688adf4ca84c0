"""The OpenVINO backend: the exported model as OpenVINO IR on the CPU (no torch at run time)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from dupfind.vectors.backends.export import (
    OPENVINO_COMPILED_DIR,
    ExportedEncoder,
    ExportedModel,
    ExportedPairScorer,
    Features,
    Runner,
    ensure_openvino_ir,
)
from dupfind.vectors.backends.quantize import ensure_int8_openvino
from dupfind.vectors.encoding import available_cores

# The kernels of each precision. OpenVINO's default on a CPU with avx512_bf16 is bf16 kernels, so fp32 (and
# int8's non-quantised layers) ask for f32; bf16 runs the fp32 IR with bf16 kernels.
INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}
PERFORMANCE_HINT = "LATENCY"


class OpenVinoEncoder(ExportedEncoder):
    """Encode with OpenVINO on the CPU, one stream using every core: fp32 (matches torch to ~1e-6), bf16 (bf16
    kernels on the same IR), or int8 (the NNCF-quantised IR; its non-quantised layers still run in f32)."""

    backend = "openvino"

    def _load_runner(self) -> Runner:
        quantized = self.precision == "int8"
        model = (ensure_int8_openvino if quantized else ensure_openvino_ir)(self.exported)
        return openvino_runner(self.exported, model, self.precision)


class OpenVinoPairScorer(ExportedPairScorer):
    """Score pairs with the exported cross-encoder as OpenVINO IR on the CPU, in fp32 or bf16."""

    backend = "openvino"

    def _load_runner(self) -> Runner:
        return openvino_runner(self.exported, ensure_openvino_ir(self.exported), self.precision)


def compiled_dir(exported: ExportedModel, precision: str) -> Path:
    """OpenVINO's cache of compiled models of one precision: an f32 blob of the IR read back when compiling with
    the bf16 hint crashes OpenVINO (2026.4), so each precision has its own."""
    return exported.path / OPENVINO_COMPILED_DIR / precision


def openvino_runner(exported: ExportedModel, model: Path, precision: str = "fp32") -> Runner:
    """A function running the compiled IR on a batch's features: one stream using every core, with the kernels of
    `precision` (`fp32`, `bf16` or `int8`)."""
    import openvino as ov

    core = ov.Core()
    core.set_property({"CACHE_DIR": str(compiled_dir(exported, precision))})
    config = {
        "PERFORMANCE_HINT": PERFORMANCE_HINT,
        "INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[precision],
        "INFERENCE_NUM_THREADS": available_cores(),
    }
    compiled = core.compile_model(model, "CPU", config)

    def run(features: Features) -> NDArray[np.float32]:
        return np.asarray(compiled.create_infer_request().infer(features)[0], dtype=np.float32)

    return run
