"""The built-in models as installed, with their size, thresholds and figures on Quora dev (`dupfind models`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dupfind.errors import DupfindError
from dupfind.thresholds import Thresholds, load_thresholds, read_settings
from dupfind.vectors.model import BUILTIN_MODELS, DEFAULT_MODEL, DEFAULT_RERANKER, SHIPPED_MODELS_DIR, ModelRef

CATALOG_FILE = "catalog.json"  # in SHIPPED_MODELS_DIR: each built-in model's figures on Quora dev, measured once


@dataclass(frozen=True)
class InstalledModel:
    """A built-in model as installed: `dupfind models` lists these."""

    name: str
    kind: str
    description: str
    default: bool
    size: int | None  # bytes on disk; None when missing from this installation
    thresholds: Thresholds | None  # a bi-encoder's, or a re-ranker's own
    dev: dict[str, object]

    def to_json(self) -> dict[str, object]:
        data = {key: value for key, value in vars(self).items() if key != "thresholds"}
        return {**data, "thresholds": None if self.thresholds is None else vars(self.thresholds)}


def builtin_models() -> list[InstalledModel]:
    """Every built-in model, with its size, thresholds and dev figures (from `catalog.json`)."""
    catalog = _read_catalog()
    found = []
    for model in BUILTIN_MODELS.values():
        try:
            directory: Path | None = model.directory()
        except DupfindError:  # the base model's package is not installed
            directory = None
        size = thresholds = None
        if directory is not None and directory.is_dir():
            size = sum(file.stat().st_size for file in directory.rglob("*") if file.is_file())
            ref = ModelRef(model.name, directory)
            thresholds = read_settings(ref).thresholds if model.kind == "re-ranker" else load_thresholds(ref)
        dev = catalog.get(model.name)
        default = model.name in (DEFAULT_MODEL, DEFAULT_RERANKER)
        dev_figures = dev if isinstance(dev, dict) else {}
        found.append(InstalledModel(model.name, model.kind, model.description, default, size, thresholds, dev_figures))
    return found


def _read_catalog() -> dict[str, object]:
    try:
        data = json.loads((SHIPPED_MODELS_DIR / CATALOG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
