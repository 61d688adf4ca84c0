"""Backends behind a name: a registry that `load_encoder` (bi-encoders) and `load_pair_scorer` (cross-encoders) look
up, so adding one needs no change elsewhere.

The built-in backends register lazily (their module is imported only when chosen): `torch`
(sentence-transformers), `onnx` (onnxruntime) and `openvino`. Others register with `register_backend`,
as tests do with a fake encoder and pair scorer. `DUPFIND_BACKEND` names the default backend (else `auto`).

Precision: `fp32`, `bf16` (openvino: bf16 kernels on the same model), `int8` (openvino: the model quantised
locally with NNCF, `dupfind.vectors.backends.quantize`) or `auto`. Device: `cpu`, `cuda` (torch only, in fp16)
or `auto`. `resolve_choice` turns these options into one `Choice`: what is not given, `dupfind.vectors.precision`
chooses for this machine.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from dupfind.errors import DupfindError
from dupfind.offline import block_telemetry
from dupfind.vectors.encoding import Encoder
from dupfind.vectors.model import ModelRef, resolve_model, resolve_reranker
from dupfind.vectors.pair_scorer import PairScorer
from dupfind.vectors.precision import AUTO, Choice, choose, cpu_features, cuda_visible

block_telemetry()  # before any backend imports OpenVINO or NNCF (dupfind.offline)

BackendFactory = Callable[[ModelRef], Encoder]
PairScorerFactory = Callable[[ModelRef], PairScorer]
# The CPU backend: the fastest whose embeddings agree with torch fp32 at cosine >= 0.9999 on real questions
# (bench/bench_encode.py measures it); `auto` uses it on a CPU.
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
PRECISIONS = (AUTO, "fp32", "bf16", "int8")
DEFAULT_PRECISION = AUTO
INT8_BACKENDS = ("openvino",)  # the backends of every precision (bf16 and int8 too)
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
    """`$DUPFIND_BACKEND`, else `auto` (chosen for this machine by `resolve_choice`)."""
    return os.environ.get("DUPFIND_BACKEND") or AUTO


def check_backend(backend: str | None) -> str:
    """The backend to use (None: the default), possibly `auto`; raises a `DupfindError` for an unknown name."""
    name = backend or default_backend()
    if name != AUTO and name not in _registered and name not in _BUILTIN:
        raise DupfindError(f"unknown backend '{name}' (choose from {AUTO}, {', '.join(backend_names())})")
    return name


def check_precision(backend: str, precision: str) -> None:
    """Raise a `DupfindError` for an unknown precision, or bf16 or int8 with a backend that has neither."""
    if precision not in PRECISIONS:
        raise DupfindError(f"unknown precision '{precision}' (choose from {', '.join(PRECISIONS)})")
    if precision not in (AUTO, "fp32") and backend not in INT8_BACKENDS:
        raise DupfindError(f"--precision {precision} needs --backend {' or '.join(INT8_BACKENDS)}, not {backend}")


def resolve_choice(
    backend: str | None = None,
    precision: str = AUTO,
    device: str = AUTO,
    features: frozenset[str] | None = None,
    cuda: bool | None = None,
) -> Choice:
    """The backend, precision and device to use: those given, the rest chosen by `dupfind.vectors.precision.choose`
    for a CPU with `features` (None: this machine's) and CUDA or not (None: whether torch sees a device).

    Raises a `DupfindError` for a bad or impossible value, before loading. A backend, precision or device given
    wins: `auto` alone is the machine's choice; a precision alone runs on the CPU backend (cuda: torch); a
    backend alone runs at the machine's precision when it has that precision, else fp32.
    """
    name = check_backend(backend)
    check_precision(DEFAULT_BACKEND if name == AUTO else name, precision)
    if device not in DEVICES:
        raise DupfindError(f"unknown device '{device}' (choose from {', '.join(DEVICES)})")
    if name == AUTO and precision == AUTO and device != "cuda":
        return choose(_features(features), device == AUTO and (cuda_visible() if cuda is None else cuda))
    if name == AUTO:
        name = "torch" if device == "cuda" else DEFAULT_BACKEND
        reason = "--device cuda: the torch backend" if device == "cuda" else f"--precision {precision}: the CPU backend"
    else:
        reason = f"--backend {name}" if backend else f"DUPFIND_BACKEND={name}"
    if precision == AUTO:
        machine = choose(_features(features), cuda=False)
        precision = machine.precision if name in INT8_BACKENDS else "fp32"
        reason += f" at {precision}" + (f": {machine.reason}" if name in INT8_BACKENDS else "")
    check_precision(name, precision)
    return Choice(name, precision, check_device(name, device, cuda), reason)


def _features(features: frozenset[str] | None) -> frozenset[str]:
    return cpu_features() if features is None else features


def check_device(backend: str, device: str, cuda: bool | None = None) -> str:
    """The device to run on, `cpu` or `cuda`; raises a `DupfindError` for one that cannot be used (before loading).

    `auto` is cuda for the torch backend when torch sees a CUDA device (`cuda`; None: ask torch), else cpu.
    """
    if device not in DEVICES:
        raise DupfindError(f"unknown device '{device}' (choose from {', '.join(DEVICES)})")
    if device == "cpu" or (device == "auto" and backend != "torch"):
        return "cpu"
    if backend != "torch":
        raise DupfindError(f"--device {device} needs --backend torch (the {backend} backend runs on the CPU)")
    if cuda is None:
        import torch

        cuda = bool(torch.cuda.is_available())
    if cuda:
        return "cuda"
    if device == "cuda":
        raise DupfindError("--device cuda, but torch sees no CUDA device (use --device cpu or auto)")
    return "cpu"


def load_encoder(
    model: str | None = None,
    backend: str | None = None,
    precision: str = DEFAULT_PRECISION,
    device: str = AUTO,
) -> Encoder:
    """Load a model (None: the built-in one) with a backend (None: the default backend), at a precision (`fp32`,
    `bf16`, `int8` or `auto`), on a device (`cpu`, `cuda` or `auto`; cuda: torch only), as `resolve_choice` says."""
    choice = resolve_choice(backend, precision, device)
    ref = resolve_model(model)
    if choice.backend in _registered:
        return _registered[choice.backend](ref)
    encoder: Encoder = _builtin(_BUILTIN, choice.backend)(ref, **_options(choice, choice.precision))
    return encoder


def load_pair_scorer(
    model: str | None = None, backend: str | None = None, precision: str = DEFAULT_PRECISION, device: str = AUTO
) -> PairScorer:
    """Load a re-ranker's pair scorer (None: the built-in re-ranker) at the choice `resolve_choice` makes of the
    backend, precision and device given (those of the bi-encoder); wrap it in a `dupfind.pairs.rerank.Reranker`
    to score pairs with a cache and progress.

    There is no int8 re-ranker: with int8 it scores in fp32. A backend without pair scorer uses the CPU backend's.
    """
    choice = resolve_choice(backend, precision, device)
    ref = resolve_reranker(model)
    if choice.backend in _registered_pair_scorers:
        return _registered_pair_scorers[choice.backend](ref)
    name = choice.backend if choice.backend in _BUILTIN_PAIR_SCORERS else DEFAULT_BACKEND
    scorer_precision = "fp32" if choice.precision == "int8" or name not in INT8_BACKENDS else choice.precision
    scorer: PairScorer = _builtin(_BUILTIN_PAIR_SCORERS, name)(ref, **_options(choice, scorer_precision))
    return scorer


def _builtin(table: dict[str, str], name: str) -> Callable[..., Any]:
    """The class of a built-in backend, its module imported now."""
    module, attribute = table[name].split(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return factory


def _options(choice: Choice, precision: str) -> dict[str, str]:
    """The keyword arguments of a built-in backend's class: torch takes the device, openvino the precision."""
    if choice.backend == "torch":
        return {"device": choice.device}
    return {"precision": precision} if choice.backend in INT8_BACKENDS else {}
