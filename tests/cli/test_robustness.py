"""The tool in scripts: interrupts, closed pipes, full disks, no network, no tracebacks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def fake_cli(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, **kwargs.pop("env", {})}  # type: ignore[dict-item]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.fake_cli", *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=kwargs.pop("stdout", subprocess.PIPE),
        stderr=subprocess.PIPE,  # type: ignore[arg-type]
    )


@pytest.fixture
def many_questions(tmp_path: Path) -> Path:
    path = tmp_path / "many.txt"
    path.write_text("\n".join(f"question number {i} about topic {i % 97}" for i in range(3000)), encoding="utf-8")
    return path


def wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigint_while_encoding_leaves_no_output(many_questions: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs.csv"
    started = tmp_path / "started"
    env = {"FAKE_ENCODER_DELAY": "0.05", "FAKE_ENCODER_STARTED": str(started), "DUPFIND_CACHE_DIR": str(tmp_path / "c")}
    process = fake_cli("mine", str(many_questions), "-o", str(out), "-q", env=env)
    wait_for(started)
    started.unlink()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Traceback" not in err and "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "c") == ["many.txt"]


def test_a_rerun_after_an_interrupt_works(many_questions: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs.csv"
    started = tmp_path / "started"
    env = {"FAKE_ENCODER_DELAY": "0.05", "FAKE_ENCODER_STARTED": str(started), "DUPFIND_CACHE_DIR": str(tmp_path / "c")}
    process = fake_cli("mine", str(many_questions), "-o", str(out), "-q", env=env)
    wait_for(started)
    process.kill()
    process.communicate(timeout=30)
    rerun = fake_cli(
        "mine", str(many_questions), "-o", str(out), "-q", "-t", "0.9", env={"DUPFIND_CACHE_DIR": str(tmp_path / "c")}
    )
    _, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    assert out.read_text(encoding="utf-8").startswith("score,id_a")


def test_head_closes_the_pipe_quietly(many_questions: Path) -> None:
    command = f"{sys.executable} -m tests.fake_cli mine {many_questions} -t 0.5 -q | head -1"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert "Traceback" not in result.stderr and "Broken" not in result.stderr and "error" not in result.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_full_disk_is_a_clear_error(many_questions: Path) -> None:
    with open("/dev/full", "w") as full:
        process = fake_cli("mine", str(many_questions), "-t", "0.5", "-q", stdout=full)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == "dupfind: error: cannot write the output: No space left on device"


def test_usage_errors_have_no_traceback(tmp_path: Path) -> None:
    process = fake_cli("mine", str(tmp_path / "nope.csv"))
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert err.strip() == f"dupfind: error: {tmp_path / 'nope.csv'}: no such file"


def test_sigterm_while_encoding_leaves_nothing_behind(many_questions: Path, tmp_path: Path) -> None:
    """`timeout`, systemd, Kubernetes and Slurm stop with SIGTERM: no output and no hidden temporary file."""
    out = tmp_path / "pairs.csv"
    started = tmp_path / "started"
    env = {"FAKE_ENCODER_DELAY": "0.05", "FAKE_ENCODER_STARTED": str(started), "DUPFIND_CACHE_DIR": str(tmp_path / "c")}
    process = fake_cli("mine", str(many_questions), "-o", str(out), "-q", "--no-cache", env=env)
    wait_for(started)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 143
    assert "Traceback" not in err and "terminated" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "c") == ["many.txt", "started"]


@pytest.mark.parametrize(
    ("redirect", "code", "message"),
    [
        ("<&-", 2, "-: the input is empty"),
        (">&-", 2, "cannot write the output: standard output is closed"),
    ],
)
def test_closed_standard_streams_are_one_line_errors(
    redirect: str, code: int, message: str, many_questions: Path
) -> None:
    source = "-" if redirect == "<&-" else str(many_questions)
    command = f"{sys.executable} -m tests.fake_cli mine {source} --format-in txt -q {redirect}"
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == code
    assert result.stderr.strip().splitlines() == [f"dupfind: error: {message}"]


def test_closed_stderr_does_not_leak_messages_into_the_output(many_questions: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs.jsonl"
    command = f"{sys.executable} -m tests.fake_cli mine {many_questions} -t 0.5 --top-k 1 -o {out} 2>&-"
    env = {**os.environ, "DUPFIND_CACHE_DIR": str(tmp_path / "c")}
    result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout == ""
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines and all(line.startswith('{"score"') for line in lines)


def _damaged_parquet_files(folder: Path) -> list[Path]:
    """Parquet files damaged in each way seen in the wild; the wide one's first page is garbage while its other
    columns are sound, so Arrow is still decoding those when the error comes back."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = 100_000
    columns = {f"c{c}": [f"value {row * c} of column {c}" for row in range(rows)] for c in range(12)}
    pq.write_table(pa.table({"question": [f"question {row}" for row in range(rows)], **columns}), folder / "w.pq")
    good = (folder / "w.pq").read_bytes()
    start = pq.ParquetFile(folder / "w.pq").metadata.row_group(0).column(0).data_page_offset
    footer = len(good) - 8 - int.from_bytes(good[-8:-4], "little")
    page = slice(start + 40, start + 4000)
    damaged = {
        "bad-page": good[: page.start] + bytes(b ^ 0xFF for b in good[page]) + good[page.stop :],
        "truncated": good[: len(good) // 2],
        "wrong-magic": b"XXXX" + good[4:-4] + b"XXXX",
        "bad-footer": good[:footer] + bytes(b ^ 0x5A for b in good[footer:-8]) + good[-8:],
        "empty": b"",
    }
    for name, data in damaged.items():
        (folder / f"{name}.parquet").write_bytes(data)
    return [folder / f"{name}.parquet" for name in damaged]


@pytest.mark.slow  # 15 runs of the command; the abort was intermittent (about 1 run in 10 under load)
def test_damaged_parquet_is_exit_2_and_one_line_every_time(tmp_path: Path) -> None:
    """No SIGABRT ("terminate called without an active exception", exit 134) after a failed Parquet read."""
    files = _damaged_parquet_files(tmp_path)
    for attempt in range(3):
        for path in files:
            process = fake_cli("mine", str(path), env={"DUPFIND_CACHE_DIR": str(tmp_path / "c")})
            _, err = process.communicate(timeout=60)
            assert (process.returncode, len(err.splitlines())) == (2, 1), (path.name, attempt, err)
            assert err.startswith(f"dupfind: error: {path}: not a readable Parquet file")


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_a_damaged_parquet_read_leaves_no_reader_thread_running(tmp_path: Path) -> None:
    """The cause of those aborts: Arrow pool threads still at work when the error reaches the exit."""
    _damaged_parquet_files(tmp_path)
    script = (
        "import os, sys\n"
        "from dupfind.errors import DupfindError\n"
        "from dupfind.io.read import read_rows\n"
        "before = len(os.listdir('/proc/self/task'))\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        read_rows(path)\n"
        "    except DupfindError:\n"
        "        pass\n"
        "print(before, len(os.listdir('/proc/self/task')))\n"
    )
    paths = [str(path) for path in sorted(tmp_path.glob("*.parquet"))]
    result = subprocess.run(
        [sys.executable, "-c", script, *paths], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    before, after = result.stdout.split()
    assert after == before
