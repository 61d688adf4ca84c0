"""Encoder backends behind a name: a registry that `load_encoder` looks up, so adding one needs no change elsewhere.

The built-in backends register lazily (their module is imported only when chosen): `torch`
(sentence-transformers), `onnx` (onnxruntime) and `openvino`. Others register with `register_backend`,
as tests do with a fake encoder. `DUPFIND_BACKEND` names the default backend.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from dupfind.encoding import Encoder
from dupfind.errors import DupfindError
from dupfind.model import ModelRef, resolve_model

BackendFactory = Callable[[ModelRef], Encoder]
# The fastest backend whose embeddings agree with torch fp32 at cosine >= 0.9999 on real questions
# (bench/bench_encode.py measures it).
DEFAULT_BACKEND = "openvino"
_BUILTIN = {
    "torch": "dupfind.backends.torch_backend:TorchEncoder",
    "onnx": "dupfind.backends.onnx_backend:OnnxEncoder",
    "openvino": "dupfind.backends.openvino_backend:OpenVinoEncoder",
}
_registered: dict[str, BackendFactory] = {}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make `factory(model)` the encoder of `--backend name` (replacing a backend of that name)."""
    _registered[name] = factory


def unregister_backend(name: str) -> None:
    """Forget a backend registered with `register_backend` (the built-in ones stay)."""
    _registered.pop(name, None)


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


def load_encoder(model: str | None = None, backend: str | None = None) -> Encoder:
    """Load a model (None: the built-in one) with a backend (None: the default backend)."""
    name = check_backend(backend)
    ref = resolve_model(model)
    if name in _registered:
        return _registered[name](ref)
    module, attribute = _BUILTIN[name].split(":")
    factory: BackendFactory = getattr(importlib.import_module(module), attribute)
    return factory(ref)
