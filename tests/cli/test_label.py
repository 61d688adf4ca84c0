"""`dupfind label`: the line protocol through Typer's runner, and real processes (Ctrl-C, a terminal in tmux)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from dupfind.cli import app
from dupfind.vectors.backends import register_backend, unregister_backend
from tests.conftest import EXAMPLES, FakeEncoder

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = EXAMPLES / "questions.csv"
runner = CliRunner()


def label(labels: Path, answers: str, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    """Run `label` with piped answers; the exit code, the JSON lines of stdout, stderr."""
    words = ["label", str(QUESTIONS), "-o", str(labels), "--floor", "0.3", *args]
    result = runner.invoke(app, words, input=answers)
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def asked(lines: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(line["question_a"], line["question_b"]) for line in lines if line["type"] == "pair"]


def rows(labels: Path) -> pd.DataFrame:
    return pd.read_csv(labels)


def test_piped_answers_are_written_at_once(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    code, lines, err = label(labels, "y\nn\ns\nn\n")
    assert code == 0, err
    pairs, result = lines[:-1], lines[-1]
    assert [line["type"] for line in pairs] == ["pair"] * 5 and [p["number"] for p in pairs] == [1, 2, 3, 3, 4]
    assert set(pairs[0]["estimate"]) >= {"threshold", "low", "high", "f1", "f1_low", "f1_high", "n", "more"}
    assert result["type"] == "result" and result["stopped"] == "end of input" and result["n"] == 3
    written = rows(labels)
    assert list(written.columns) == ["question1", "question2", "is_duplicate", "score"]
    answered = [asked(pairs)[index] for index in (0, 1, 3)]
    assert list(zip(written.question1, written.question2, strict=True)) == answered
    assert written.is_duplicate.tolist() == [1, 0, 0]
    assert written.score.tolist() == [pairs[index]["score"] for index in (0, 1, 3)]
    assert "candidate pairs with cosine ≥ 0.300" in err


def test_an_unknown_answer_gets_a_hint_and_the_same_pair(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    code, lines, err = label(labels, "maybe\ny\n")
    assert code == 0
    assert lines[0] == lines[1] != lines[2] and lines[3]["type"] == "result"
    assert "'maybe' is not an answer" in err
    assert len(rows(labels)) == 1


def test_undo_takes_the_answer_back_and_asks_again(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    code, lines, err = label(labels, "u\ny\nu\nn\nq\n")
    assert code == 0
    assert "nothing to undo" in err
    assert asked(lines)[0] == asked(lines)[1] == asked(lines)[3] != asked(lines)[2]
    assert lines[-1]["stopped"] == "quit" and lines[-1]["n"] == 1
    assert rows(labels).is_duplicate.tolist() == [0]


def test_a_second_run_resumes_without_asking_again(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    _, first, _ = label(labels, "y\nn\n" * 3)
    code, second, err = label(labels, "n\ny\n" * 3)
    assert code == 0 and "Resuming: 6 answers" in err
    assert not set(asked(first)[:6]) & set(asked(second))
    assert second[0]["estimate"]["n"] == 6 and second[-1]["n"] == 12
    assert len(rows(labels)) == 12


def test_it_stops_when_the_range_is_narrow_or_at_max(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    _, lines, _ = label(tmp_path / "a.csv", "y\nn\n" * 30, "--width", "2")
    assert lines[-1]["stopped"] == "narrow" and lines[-1]["n"] == 20
    _, lines, _ = label(tmp_path / "b.csv", "y\nn\n" * 30, "--max", "3")
    assert lines[-1]["stopped"] == "max" and lines[-1]["n"] == 3 and len(rows(tmp_path / "b.csv")) == 3


def test_a_hand_edited_file_is_resumed(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    label(labels, "y\nn\n")
    lines = labels.read_text(encoding="utf-8").splitlines()
    extra = "Is this a pair from elsewhere?,Not a candidate,1,0.95"
    labels.write_text("\n".join([*lines, lines[1].replace(",1,", ",0,"), extra]) + "\n", encoding="utf-8")
    code, second, err = label(labels, "")
    assert code == 0, err
    assert second[-1]["n"] == 3 and second[-1]["duplicates"] == 1  # the later answer about pair 1 holds


def test_no_candidates_is_an_error(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    questions, labels = tmp_path / "q.txt", tmp_path / "labels.csv"
    questions.write_text("Why is the sky blue?\nHow do I bake bread?\nWhat is a prime number?\n", encoding="utf-8")
    result = runner.invoke(app, ["label", str(questions), "-o", str(labels), "--floor", "0.9"], input="y\n")
    assert result.exit_code == 2 and result.stdout == "" and "lower --floor" in result.stderr
    assert not labels.exists()


def test_the_same_seed_asks_the_same_pairs(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    answers = "y\nn\nn\n" * 5
    _, first, _ = label(tmp_path / "a.csv", answers, "--seed", "5")
    _, again, _ = label(tmp_path / "b.csv", answers, "--seed", "5")
    _, other, _ = label(tmp_path / "c.csv", answers, "--seed", "6")
    assert asked(first) == asked(again) != asked(other)


def test_calibrate_reads_the_labels(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    label(labels, "y\nn\n" * 4)
    result = runner.invoke(app, ["calibrate", "--pairs", str(labels), "--dry-run", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["calibration"]["pair"]["rows"] == 8


# What str.splitlines() splits on besides \n: a question holding one is still resumed exactly.
LINE_BREAKING = ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\r"]


def test_questions_with_line_breaking_characters_are_resumed(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    questions, labels = tmp_path / "questions.jsonl", tmp_path / "labels.csv"
    texts = []
    for i, char in enumerate(LINE_BREAKING):  # pairs of questions that share 3 words of 4, one pair per character
        texts += [f"alpha{i} beta{i} gamma{i}{char}delta{i}", f"alpha{i} beta{i}{char}gamma{i} omega{i}"]
    questions.write_text("".join(json.dumps({"id": n, "question": t}) + "\n" for n, t in enumerate(texts)))
    words = ["label", str(questions), "-o", str(labels), "--floor", "0.3"]
    first = runner.invoke(app, words, input="y\nn\n" * 20)
    assert first.exit_code == 0, first.stderr
    answered = [json.loads(line) for line in first.stdout.split("\n") if line]  # not splitlines: U+2028 is data
    assert answered[-1]["stopped"] == "no pair left" and answered[-1]["n"] == len(LINE_BREAKING)
    pairs = {frozenset((p["question_a"], p["question_b"])) for p in answered if p["type"] == "pair"}
    assert pairs == {frozenset(texts[n : n + 2]) for n in range(0, len(texts), 2)}
    second = runner.invoke(app, words, input="y\n")
    assert second.exit_code == 0, second.stderr
    resumed = [json.loads(line) for line in second.stdout.split("\n") if line]
    assert [line["type"] for line in resumed] == ["result"]  # nothing asked again
    assert resumed[0]["n"] == len(LINE_BREAKING) and f"Resuming: {len(LINE_BREAKING)} answers" in second.stderr
    read = runner.invoke(app, ["calibrate", "--pairs", str(labels), "--dry-run", "--format", "json"])
    assert json.loads(read.stdout)["calibration"]["pair"]["rows"] == len(LINE_BREAKING)  # dupfind's CSV reader too


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A default backend that fails the test if a model is loaded."""

    def refuse(model: object) -> FakeEncoder:
        raise AssertionError("the model was loaded")

    register_backend("no-model", refuse)
    monkeypatch.setenv("DUPFIND_BACKEND", "no-model")
    yield
    unregister_backend("no-model")


def test_a_file_with_other_columns_is_refused_before_the_model_loads(no_model: None, tmp_path: Path) -> None:
    labels = tmp_path / "pairs.csv"
    labels.write_text("score,id_a,question_a\n0.9,1,a\n", encoding="utf-8")
    code, lines, err = label(labels, "y\n")
    assert code == 2 and lines == []
    assert err.strip().splitlines() == [
        f"dupfind: error: {labels}: not a labels file: its columns are score,id_a,question_a, "
        "not question1,question2,is_duplicate,score; give another -o"
    ]
    assert labels.read_text(encoding="utf-8") == "score,id_a,question_a\n0.9,1,a\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--floor", "1.5"], "--floor must be between -1 and 1"),
        (["--max", "0"], "--max must be at least 1"),
        (["--width", "-1"], "--width must be at least 0"),
        (["--top-k", "0"], "--top-k must be at least 1"),
    ],
)
def test_bad_options(no_model: None, tmp_path: Path, args: list[str], message: str) -> None:
    code, lines, err = label(tmp_path / "labels.csv", "", *args)
    assert code == 2 and lines == [] and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("name", "message"), [("labels.txt", "ending in .csv"), ("nowhere/l.csv", "does not exist")])
def test_bad_labels_paths(no_model: None, tmp_path: Path, name: str, message: str) -> None:
    code, _, err = label(tmp_path / name, "")
    assert code == 2 and message in err and not (tmp_path / name).exists()


def fake_label(labels: Path, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "tests.fake_cli", "label", str(QUESTIONS), "-o", str(labels), "--floor", "0.3"]
    env = {**os.environ, "DUPFIND_CACHE_DIR": str(labels.parent / "cache")}
    return subprocess.Popen(
        [*command, *args], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs
    )


def test_ctrl_c_mid_way_keeps_the_answers_and_a_rerun_resumes(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    process = fake_label(labels, stdin=subprocess.PIPE)
    assert process.stdin is not None and process.stdout is not None
    first = []
    for answer in "yny":
        first.append(json.loads(process.stdout.readline()))
        process.stdin.write(answer + "\n")
        process.stdin.flush()
    assert json.loads(process.stdout.readline())["number"] == 4  # now waiting for the fourth answer
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert rows(labels).is_duplicate.tolist() == [1, 0, 1]
    code, second, err = label(labels, "n\nn\n")
    assert code == 0, err
    assert not set(asked(first)) & set(asked(second))
    assert rows(labels).is_duplicate.tolist() == [1, 0, 1, 0, 0]


class Tmux:
    """A private tmux server (its own socket) running one command in a terminal."""

    def __init__(self, tmp_path: Path, command: str) -> None:
        tmux = shutil.which("tmux")
        if tmux is None:
            pytest.skip("tmux is not installed")
        self.base = [tmux, "-L", f"dupfind-test-{os.getpid()}-{tmp_path.name}"]
        shell = f"cd {ROOT} && {command}; echo EXIT=$?; stty -a > {tmp_path / 'stty.txt'}; sleep 60"
        subprocess.run([*self.base, "new-session", "-d", "-x", "150", "-y", "40", shell], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p"], capture_output=True, text=True).stdout

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while text not in (screen := self.screen()):
            assert time.monotonic() < deadline, f"{text!r} never appeared on:\n{screen}"
            time.sleep(0.1)
        return screen

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", *keys], check=True)

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


def test_a_terminal_gets_a_keyboard_screen_and_ctrl_c_restores_it(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    env = f"DUPFIND_CACHE_DIR={tmp_path / 'cache'} NO_COLOR=1"
    session = Tmux(tmp_path, f"{env} {sys.executable} -m tests.fake_cli label {QUESTIONS} -o {labels} --floor 0.3")
    try:
        screen = session.wait_for("y duplicate · n not · s skip · u undo · q quit")
        assert "pair 1" in screen and "score" in screen and "0 answers" in screen
        session.keys("x")
        session.wait_for("is not an answer")
        session.keys("y")
        session.wait_for("pair 2")
        session.keys("n")
        screen = session.wait_for("2 answers (1 duplicate)")
        session.keys("C-c")
        session.wait_for("EXIT=130")
        deadline = time.monotonic() + 10
        while not (tmp_path / "stty.txt").is_file() or not (tmp_path / "stty.txt").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        modes = (tmp_path / "stty.txt").read_text().split()
        assert "icanon" in modes and "echo" in modes  # the terminal was restored
        assert rows(labels).is_duplicate.tolist() == [1, 0]
    finally:
        session.close()
