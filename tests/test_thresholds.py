"""The decision layer: which thresholds are in force, and the `Rule` they make."""

from __future__ import annotations

import datetime
import json
import math
import tomllib
from pathlib import Path

import pytest

from dupfind.errors import DupfindError
from dupfind.thresholds import (
    Rule,
    Thresholds,
    read_project_thresholds,
    resolve_rule,
    save_thresholds,
    store_project_thresholds,
)
from dupfind.vectors.model import ModelRef, fingerprint
from tests.conftest import FAKE_RERANK_SETTINGS, write_fake_reranker


@pytest.fixture
def model(tmp_path: Path) -> ModelRef:
    """A model folder calibrated at pair 0.7, mining 0.8."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    save_thresholds(folder, Thresholds(0.7, 0.8))
    return ModelRef("model", folder)


def test_a_rule_says_what_it_decides() -> None:
    assert Rule(0.8).describe() == "cosine ≥ 0.800" and not Rule(0.8).reranks
    rule = Rule(0.6, 0.75)
    assert rule.describe(12) == "re-rank score ≥ 0.750 among 12 candidates with cosine ≥ 0.600"
    assert rule.is_duplicate(0.61, 0.8) and not rule.is_duplicate(0.59, 0.9) and not rule.is_duplicate(0.9, 0.7)
    assert not rule.is_duplicate(0.9) and Rule(0.8).is_duplicate(0.8)
    assert Rule.of(0.5) == Rule(0.5) and Rule.of(rule) is rule


@pytest.mark.parametrize(("cosine", "rerank"), [(1.5, None), (math.nan, None), (0.5, 1.2), (0.5, math.nan)])
def test_a_rule_refuses_thresholds_no_score_can_meet(cosine: float, rerank: float | None) -> None:
    with pytest.raises(DupfindError, match="between"):
        Rule(cosine, rerank)


def test_the_model_decides_unless_a_project_file_or_an_index_does(model: ModelRef, tmp_path: Path) -> None:
    assert resolve_rule("mining", model) == Rule(0.8, source="model model")
    assert resolve_rule("pair", model, threshold=0.5).cosine == 0.5
    assert resolve_rule("pair", model, fallback=Thresholds(0.6, 0.65)).cosine == 0.6
    project = tmp_path / "dupfind.toml"
    store_project_thresholds(project, model, Thresholds(0.55, 0.66))
    rule = resolve_rule("mining", model, project_file=project, fallback=Thresholds(0.6, 0.65))
    assert rule == Rule(0.66, source=str(project))


def test_a_project_file_s_fp32_thresholds_serve_a_precision_it_has_none_of(model: ModelRef, tmp_path: Path) -> None:
    project = tmp_path / "dupfind.toml"
    store_project_thresholds(project, model, Thresholds(0.55, 0.66))
    assert read_project_thresholds(project, model, "int8") == Thresholds(0.55, 0.66)
    store_project_thresholds(project, model, Thresholds(0.51, 0.61), "int8")
    assert read_project_thresholds(project, model, "int8") == Thresholds(0.51, 0.61)
    assert read_project_thresholds(project, model) == Thresholds(0.55, 0.66)


# A project file as a person keeps it: comments, keys and tables of their own, another model's entry with an
# inline table, dates and a nan where no threshold is read. Storing thresholds must change nothing else in it.
HAND_WRITTEN = """\
# Thresholds of our support-desk questions.
owner = "desk team"  # who to ask
reviewed = 2026-11-30

[models."{fp}"]  # the model we ship
name = "model"
pair = 0.5  # calibrated on the March export
mining = 0.66
since = 2026-03-01T09:30:00Z

[models."0123456789abcdef"]
name = "old model"
pair = 0.61
mining = 0.72
extra = {{ source = "dev", sizes = [1, 2], at = 07:32:00 }}

[notes]
# free text
todo = ["recalibrate", "check int8"]
ratio = nan
"""


def test_storing_changes_only_the_model_s_thresholds_in_a_hand_written_file(model: ModelRef, tmp_path: Path) -> None:
    project, fp = tmp_path / "dupfind.toml", fingerprint(model)
    original = HAND_WRITTEN.format(fp=fp)
    project.write_text(original, encoding="utf-8")
    project.chmod(0o640)
    store_project_thresholds(project, model, Thresholds(0.5837, 0.66))
    updated = original.replace("pair = 0.5  #", "pair = 0.5837  #")
    assert project.read_text(encoding="utf-8") == updated  # comments, layout, dates, nan and all else kept
    assert project.stat().st_mode & 0o777 == 0o640
    assert read_project_thresholds(project, model) == Thresholds(0.5837, 0.66)
    store_project_thresholds(project, model, Thresholds(0.52, 0.64), "int8")  # a new entry, after the others
    int8 = f'[models."{fp}-int8"]\nname = "model"\npair = 0.52\nmining = 0.64\n\n'
    assert project.read_text(encoding="utf-8") == updated.replace("[notes]", int8 + "[notes]")
    data = tomllib.loads(project.read_text(encoding="utf-8"))
    assert data["reviewed"] == datetime.date(2026, 11, 30) and math.isnan(data["notes"]["ratio"])


def test_a_new_project_file_says_what_it_is(model: ModelRef, tmp_path: Path) -> None:
    project = tmp_path / "dupfind.toml"
    store_project_thresholds(project, model, Thresholds(0.55, 0.66))
    text = project.read_text(encoding="utf-8")
    assert text.startswith("# Decision thresholds per model") and f'[models."{fingerprint(model)}"]' in text
    assert tomllib.loads(text) == {"models": {fingerprint(model): {"name": "model", "pair": 0.55, "mining": 0.66}}}


def test_a_project_file_with_crlf_line_ends_keeps_them(model: ModelRef, tmp_path: Path) -> None:
    project = tmp_path / "dupfind.toml"
    project.write_bytes(b"# ours\r\n[models.a]\r\npair = 0.5\r\nmining = 0.6\r\n")
    store_project_thresholds(project, model, Thresholds(0.55, 0.66))
    raw = project.read_bytes()
    assert raw.startswith(b"# ours\r\n[models.a]\r\npair = 0.5\r\nmining = 0.6\r\n")
    assert raw.count(b"\n") == raw.count(b"\r\n") == 9
    assert read_project_thresholds(project, model) == Thresholds(0.55, 0.66)


@pytest.mark.parametrize(
    ("content", "key"),
    [
        ("models = 3\n", "models is 3, not a table"),
        ("[[models]]\npair = 0.5\n", "models is an array, not a table"),
        ('[models]\n"{fp}" = 2026-01-01\n', 'models."{fp}" is a date (2026-01-01), not a table'),
        ("models.a.pair = 0.5\nmodels.a.mining = 0.6\n", 'cannot add models."{fp}" without changing the rest'),
    ],
)
def test_a_project_file_of_another_shape_is_not_replaced(
    model: ModelRef, tmp_path: Path, content: str, key: str
) -> None:
    project = tmp_path / "dupfind.toml"
    project.write_text(content.format(fp=fingerprint(model)), encoding="utf-8")
    with pytest.raises(DupfindError, match="not replaced") as raised:
        store_project_thresholds(project, model, Thresholds(0.55, 0.66))
    assert key.format(fp=fingerprint(model)) in str(raised.value)
    assert project.read_text(encoding="utf-8") == content.format(fp=fingerprint(model))


def test_a_reranker_proposes_candidates_for_its_bi_encoder(model: ModelRef, tmp_path: Path) -> None:
    reranker = write_fake_reranker(tmp_path / "reranker")
    other = ModelRef("r", reranker)
    rule = resolve_rule("mining", model, reranker=other)  # not calibrated with it: its own mining less the margin
    assert (rule.cosine, rule.rerank) == (pytest.approx(0.6), 0.75)
    calibrated = {**FAKE_RERANK_SETTINGS, "candidates": {fingerprint(model): {"pair": 0.3, "mining": 0.4}}}
    write_fake_reranker(reranker, calibrated)
    rule = resolve_rule("pair", model, reranker=other, threshold=0.9)
    assert (rule.cosine, rule.rerank) == (0.3, 0.9)


def test_a_reranker_whose_threshold_is_not_a_number_is_refused(model: ModelRef, tmp_path: Path) -> None:
    reranker = write_fake_reranker(tmp_path / "reranker", {**FAKE_RERANK_SETTINGS, "mining": math.nan})
    assert math.isnan(json.loads((reranker / "dupfind.json").read_text())["rerank"]["mining"])
    with pytest.raises(DupfindError, match="re-rank threshold is a probability"):
        resolve_rule("mining", model, reranker=ModelRef("r", reranker))
