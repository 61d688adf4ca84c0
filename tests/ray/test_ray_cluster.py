"""`mine --engine ray` on a two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`): the encoder
actors and the mining tasks spread over both nodes, and the pairs are those of the local engine."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
from ray.cluster_utils import Cluster  # noqa: E402

from dupfind.cli import app  # noqa: E402
from dupfind.ray.session import loopback_only  # noqa: E402
from tests.conftest import FakeEncoder  # noqa: E402
from tests.ray.test_ray_engine import synthetic_questions  # noqa: E402
from tests.ray_workers import RUNTIME_ENV  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[Cluster]:
    loopback_only()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1"},
    )
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
    ray.init(
        address=cluster.address,
        logging_level=logging.ERROR,
        log_to_driver=False,
        runtime_env=RUNTIME_ENV,
    )
    yield cluster
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.slow
def test_two_nodes_find_the_pairs_of_the_local_engine(
    two_nodes: Cluster, use_fake_encoder: FakeEncoder, tmp_path: Path
) -> None:
    texts = synthetic_questions(2000)
    pd.DataFrame({"id": range(len(texts)), "question": texts}).to_csv(tmp_path / "q.csv", index=False)
    assert len([node for node in ray.nodes() if node["Alive"]]) == 2
    for name, engine in {"local": ["--index", "ann"], "ray": ["--engine", "ray"]}.items():
        args = ["mine", str(tmp_path / "q.csv"), "-t", "0.7", *engine, "-o", str(tmp_path / f"{name}.parquet")]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (result.stderr, result.exception)
    local = pd.read_parquet(tmp_path / "local.parquet").set_index(["id_a", "id_b"]).score
    on_ray = pd.read_parquet(tmp_path / "ray.parquet").set_index(["id_a", "id_b"]).score
    assert set(local.index) == set(on_ray.index) and len(local) > 500
    assert (local - on_ray[local.index]).abs().max() <= 1e-5
    assert len(list((tmp_path / "ray.parquet.work").rglob("*.keys.npy"))) >= 1  # the embedding store's shards
