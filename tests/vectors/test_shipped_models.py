"""The models dupfind ships: listed by `dupfind models`, weights as their model cards claim, and in the wheel."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dupfind.cli import app
from dupfind.vectors.model import (
    BASE_MODEL,
    BUILTIN_MODELS,
    DEFAULT_MODEL,
    DEFAULT_RERANKER,
    SHIPPED_MODELS_DIR,
    ModelRef,
    fingerprint,
    resolve_model,
    resolve_reranker,
)

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [name for name in BUILTIN_MODELS if name != BASE_MODEL]


def test_the_defaults_are_built_in_models() -> None:
    assert resolve_model(None).name == DEFAULT_MODEL
    assert resolve_model("all-MiniLM-L6-v2").name == BASE_MODEL  # the old name of the base model still works
    assert resolve_reranker(None).name == DEFAULT_RERANKER


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_match_their_model_card(name: str) -> None:
    folder = SHIPPED_MODELS_DIR / name
    card = (folder / "README.md").read_text(encoding="utf-8")
    claimed = re.search(r"dupfind fingerprint: `([0-9a-f]{16})`", card)
    assert claimed is not None, f"{name}'s model card states no fingerprint"
    assert fingerprint(ModelRef(name, folder)) == claimed.group(1)
    data = (folder / "model.safetensors").read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    dtypes = {entry["dtype"] for key, entry in header.items() if key != "__metadata__"}
    assert "F32" not in dtypes and "F16" in dtypes  # stored compactly


def test_models_lists_every_built_in_model() -> None:
    result = CliRunner().invoke(app, ["models", "--format", "json"])
    listed = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert result.exit_code == 0 and set(listed) == set(BUILTIN_MODELS)
    for name in SHIPPED:
        assert listed[name]["size"] > 10e6 and listed[name]["thresholds"] is not None and listed[name]["dev"]
    assert [name for name, entry in listed.items() if entry["default"]] == [
        name for name in BUILTIN_MODELS if name in (DEFAULT_MODEL, DEFAULT_RERANKER)
    ]


@pytest.mark.slow
def test_the_wheel_carries_every_shipped_model(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
    )
    [wheel] = tmp_path.glob("dupfind-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in SHIPPED:
        folder = SHIPPED_MODELS_DIR / name
        for file in folder.rglob("*"):
            if file.is_file():
                assert f"dupfind/models/{name}/{file.relative_to(folder).as_posix()}" in names
    assert "dupfind/models/catalog.json" in names
