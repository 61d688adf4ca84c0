"""`dedupe`, `clusters` and `mine` keep the user's rows, columns, values and ids exactly."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
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


@pytest.mark.parametrize("sep", [",", ";"])
def test_clusters_keeps_a_csv_byte_for_byte(use_fake_encoder: FakeEncoder, tmp_path: Path, sep: str) -> None:
    rows = [
        [" id ", "id", "1", "", "question", "id"],
        ["a", '"b"', "NaN", "", "red apple pie", "x"],
        ["c", "d", "", "nan", "Red apple pie", "y"],
        [],
        ["e", "f", "2.50"],
        ["g", '"h, i"', "NA", "null", '"why is the sky ""blue""?"', ""],
    ]
    last = '"h, i"' if sep == "," else "h, i"
    added = [["cluster_id", "cluster_size", "representative"], ["1", "2", "b"], ["1", "2", "b"], [], [""] * 6]
    added.append(["2", "1", last])
    source, out = tmp_path / "q.csv", tmp_path / "groups.csv"
    source.write_bytes("".join(sep.join(row) + "\r\n" for row in rows).encode("utf-8"))
    code, _, err = run("clusters", str(source), "--id-col", "id", "-t", "0.9", "-o", str(out))
    assert code == 0, err
    expected = [sep.join(row + more) for row, more in zip(rows, added, strict=True)]
    assert out.read_bytes() == "".join(line + "\r\n" for line in expected).encode("utf-8")


def test_clusters_keeps_jsonl_lines_byte_for_byte(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    lines = [
        '{"question":"red apple pie","n":2.50,"o":{"b":9007199254740993,"a":null}}\r\n',
        '{"o": [9007199254740993, null], "question": "Red apple pie", "x": "NaN" }\n',
        "\n",
        "{}\n",
        '"why is the sky blue"',
    ]
    added = [
        ', "cluster_id": 1, "cluster_size": 2, "representative": 1',
        ', "cluster_id": 1, "cluster_size": 2, "representative": 1',
        "",
        '"cluster_id": null, "cluster_size": null, "representative": null',
        ', "cluster_id": 2, "cluster_size": 1, "representative": 5',
    ]
    expected = [
        lines[0].replace("}}", "}" + added[0] + "}"),
        lines[1].replace(" }", added[1] + " }"),
        lines[2],
        "{" + added[3] + "}\n",
        '{"question": "why is the sky blue"' + added[4] + "}",
    ]
    source, out = tmp_path / "q.jsonl", tmp_path / "groups.jsonl"
    source.write_text("".join(lines), encoding="utf-8", newline="")
    code, _, err = run("clusters", str(source), "-t", "0.9", "-o", str(out))
    assert code == 0, err
    assert out.read_bytes() == "".join(expected).encode("utf-8")
    result = runner.invoke(app, ["clusters", str(source), "-t", "0.9"])
    assert result.exit_code == 0 and result.stdout_bytes == out.read_bytes()


def nested_table() -> pa.Table:
    """Big integers beside nulls, in a struct and in a list."""
    kind = pa.struct([("z", pa.int64()), ("tags", pa.list_(pa.string()))])
    return pa.table(
        {
            "question": ["red apple pie", "Red apple pie", "sky"],
            "ids": pa.array([[BIG, None], None, []], pa.list_(pa.int64())),
            "meta": pa.array([{"z": BIG, "tags": ["a"]}, {"z": None, "tags": None}, None], kind),
            "f": pa.array([0.1, None, float("nan")], pa.float32()),
        }
    )


def test_clusters_parquet_keeps_the_arrow_table(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    source, out = tmp_path / "q.parquet", tmp_path / "groups.parquet"
    pq.write_table(nested_table(), source)
    code, _, err = run("clusters", str(source), "-t", "0.9", "-o", str(out))
    assert code == 0, err
    written, original = pq.read_table(out), pq.read_table(source)
    assert written.select(original.column_names).schema == original.schema
    assert written.select(original.column_names[:-1]).equals(original.drop_columns(["f"]))
    assert str(written.column("f").to_pylist()) == "[0.10000000149011612, None, nan]"  # NaN is not null
    assert written.column_names[-3:] == ["cluster_id", "cluster_size", "representative"]
    assert written.column("representative").to_pylist() == [1, 1, 3]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_clusters_of_nested_parquet_keep_big_integers(use_fake_encoder: FakeEncoder, tmp_path: Path, fmt: str) -> None:
    source, out = tmp_path / "q.parquet", tmp_path / f"groups.{fmt}"
    pq.write_table(nested_table(), source)
    code, _, err = run("clusters", str(source), "-t", "0.9", "-o", str(out))
    assert code == 0, err
    text = out.read_text(encoding="utf-8")
    if fmt == "jsonl":
        rows = [json.loads(line) for line in text.splitlines()]
    else:
        rows = [
            {name: json.loads(cell) if cell else None for name, cell in row.items() if name in ("ids", "meta")}
            for row in csv.DictReader(io.StringIO(text, newline=""))
        ]
    assert [row["ids"] for row in rows] == [[BIG, None], None, []]
    assert [row["meta"] for row in rows] == [{"z": BIG, "tags": ["a"]}, {"z": None, "tags": None}, None]


@pytest.mark.parametrize("command", ["clusters", "dedupe"])
def test_jsonl_with_missing_keys_to_parquet(use_fake_encoder: FakeEncoder, tmp_path: Path, command: str) -> None:
    source, out = tmp_path / "q.jsonl", tmp_path / "out.parquet"
    source.write_text('{"q": "red apple pie", "n": 1}\n{"q": "sky", "o": {"b": 9007199254740993}}\n', encoding="utf-8")
    code, _, err = run(command, str(source), "--text-col", "q", "-t", "0.9", "-o", str(out))
    assert code == 0, err
    rows = pq.read_table(out).to_pylist()
    assert [(row["q"], row["n"], row["o"]) for row in rows] == [("red apple pie", 1, None), ("sky", None, {"b": BIG})]


def test_clusters_of_csv_as_jsonl_keep_the_header_names(use_fake_encoder: FakeEncoder, tmp_path: Path) -> None:
    source = tmp_path / "q.csv"
    source.write_text(" id ,1,question\nNaN,,red apple pie\n", encoding="utf-8")
    code, out, err = run("clusters", str(source), "-t", "0.9", "--format", "jsonl")
    assert code == 0, err
    assert json.loads(out) == {
        " id ": "NaN",
        "1": "",
        "question": "red apple pie",
        "cluster_id": 1,
        "cluster_size": 1,
        "representative": 1,
    }


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
