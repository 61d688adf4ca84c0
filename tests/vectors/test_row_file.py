"""The file of vectors in row order that `--engine ray` mines from."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dupfind.vectors import row_file as row_file_module
from dupfind.vectors.encoding import normalize
from dupfind.vectors.row_file import claimed_row_file, mapping_of, write_row_file


def rows(count: int) -> np.ndarray:
    return normalize(np.random.default_rng(0).normal(size=(count, 8)))


def test_rows_come_back_as_written_and_the_pickle_carries_only_the_path(tmp_path: Path) -> None:
    written = rows(10)
    row_file = write_row_file(tmp_path / "rows.npy", 10, [written[:3], written[3:]])
    assert len(row_file) == 10 and row_file[0:1].shape == (1, 8)
    picked = np.array([7, 2, 2, 9])
    assert np.array_equal(row_file[picked], written[picked])
    assert np.array_equal(row_file[2:5], written[2:5])
    assert row_file[picked].flags.writeable  # copies, not views of the mapping
    assert len(pickle.dumps(row_file)) < 200 + len(str(row_file.path))
    again = pickle.loads(pickle.dumps(row_file))
    assert np.array_equal(again[picked], written[picked])
    assert not list(tmp_path.glob(".*.tmp"))


def resident_file_kb() -> int:
    return int(re.search(r"RssFile:\s+(\d+)", Path("/proc/self/status").read_text())[1])  # type: ignore[index]


def test_random_rows_are_copied_without_keeping_the_file_resident(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 MB of rows, every 7th copied: with the kernel's fault-around that maps the whole file, unless the
    pages are dropped every `GATHER_ROWS` rows."""
    monkeypatch.setattr(row_file_module, "GATHER_ROWS", 64)
    written = np.random.default_rng(0).random((43_690, 384), dtype=np.float32)
    row_file = write_row_file(tmp_path / "rows.npy", len(written), [written])
    picked = np.arange(0, len(written), 7)
    before = resident_file_kb()
    copied = row_file[picked]
    assert resident_file_kb() - before < 16_000
    assert np.array_equal(copied, written[picked])
    assert mapping_of(row_file._rows()) is not None


def test_a_short_write_leaves_no_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"9 rows written to .*, 10 announced"):
        write_row_file(tmp_path / "rows.npy", 10, [rows(9)])
    assert list(tmp_path.iterdir()) == []


def test_a_claimed_row_file_is_deleted_with_its_lock_after_the_block_on_an_error_too(tmp_path: Path) -> None:
    folder = tmp_path / "rows"
    with pytest.raises(RuntimeError), claimed_row_file(folder) as path:
        write_row_file(path, 3, [rows(3)])
        assert path.parent == folder and sorted(file.suffix for file in folder.iterdir()) == [".lock", ".npy"]
        raise RuntimeError
    assert list(folder.iterdir()) == []


def test_the_next_run_deletes_the_files_of_a_killed_run_and_keeps_a_live_one_s(tmp_path: Path) -> None:
    folder = tmp_path / "rows"
    claim = (
        "import sys, time\nfrom pathlib import Path\nfrom dupfind.vectors.row_file import claimed_row_file\n"
        "with claimed_row_file(Path(sys.argv[1])) as path:\n"
        "    path.write_bytes(b'rows'); path.with_name('.' + path.name + '.tmp').write_bytes(b'half')\n"
        "    print(path, flush=True); time.sleep(300)\n"
    )
    killed = subprocess.Popen([sys.executable, "-c", claim, str(folder)], stdout=subprocess.PIPE, text=True)
    assert killed.stdout is not None
    left = Path(killed.stdout.readline().strip())
    killed.kill()
    killed.wait()
    assert len(list(folder.iterdir())) == 3  # the rows, their temporary file and the lock, left behind
    (folder / "0123.npy").write_bytes(b"no lock beside it")
    with claimed_row_file(folder) as live:
        live.write_bytes(b"live")
        assert not left.exists() and sorted(folder.iterdir()) == sorted([live, live.with_suffix(".lock")])
        with claimed_row_file(folder) as other:  # another run, while the first lives
            assert live.read_bytes() == b"live" and other != live
    assert list(folder.iterdir()) == []
