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

# Measured with 2 cores: OpenVINO's default on a CPU with avx512_bf16 is bf16 kernels, which agree with
# torch fp32 only to cosine 0.99997 (a few mined pairs change) and were slower here than f32.
PRECISION = "f32"
PERFORMANCE_HINT = "LATENCY"


class OpenVinoEncoder(ExportedEncoder):
    """Encode with OpenVINO on the CPU, one stream using every core: fp32 (matches torch to ~1e-6), or int8 (the
    NNCF-quantised IR; its non-quantised layers still run in f32)."""

    backend = "openvino"

    def _load_runner(self) -> Runner:
        fp32 = self.precision == "fp32"
        return openvino_runner(self.exported, (ensure_openvino_ir if fp32 else ensure_int8_openvino)(self.exported))


class OpenVinoPairScorer(ExportedPairScorer):
    """Score pairs with the exported cross-encoder as OpenVINO IR on the CPU, in f32."""

    backend = "openvino"

    def _load_runner(self) -> Runner:
        return openvino_runner(self.exported, ensure_openvino_ir(self.exported))


def openvino_runner(exported: ExportedModel, model: Path) -> Runner:
    """A function running the compiled IR on a batch's features: one stream using every core, f32 kernels."""
    import openvino as ov

    core = ov.Core()
    core.set_property({"CACHE_DIR": str(exported.path / OPENVINO_COMPILED_DIR)})
    config = {
        "PERFORMANCE_HINT": PERFORMANCE_HINT,
        "INFERENCE_PRECISION_HINT": PRECISION,
        "INFERENCE_NUM_THREADS": available_cores(),
    }
    compiled = core.compile_model(model, "CPU", config)

    def run(features: Features) -> NDArray[np.float32]:
        return np.asarray(compiled.create_infer_request().infer(features)[0], dtype=np.float32)

    return run
