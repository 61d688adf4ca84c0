"""Where a trainer writes its model (`dupfind.quality.training.fitting.model_directory`): the old model or the
new one, never neither, and nothing of the user's beside it touched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dupfind.quality.training.fitting import model_directory, prepare_output


def test_a_folder_named_like_the_output_with_tmp_is_not_deleted(tmp_path: Path) -> None:
    mine = tmp_path / "model.tmp"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    prepare_output(tmp_path / "model", force=False)
    with model_directory(tmp_path / "model", force=False, fp16=False) as folder:
        (folder / "weights.bin").write_text("new")
    assert (mine / "notes.txt").read_text() == "mine"
    assert (tmp_path / "model" / "weights.bin").read_text() == "new"


def test_an_interrupt_between_the_renames_keeps_the_old_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output = tmp_path / "model"
    output.mkdir()
    (output / "weights.bin").write_text("old")
    real_rename = os.rename
    calls: list[str] = []

    def rename(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        calls.append(str(target))
        if len(calls) == 2:  # the new folder moving into place
            raise KeyboardInterrupt
        real_rename(source, target)

    with pytest.raises(KeyboardInterrupt), model_directory(output, force=True, fp16=False) as folder:
        (folder / "weights.bin").write_text("new")
        monkeypatch.setattr(os, "rename", rename)
        monkeypatch.setattr(Path, "rename", lambda self, target: rename(self, target))
    monkeypatch.undo()
    assert (output / "weights.bin").read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]


def test_a_failed_block_leaves_the_old_model_and_no_temporary(tmp_path: Path) -> None:
    output = tmp_path / "model"
    output.mkdir()
    (output / "weights.bin").write_text("old")
    with pytest.raises(RuntimeError), model_directory(output, force=True, fp16=False) as folder:
        (folder / "weights.bin").write_text("half")
        raise RuntimeError("training failed")
    assert (output / "weights.bin").read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model"]
