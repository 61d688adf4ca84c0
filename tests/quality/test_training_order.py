"""Generated order pairs: a swap around an asymmetric relation is another question, around a symmetric one the same."""

from __future__ import annotations

import pytest

from dupfind.quality.training.order import order_pairs, swapped


@pytest.mark.parametrize(
    ("question", "expected", "symmetric"),
    [
        (
            "How do I convert an integer to a string in Java?",
            "How do I convert a string to an integer in Java?",
            False,
        ),
        ("How do I travel from Delhi to Mumbai by train?", "How do I travel from Mumbai to Delhi by train?", False),
        ("Is Java better than Python?", "Is Python better than Java?", False),
        ("Why do Canadians hate Americans?", "Why do Americans hate Canadians?", False),
        (
            "What is the difference between a virus and a bacterium?",
            "What is the difference between a bacterium and a virus?",
            True,
        ),
        ("Which is better, Chess or Ludo?", "Which is better, Ludo or Chess?", True),
        ("Python vs Java: which is better?", "Java vs Python: which is better?", True),
    ],
)
def test_swaps_around_a_relation(question: str, expected: str, symmetric: bool) -> None:
    found = swapped(question)
    assert found is not None
    assert found[0] == expected and found[1].symmetric is symmetric


@pytest.mark.parametrize(
    "question",
    [
        "What is the best way to learn Python?",  # "to" before a verb is no relation
        "What is the difference between a and a?",  # nothing to swap
        "What is the difference between cats, dogs and birds and fish?",  # a phrase holds a connective
    ],
)
def test_leaves_questions_without_a_clean_relation(question: str) -> None:
    assert swapped(question) is None


def test_order_pairs_label_each_distinct_question_once() -> None:
    questions = [
        "How do I convert an integer to a string in Java?",
        "What is the difference between a virus and a bacterium?",
        "How do I convert an integer to a string in Java?",
        "What is the best way to learn Python?",
    ]
    pairs = order_pairs(questions)
    assert pairs["sentence1"].tolist() == questions[:2] and pairs["label"].tolist() == [0, 1]
    assert pairs["rule"].tolist() == ["convert X to Y", "between X and Y"]
