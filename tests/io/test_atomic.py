"""Files and folders written all or nothing: `atomic.replacing_folder` (folder outputs), `atomic.build_atomically`
(exported models, quantised models)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dupfind.errors import DupfindError
from dupfind.io import atomic
from dupfind.io.destinations import check_destination

ROOT = Path(__file__).resolve().parents[2]


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


def _a_folder(path: Path, name: str) -> Path:
    path.mkdir()
    (path / name).write_text(name)
    return path


def test_an_interrupt_between_the_renames_keeps_the_old_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _a_folder(tmp_path / "pairs", "old")
    real_rename, renames = os.rename, []

    def rename(source: str | Path, target: str | Path) -> None:
        renames.append(source)
        if len(renames) == 2:  # the old folder is aside, the new one not yet in place
            raise KeyboardInterrupt
        real_rename(source, target)

    with pytest.raises(KeyboardInterrupt), atomic.replacing_folder(folder) as staging:
        (staging / "new").write_text("new")
        monkeypatch.setattr(atomic.os, "rename", rename)
    assert [path.name for path in folder.iterdir()] == ["old"]
    assert [path.name for path in tmp_path.iterdir()] == ["pairs"]


KILLED_BETWEEN_THE_RENAMES = """
import os, sys
from pathlib import Path
from dupfind.io import atomic
real_rename, renames = os.rename, []
def rename(source, target):
    renames.append(source)
    if len(renames) == 2:
        os._exit(9)
    real_rename(source, target)
with atomic.replacing_folder(sys.argv[1]) as staging:
    (staging / "new").write_text("new")
    atomic.os.rename = rename
"""


def test_a_folder_left_aside_by_a_killed_run_is_put_back(tmp_path: Path) -> None:
    folder = _a_folder(tmp_path / "pairs", "part-00000.parquet")
    killed = subprocess.run([sys.executable, "-c", KILLED_BETWEEN_THE_RENAMES, str(folder)], cwd=ROOT, timeout=60)
    assert killed.returncode == 9 and not folder.exists()
    check_destination(f"{folder}/", parts=True)  # what a later run does first, before any work
    assert [path.name for path in folder.iterdir()] == ["part-00000.parquet"]
    assert [path.name for path in tmp_path.iterdir()] == ["pairs"]


def test_the_next_replacement_drops_what_a_completed_swap_left_aside(tmp_path: Path) -> None:
    folder = _a_folder(tmp_path / "pairs", "new")
    aside = tmp_path / ".pairs.999999999.x.old"  # no process has this id
    aside.mkdir()
    _a_folder(aside / "pairs", "old")
    with atomic.replacing_folder(folder) as staging:
        (staging / "newer").write_text("newer")
    assert [path.name for path in folder.iterdir()] == ["newer"]
    assert [path.name for path in tmp_path.iterdir()] == ["pairs"]
