"""The decision layer: which thresholds are in force, and the `Rule` they make."""

from __future__ import annotations

import json
import math
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
