"""The labeling library: the threshold estimate and its interval, the sampler, the labels file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dupfind.errors import DupfindError
from dupfind.quality.evaluation.pairs import best_f1, classify
from dupfind.quality.labeling import (
    LABEL_COLUMNS,
    MIN_ANSWERS,
    Estimate,
    LabelsWriter,
    Sampler,
    estimate,
    is_settled,
    read_labels,
)


def population(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Scores skewed towards the low end, duplicates ever more likely above 0.8."""
    rng = np.random.default_rng(seed)
    scores = 0.5 + 0.5 * rng.beta(1.5, 3.0, n)
    labels = rng.random(n) < 1 / (1 + np.exp(-(scores - 0.8) * 30))
    return scores, labels


def test_without_a_pool_the_threshold_is_calibrates() -> None:
    scores, labels = population(3000)
    found = estimate(scores, labels, np.random.default_rng(0))
    best = best_f1(scores.astype(np.float32), labels)
    assert found.threshold == pytest.approx(best.threshold, abs=1e-6)
    assert found.f1 == pytest.approx(best.f1)
    assert found.low <= found.threshold <= found.high and found.high - found.low < 0.05
    assert found.f1_low <= found.f1 <= found.f1_high
    assert found.n == 3000 and found.duplicates == int(labels.sum()) and found.warnings == ()


def test_the_estimate_is_deterministic_given_the_generator() -> None:
    scores, labels = population(200)
    first = estimate(scores, labels, np.random.default_rng(7), pool=scores)
    assert first == estimate(scores, labels, np.random.default_rng(7), pool=scores)
    assert first != estimate(scores, labels, np.random.default_rng(8), pool=scores)


def test_a_pool_infers_the_unlabeled_pairs() -> None:
    scores, labels = population()
    rng = np.random.default_rng(1)
    sample = rng.choice(len(scores), 300, replace=False)
    rest = np.setdiff1d(np.arange(len(scores)), sample)
    found = estimate(scores[sample], labels[sample], rng, pool=scores[rest])
    best = best_f1(scores.astype(np.float32), labels)
    assert classify(scores, labels, found.threshold).f1 > best.f1 - 0.02
    assert found.low - 0.01 <= best.threshold <= found.high + 0.01
    assert found.f1_low <= best.f1 + 0.02 and best.f1 - 0.05 <= found.f1_high


def test_one_sided_or_few_labels_are_flagged() -> None:
    none = estimate(np.array([0.7, 0.8]), np.array([False, False]), np.random.default_rng(0))
    assert math.isnan(none.threshold) and none.n == 2 and none.duplicates == 0
    assert any("too few" in warning for warning in none.warnings)
    assert any("one-sided" in warning for warning in none.warnings)
    assert none.as_dict()["threshold"] is None
    few = estimate(np.array([0.6, 0.7, 0.8, 0.9]), np.array([False, False, True, True]), np.random.default_rng(0))
    assert few.threshold == pytest.approx(0.75) and len(few.warnings) >= 2
    assert not is_settled(few, 1.0)


def test_a_threshold_at_the_lowest_candidate_is_flagged() -> None:
    scores = np.linspace(0.5, 1.0, 40)
    found = estimate(scores, np.ones(40, dtype=bool) & (scores > 0.51), np.random.default_rng(0))
    assert any("lowest score" in warning for warning in found.warnings)


def test_more_needed_shrinks_as_one_over_root_n() -> None:
    wide = Estimate(0.8, 0.7, 0.9, 0.7, 0.6, 0.8, 40, 20)
    assert wide.more_needed(0.1) == 120  # four times the labels halve the width
    assert wide.more_needed(0.3) == 0
    assert is_settled(wide, 0.3) and not is_settled(wide, 0.1)
    assert Estimate(*[math.nan] * 6, 3, 0).more_needed(0.05) >= MIN_ANSWERS - 3  # type: ignore[arg-type]
    assert Estimate(0.8, 0.79, 0.8, 0.7, 0.6, 0.8, 12, 2).more_needed(0.05) == MIN_ANSWERS - 12


def asked(sampler: Sampler, labels: np.ndarray, count: int) -> list[int]:
    order = []
    for _ in range(count):
        index = sampler.next()
        assert index is not None
        sampler.add(index, bool(labels[index]))
        order.append(index)
    return order


def test_the_sampler_is_deterministic_and_never_repeats() -> None:
    scores, labels = population(5000)
    first = asked(Sampler(scores, seed=3), labels, 25)
    assert first == asked(Sampler(scores, seed=3), labels, 25)
    assert first != asked(Sampler(scores, seed=4), labels, 25)
    assert len(set(first)) == 25


def test_the_sampler_spreads_then_concentrates_near_the_threshold() -> None:
    scores, labels = population(20_000)
    sampler = Sampler(scores, seed=0)
    order = asked(sampler, labels, 60)
    spread = scores[order[:10]]
    assert spread.max() - spread.min() > 0.6 * (scores.max() - scores.min())
    best = best_f1(scores.astype(np.float32), labels).threshold
    later = np.abs(scores[order[30:]] - best)
    uniform = np.abs(np.random.default_rng(0).choice(scores, 1000) - best)
    assert np.median(later) < np.median(uniform) / 2
    assert classify(scores, labels, sampler.estimate().threshold).f1 > best_f1(scores, labels).f1 - 0.02


def test_skip_remove_and_unskip_reopen_pairs() -> None:
    scores = np.array([0.6, 0.7, 0.8])
    sampler = Sampler(scores, seed=0)
    for index in range(3):
        sampler.skip(index) if index == 1 else sampler.add(index, index == 2)
    assert sampler.next() is None and sampler.remaining == 0
    with pytest.raises(ValueError):
        sampler.add(0, True)
    sampler.unskip(1)
    assert sampler.next() == 1
    sampler.remove(2)
    assert sampler.remaining == 2 and sampler.estimate().n == 1
    sampler.add_outside(0.9, True)
    assert sampler.estimate().n == 2 and sampler.estimate().duplicates == 1


def test_labels_round_trip_and_undo(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    assert len(read_labels(path)) == 0
    writer = LabelsWriter(path)
    writer.append('He said "hi", then left', "line one\nline two", True, 0.8123456)
    offset = writer.append("ä", "b", False, 0.5)
    writer.append("c", "d", True, 0.9)
    writer.truncate(offset)
    writer.append("e", "f", False, 0.4)
    writer.close()
    rows = read_labels(path)
    assert rows.first == ['He said "hi", then left', "e"] and rows.second == ["line one\nline two", "f"]
    assert rows.labels == [True, False] and rows.scores == [0.812346, 0.4]
    assert path.read_text(encoding="utf-8").splitlines()[0] == ",".join(LABEL_COLUMNS)
    LabelsWriter(path).close()  # reopening appends, no second header
    assert len(read_labels(path)) == 2


# What str.splitlines() splits on but the labels file's CSV does not treat as a line end (a lone \r is quoted).
LINE_BREAKING = ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\r"]


@pytest.mark.parametrize("char", LINE_BREAKING)
def test_labels_with_line_breaking_characters_read_back_exactly(tmp_path: Path, char: str) -> None:
    path = tmp_path / "labels.csv"
    writer = LabelsWriter(path)
    writer.append(f"before{char}after", f"{char}edge", True, 0.75)
    writer.append("plain", f"end{char}", False, 0.5)
    writer.close()
    rows = read_labels(path)
    assert rows.first == [f"before{char}after", "plain"] and rows.second == [f"{char}edge", f"end{char}"]
    assert rows.labels == [True, False] and rows.scores == [0.75, 0.5]


def test_a_labels_file_with_crlf_line_ends_is_read(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(b'question1,question2,is_duplicate,score\r\na,"b\r\nc",1,0.5\r\n')
    rows = read_labels(path)
    assert rows.first == ["a"] and rows.second == ["b\r\nc"] and rows.labels == [True]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("question1,question2,is_duplicate\na,b,1\n", "not a labels file"),
        ("id,question\n1,a\n", "not a labels file"),
        ("question1,question2,is_duplicate,score\na,b,maybe,0.5\n", "row 2"),
        ("question1,question2,is_duplicate,score\na,b,1,high\n", "not a number"),
        ("question1,question2,is_duplicate,score\na,b,1,0.5\na,c,0", "incomplete"),
    ],
)
def test_bad_labels_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DupfindError, match=message):
        read_labels(path)
