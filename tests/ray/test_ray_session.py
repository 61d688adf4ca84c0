"""The Ray that `--engine ray` starts itself, in a `dupfind` process of its own (`tests.fake_cli`): nothing of
Ray's on stderr or stdout under -q (no C++ log line, no colour codes), and SIGTERM or Ctrl-C while the actors
encode shuts Ray down and removes its session folder, exit 143 or 130, with one line and no output."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("ray.data")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def session_parent() -> Iterator[Path]:
    """A short temporary folder (Ray's socket paths must fit) where the Ray that dupfind starts keeps its session."""
    folder = Path(tempfile.mkdtemp(prefix="df-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def dupfind(tmp_path: Path, session_parent: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """`dupfind ARGS` with the fake encoder, its Ray's workers given the fake backends (`tests.fake_cli`)."""
    variables = {
        **os.environ,
        "TMPDIR": str(session_parent),
        "DUPFIND_CACHE_DIR": str(tmp_path / "cache"),
        "NO_COLOR": "1",
        **env,
    }
    variables.pop("RAY_ADDRESS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fake_cli", *args],
        cwd=ROOT,
        env=variables,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def write_questions(path: Path, n: int) -> Path:
    path.write_text("".join(f"question {i} about topic {i % 53} and {i % 7}\n" for i in range(n)), encoding="utf-8")
    return path


def ray_processes(session_parent: Path) -> list[str]:
    """The command lines of the processes that run out of the session folder, once they are gone (at most 60 s
    after dupfind exits: Ray's processes end as their raylet does)."""
    deadline = time.monotonic() + 60
    while True:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(session_parent) in command:
                found.append(command)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_quiet_run_says_nothing_and_writes_only_the_output(tmp_path: Path, session_parent: Path) -> None:
    questions = write_questions(tmp_path / "q.txt", 200)
    out = tmp_path / "pairs.csv"
    process = dupfind(tmp_path, session_parent, "mine", str(questions), "--engine", "ray", "-o", str(out), "-q")
    stdout, stderr = process.communicate(timeout=300)
    assert (process.returncode, stderr, stdout) == (0, "", "")
    assert out.read_text(encoding="utf-8").startswith("score,id_a,")
    assert list(session_parent.iterdir()) == []


@pytest.mark.parametrize(
    ("signum", "code", "line"), [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")]
)
def test_a_signal_while_the_actors_encode_shuts_ray_down_and_leaves_no_output(
    tmp_path: Path, session_parent: Path, signum: int, code: int, line: str
) -> None:
    questions = write_questions(tmp_path / "q.txt", 2000)
    out = tmp_path / "pairs.csv"
    started = tmp_path / "encoding"
    process = dupfind(
        tmp_path, session_parent, "mine", str(questions), "--engine", "ray", "-o", str(out), "-q",
        FAKE_ENCODER_DELAY="0.2", FAKE_ENCODER_STARTED=str(started),
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not started.exists():  # an actor encodes its first batch
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=120)
    assert (process.returncode, stderr, stdout) == (code, f"dupfind: error: {line}\n", "")
    assert not out.exists()
    assert list(session_parent.iterdir()) == []  # Ray's session folder removed
    assert ray_processes(session_parent) == []
