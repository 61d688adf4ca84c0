"""Folders built all or nothing: `atomic.build_atomically` (exported models, quantised models)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dupfind.errors import DupfindError
from dupfind.io import atomic


def test_atomic_build_keeps_a_concurrent_winner_and_leaves_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "models" / "abc"

    def build(marker: str) -> None:
        def write(folder: Path) -> None:
            (folder / "file").write_text(marker)

        atomic.build_atomically(target, write)

    build("first")
    build("second")
    assert (target / "file").read_text() == "first"
    assert [path.name for path in target.parent.iterdir()] == ["abc"]


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    def fail(folder: Path) -> None:
        (folder / "half-written").write_text("x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic.build_atomically(tmp_path / "models" / "abc", fail)
    assert list((tmp_path / "models").iterdir()) == []


def test_an_unwritable_cache_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(DupfindError, match="cannot write to the cache folder"):
        atomic.build_atomically(tmp_path / "a-file" / "models" / "abc", lambda folder: None)
