"""`dedupe`, `clusters` and `mine` keep the user's rows, columns, values and ids exactly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from dupfind.cli import app
from tests.cli.runner import run, runner
from tests.conftest import FakeEncoder

BIG = 9007199254740993
ROOT = Path(__file__).resolve().parents[2]


def test_dedupe_parquet_with_a_repeated_index(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    first = pd.DataFrame({"question": ["red apple pie", "why is the sky blue"], "n": [1, 2]})
    second = pd.DataFrame({"question": ["Red apple pie", "how do magnets work"], "n": [3, 4]})
    source, out = tmp_path / "q.parquet", tmp_path / "out.parquet"
    pd.concat([first, second]).to_parquet(source)
    code, _, err = run("dedupe", str(source), "-t", "0.9", "-o", str(out))
    assert code == 0, err
    assert pq.read_table(out).equals(pq.read_table(source).take([0, 1, 3]), check_metadata=True)
    assert "4 rows in, 3 out" in err


def test_named_index_kept_by_clusters(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    source, out = tmp_path / "q.parquet", tmp_path / "groups.csv"
    frame = pd.DataFrame({"key": ["k1", "k2"], "question": ["red apple pie", "Red apple pie"]})
    frame.set_index("key").to_parquet(source)
    code, _, err = run("clusters", str(source), "-t", "0.9", "-o", str(out))
    assert code == 0, err
    assert pd.read_csv(out)["key"].tolist() == ["k1", "k2"]


def test_dedupe_jsonl_keeps_lines_as_they_were(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    lines = ['{"q":"red apple pie", "f": 1E-9,"n":10.0}\r\n', '{"n": 2, "q": "Red apple pie"}\n', "\n", '{"q": "sky"}']
    source = tmp_path / "q.jsonl"
    source.write_text("".join(lines), encoding="utf-8")
    result = runner.invoke(app, ["dedupe", str(source), "--text-col", "q", "-t", "0.9"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == (lines[0] + lines[2] + lines[3]).encode("utf-8")


def test_mine_prints_exact_big_ids(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    source = tmp_path / "q.jsonl"
    records = [{"id": BIG, "q": "red apple pie"}, {"id": BIG - 1, "q": "Red apple pie"}, {"id": None, "q": "x y"}]
    source.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    code, out, err = run("mine", str(source), "--id-col", "id", "--text-col", "q", "-t", "0.9", "--no-cache")
    assert code == 0, err
    pair = json.loads(out.splitlines()[0])
    assert {pair["id_a"], pair["id_b"]} == {BIG, BIG - 1}


def test_clusters_json_output_keeps_values(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    source, out = tmp_path / "q.jsonl", tmp_path / "groups.jsonl"
    source.write_text('{"q": "red apple pie", "f": 1e-09, "n": 10}\n{"q": "sky blue", "x": 1}\n', encoding="utf-8")
    code, _, err = run("clusters", str(source), "--text-col", "q", "-t", "0.9", "-o", str(out))
    assert code == 0, err
    first, second = out.read_text(encoding="utf-8").splitlines()
    assert first.startswith('{"q": "red apple pie", "f": 1e-09, "n": 10, "cluster_id": 1')
    assert second.startswith('{"q": "sky blue", "x": 1, "cluster_id": 2')


def test_a_folder_output_never_deletes_a_folder_named_like_a_part(
    use_fake_encoder: FakeEncoder, tmp_path: Path
) -> None:
    source, folder = tmp_path / "q.txt", tmp_path / "pairs"
    source.write_text("red apple pie\nRed apple pie\n", encoding="utf-8")
    (folder / "part-00000.parquet").mkdir(parents=True)
    (folder / "part-00000.parquet" / "notes.txt").write_text("keep me", encoding="utf-8")
    code, _, err = run("mine", str(source), "-t", "0.9", "--no-cache", "-o", f"{folder}/")
    assert code == 2
    assert err.splitlines() == [
        f"dupfind: error: {folder}/: holds part-00000.parquet, not a Parquet part dupfind wrote; "
        "name a new or empty folder"
    ]
    assert (folder / "part-00000.parquet" / "notes.txt").read_text(encoding="utf-8") == "keep me"
    assert use_fake_encoder.calls == []


@pytest.mark.parametrize("output", ["/dev/stdout", "/proc/self/fd/1", "/dev/fd/1", "a link to /dev/stdout"])
def test_an_output_to_stdout_appends_to_the_file_stdout_is(tmp_path: Path, output: str) -> None:
    """`dupfind mine q.txt -o /dev/stdout >> log.txt` adds to the log; it never replaces it."""
    if not Path(output.split()[-1]).exists():
        pytest.skip(f"no {output} here")
    if output.startswith("a link"):
        (tmp_path / "out.jsonl").symlink_to("/dev/stdout")
        output = str(tmp_path / "out.jsonl")
    source, log = tmp_path / "q.txt", tmp_path / "log.txt"
    source.write_text("red apple pie\nRed apple pie\n", encoding="utf-8")
    log.write_text("a line already there\n", encoding="utf-8")
    command = [sys.executable, "-m", "tests.fake_cli", "mine", str(source), "-t", "0.9", "--format", "jsonl"]
    with log.open("a", encoding="utf-8") as appended:
        done = subprocess.run(
            [*command, "-o", output, "-q", "--no-cache"], cwd=ROOT, stdout=appended, stderr=subprocess.PIPE, text=True
        )
    assert done.returncode == 0, done.stderr
    first, *pairs = log.read_text(encoding="utf-8").splitlines()
    assert first == "a line already there"
    assert [json.loads(line)["id_a"] for line in pairs] == [1]
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []
