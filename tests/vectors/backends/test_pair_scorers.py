"""The re-ranker's backends: the ONNX and OpenVINO exports score pairs as sentence-transformers' CrossEncoder does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dupfind.errors import DupfindError
from dupfind.pairs.rerank import Reranker
from dupfind.vectors.backends import load_pair_scorer
from dupfind.vectors.model import builtin_model_dir
from tests.conftest import write_fake_reranker

FIRST = ["How do I convert an integer to a string in Java?", "What is love?", "word " * 400]
SECOND = ["How do I convert a string to an integer in Java?", "Who is the president?", "Why is the sky blue?"]


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cross-encoder made from the built-in weights with an untrained head, with re-rank settings."""
    from sentence_transformers import CrossEncoder

    folder = tmp_path_factory.mktemp("cross-encoder")
    CrossEncoder(str(builtin_model_dir()), num_labels=1, max_length=64, local_files_only=True).save_pretrained(
        str(folder)
    )
    return write_fake_reranker(folder)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_exported_pair_scores_match_torch(cross_encoder: Path, backend: str) -> None:
    reference = Reranker(load_pair_scorer(str(cross_encoder), "torch", "fp32", "cpu")).cross_scores(FIRST, SECOND)
    scores = Reranker(load_pair_scorer(str(cross_encoder), backend, "fp32")).cross_scores(FIRST, SECOND)
    np.testing.assert_allclose(scores, reference, atol=1e-5)
    assert load_pair_scorer(str(cross_encoder), backend).count_tokens(FIRST[:1], SECOND[:1])[0] > 20


@pytest.mark.slow
def test_the_openvino_pair_scorer_runs_bf16_on_its_own_fingerprint(cross_encoder: Path) -> None:
    fp32, bf16 = (load_pair_scorer(str(cross_encoder), "openvino", precision) for precision in ("fp32", "bf16"))
    assert bf16.fingerprint == f"{fp32.fingerprint}-bf16"
    np.testing.assert_allclose(
        Reranker(bf16).cross_scores(FIRST, SECOND), Reranker(fp32).cross_scores(FIRST, SECOND), atol=2e-2
    )


@pytest.mark.slow
def test_a_cross_encoder_is_not_a_bi_encoder(cross_encoder: Path) -> None:
    from dupfind.vectors.backends import load_encoder

    with pytest.raises(DupfindError):
        load_encoder(str(cross_encoder), "onnx")
