"""The OpenVINO backend: the exported model as OpenVINO IR on the CPU (no torch at run time)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from dupfind.backends.export import (
    OPENVINO_COMPILED_DIR,
    ExportedEncoder,
    Features,
    ensure_openvino_ir,
)
from dupfind.backends.quantize import ensure_int8_openvino
from dupfind.encoding import available_cores
from dupfind.model import ModelRef

# Measured with 2 cores: OpenVINO's default on a CPU with avx512_bf16 is bf16 kernels, which agree with
# torch fp32 only to cosine 0.99997 (a few mined pairs change) and were slower here than f32.
PRECISION = "f32"
PERFORMANCE_HINT = "LATENCY"


class OpenVinoEncoder(ExportedEncoder):
    """Encode with OpenVINO on the CPU, one stream using every core: fp32 (matches torch to ~1e-6), or int8 (the
    NNCF-quantised IR; its non-quantised layers still run in f32)."""

    backend = "openvino"

    def __init__(self, ref: ModelRef, precision: str = "fp32") -> None:
        super().__init__(ref, precision)
        model = ensure_openvino_ir(self.exported) if precision == "fp32" else ensure_int8_openvino(self.exported)
        import openvino as ov

        core = ov.Core()
        core.set_property({"CACHE_DIR": str(self.exported.path / OPENVINO_COMPILED_DIR)})
        config = {
            "PERFORMANCE_HINT": PERFORMANCE_HINT,
            "INFERENCE_PRECISION_HINT": PRECISION,
            "INFERENCE_NUM_THREADS": available_cores(),
        }
        self._model = core.compile_model(model, "CPU", config)

    def _run(self, features: Features) -> NDArray[np.float32]:
        result = self._model.create_infer_request().infer(features)
        return np.asarray(result[0], dtype=np.float32)
