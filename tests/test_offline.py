"""dupfind stays offline: no process of a run, its dependencies' included, opens a socket beyond loopback.

The slow tests run the real default backend (and a local Ray) under `strace -f`, which sees every process and
thread; they are skipped with a reason where strace is missing (.ci/run installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dupfind.offline import CLOSED_PROXY, offline_environment

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
_INET = re.compile(r'sin_port=htons\((\d+)\), sin_addr=inet_addr\("([^"]+)"\)')
_INET6 = re.compile(r'sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, "([^"]+)"')


def beyond_loopback(trace: str) -> list[str]:
    """The addresses that the traced processes tried to reach outside this machine."""
    found = [f"{host}:{port}" for port, host in _INET.findall(trace) if not host.startswith("127.")]
    found += [f"[{host}]:{port}" for port, host in _INET6.findall(trace) if host not in ("::1", "::ffff:127.0.0.1")]
    return found


def traced(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run `python -m dupfind ARGS` under strace, with a fresh home and temporary folder."""
    home, temporary, log = tmp_path / "home", tmp_path / "tmp", tmp_path / "trace.txt"
    home.mkdir(exist_ok=True)
    temporary.mkdir(exist_ok=True)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "TRANSFORMERS_"))}
    env |= {"HOME": str(home), "TMPDIR": str(temporary), "PYTHONPATH": str(ROOT)}
    env.pop("DUPFIND_BACKEND", None)
    command = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(log)]
    result = subprocess.run(
        [*command, sys.executable, "-m", "dupfind", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result, log.read_text(encoding="utf-8")


def test_the_beyond_loopback_check_sees_a_connection() -> None:
    trace = 'connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.0.0.2")}, 16) = 0\n'
    trace += 'connect(4, {sa_family=AF_INET, sin_port=htons(9), sin_addr=inet_addr("127.0.0.1")}, 16) = -1\n'
    assert beyond_loopback(trace) == ["10.0.0.2:53"]


def test_the_command_line_points_the_web_at_a_closed_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUPFIND_ALLOW_DOWNLOADS", raising=False)
    assert (
        offline_environment()["https_proxy"] == CLOSED_PROXY and offline_environment()["RAY_USAGE_STATS_ENABLED"] == "0"
    )
    monkeypatch.setenv("DUPFIND_ALLOW_DOWNLOADS", "1")  # the hub's downloads need the real proxy, if any
    assert offline_environment() == {"RAY_USAGE_STATS_ENABLED": "0"}


@pytest.mark.slow
@needs_strace
def test_compare_and_mine_stay_on_this_machine(tmp_path: Path) -> None:
    result, trace = traced(tmp_path, "compare", "How do I learn Python?", "What is the best way to learn Python?")
    assert result.returncode == 0, result.stderr
    assert beyond_loopback(trace) == []
    result, trace = traced(tmp_path, "mine", str(EXAMPLES / "questions.csv"), "--limit", "3", "-q")
    assert result.returncode == 0, result.stderr
    assert beyond_loopback(trace) == []
    assert not (tmp_path / "home" / "intel").exists()  # OpenVINO's telemetry folder


@pytest.mark.slow
@needs_strace
def test_mine_on_ray_stays_on_this_machine_and_leaves_no_session_folder(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    out = tmp_path / "pairs.csv"
    before = _ray_sessions(tmp_path)
    result, trace = traced(tmp_path, "mine", str(EXAMPLES / "questions.csv"), "--engine", "ray", "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    assert out.is_file() and beyond_loopback(trace) == []
    assert _ray_sessions(tmp_path) == before  # its session folder was removed with it, and none left in /tmp/ray


def _ray_sessions(tmp_path: Path) -> set[Path]:
    """Ray's session folders: its default place, and dupfind's temporary ones (here or, for a long path, /tmp)."""
    return {
        *Path("/tmp/ray").glob("session_*"),
        *Path("/tmp").glob("dupfind-ray-*"),
        *(tmp_path / "tmp").glob("dupfind-ray-*"),
    }
