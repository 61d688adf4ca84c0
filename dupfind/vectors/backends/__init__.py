"""Backends behind a name: a registry that `load_encoder` (bi-encoders) and `load_pair_scorer` (cross-encoders) look
up, so adding one needs no change elsewhere.

The built-in backends register lazily (their module is imported only when chosen): `torch`
(sentence-transformers), `onnx` (onnxruntime) and `openvino`. Others register with `register_backend`,
as tests do with a fake encoder and pair scorer. `DUPFIND_BACKEND` names the default backend.

Precision: `fp32`, or `int8` (openvino: the model quantised locally with NNCF, `dupfind.vectors.backends.quantize`).
Device: `cpu`, `cuda` (torch only, in fp16) or `auto` (cuda for torch when torch sees one, else cpu).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from dupfind.errors import DupfindError
from dupfind.vectors.encoding import Encoder
from dupfind.vectors.model import ModelRef, resolve_model, resolve_reranker
from dupfind.vectors.pair_scorer import PairScorer

BackendFactory = Callable[[ModelRef], Encoder]
PairScorerFactory = Callable[[ModelRef], PairScorer]
# The fastest backend whose embeddings agree with torch fp32 at cosine >= 0.9999 on real questions
# (bench/bench_encode.py measures it).
DEFAULT_BACKEND = "openvino"
_BUILTIN = {
    "torch": "dupfind.vectors.backends.torch_backend:TorchEncoder",
    "onnx": "dupfind.vectors.backends.onnx_backend:OnnxEncoder",
    "openvino": "dupfind.vectors.backends.openvino_backend:OpenVinoEncoder",
}
_BUILTIN_PAIR_SCORERS = {
    "torch": "dupfind.vectors.backends.torch_backend:TorchPairScorer",
    "onnx": "dupfind.vectors.backends.onnx_backend:OnnxPairScorer",
    "openvino": "dupfind.vectors.backends.openvino_backend:OpenVinoPairScorer",
}
_registered: dict[str, BackendFactory] = {}
_registered_pair_scorers: dict[str, PairScorerFactory] = {}
PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"
INT8_BACKENDS = ("openvino",)
DEVICES = ("auto", "cpu", "cuda")


def register_backend(name: str, factory: BackendFactory, pair_scorer: PairScorerFactory | None = None) -> None:
    """Make `factory(model)` the encoder of `--backend name` (replacing a backend of that name), and
    `pair_scorer(model)` its re-ranker's scorer (without one, `--rerank` with this backend uses the default's)."""
    _registered[name] = factory
    _registered_pair_scorers.pop(name, None)
    if pair_scorer is not None:
        _registered_pair_scorers[name] = pair_scorer


def unregister_backend(name: str) -> None:
    """Forget a backend registered with `register_backend` (the built-in ones stay)."""
    _registered.pop(name, None)
    _registered_pair_scorers.pop(name, None)


def backend_names() -> list[str]:
    """Every backend that `--backend` accepts."""
    return sorted({*_BUILTIN, *_registered})


def default_backend() -> str:
    """`$DUPFIND_BACKEND`, else the fastest exact built-in backend."""
    return os.environ.get("DUPFIND_BACKEND") or DEFAULT_BACKEND


def check_backend(backend: str | None) -> str:
    """The backend to use (None: the default); raises a `DupfindError` for an unknown name."""
    name = backend or default_backend()
    if name not in _registered and name not in _BUILTIN:
        raise DupfindError(f"unknown backend '{name}' (choose from {', '.join(backend_names())})")
    return name


def check_precision(backend: str, precision: str) -> None:
    """Raise a `DupfindError` for an unknown precision, or int8 with a backend that has none."""
    if precision not in PRECISIONS:
        raise DupfindError(f"unknown precision '{precision}' (choose from {', '.join(PRECISIONS)})")
    if precision != DEFAULT_PRECISION and backend not in INT8_BACKENDS:
        raise DupfindError(f"--precision {precision} needs --backend {' or '.join(INT8_BACKENDS)}, not {backend}")


def check_device(backend: str, device: str) -> str:
    """The device to run on, `cpu` or `cuda`; raises a `DupfindError` for one that cannot be used (before loading).

    `auto` is cuda for the torch backend when torch sees a CUDA device, else cpu.
    """
    if device not in DEVICES:
        raise DupfindError(f"unknown device '{device}' (choose from {', '.join(DEVICES)})")
    if device == "cpu" or (device == "auto" and backend != "torch"):
        return "cpu"
    if backend != "torch":
        raise DupfindError(f"--device {device} needs --backend torch (the {backend} backend runs on the CPU)")
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise DupfindError("--device cuda, but torch sees no CUDA device (use --device cpu or auto)")
    return "cpu"


def load_encoder(
    model: str | None = None,
    backend: str | None = None,
    precision: str = DEFAULT_PRECISION,
    device: str = "cpu",
) -> Encoder:
    """Load a model (None: the built-in one) with a backend (None: the default backend), at a precision
    (`fp32` or `int8`), on a device (`cpu`, `cuda` or `auto`; not cpu: torch only)."""
    name = check_backend(backend)
    check_precision(name, precision)
    where = check_device(name, device)
    ref = resolve_model(model)
    if name in _registered:
        return _registered[name](ref)
    module, attribute = _BUILTIN[name].split(":")
    factory = getattr(importlib.import_module(module), attribute)
    options = {"device": where} if name == "torch" else {"precision": precision} if name in INT8_BACKENDS else {}
    encoder: Encoder = factory(ref, **options)
    return encoder


def load_pair_scorer(model: str | None = None, backend: str | None = None) -> PairScorer:
    """Load a re-ranker's pair scorer (None: the built-in re-ranker) with a backend (None: the default backend);
    wrap it in a `dupfind.pairs.rerank.Reranker` to score pairs with a cache and progress."""
    name = check_backend(backend)
    ref = resolve_reranker(model)
    if name in _registered_pair_scorers:
        return _registered_pair_scorers[name](ref)
    if name not in _BUILTIN_PAIR_SCORERS:
        name = DEFAULT_BACKEND
    module, attribute = _BUILTIN_PAIR_SCORERS[name].split(":")
    scorer: PairScorer = getattr(importlib.import_module(module), attribute)(ref)
    return scorer
