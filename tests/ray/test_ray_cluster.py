"""`mine --engine ray` on a two-node Ray cluster on this machine (`ray.cluster_utils.Cluster`): the encoder
actors and the mining tasks spread over both nodes, and the pairs are those of the local engine; `--precision
auto` chosen by each node from CPU flags the test gives it (`tests.ray_workers`), never this machine's."""

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
from dupfind.vectors import backends  # noqa: E402
from tests.cli.runner import run  # noqa: E402
from tests.conftest import FakeEncoder  # noqa: E402
from tests.ray.test_ray_engine import synthetic_questions  # noqa: E402
from tests.ray_workers import CPU_FLAGS, RUNTIME_ENV, injected_cpu_features, load_fake_encoder  # noqa: E402

runner = CliRunner()
AMX = "avx2 avx512f avx512_bf16 avx512_vnni amx_bf16 amx_tile"
PLAIN = "sse4_2 avx2"


@pytest.fixture(scope="module")
def flags(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the CPU flags of each node (`head`, `other`) and of the driver (`driver`)."""
    return tmp_path_factory.mktemp("cpu-flags")


def give_flags(folder: Path, head: str, other: str, driver: str = AMX) -> None:
    for name, features in {"head": head, "other": other, "driver": driver}.items():
        (folder / name).write_text(features, encoding="utf-8")


@pytest.fixture(scope="module")
def two_nodes(flags: Path) -> Iterator[Cluster]:
    """Two nodes of one CPU each, with the CPU flags of `flags`; every encoder, here and on the nodes, is the fake
    one with its backend and precision in its fingerprint."""
    loopback_only()
    give_flags(flags, AMX, AMX)
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": False,
            "node_ip_address": "127.0.0.1",
            "env_vars": {CPU_FLAGS: str(flags / "head")},
        },
    )
    cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", env_vars={CPU_FLAGS: str(flags / "other")})
    ray.init(
        address=cluster.address,
        logging_level=logging.ERROR,
        log_to_driver=False,
        runtime_env=RUNTIME_ENV,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CPU_FLAGS, str(flags / "driver"))
        patch.setattr(backends, "cpu_features", injected_cpu_features)
        patch.setattr(backends, "load_encoder", load_fake_encoder)
        yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_each_node_chooses_for_itself(two_nodes: Cluster, flags: Path) -> None:
    from dupfind.ray.encode import choose_on_nodes

    give_flags(flags, AMX, PLAIN)
    chosen = choose_on_nodes("auto", "auto")
    assert sorted(choice.precision for choice in chosen.nodes.values()) == ["bf16", "fp32"]
    assert (chosen.agreed.backend, chosen.agreed.precision) == ("openvino", "fp32")
    give_flags(flags, AMX, AMX)
    assert choose_on_nodes("openvino", "auto").agreed.precision == "bf16"
    assert choose_on_nodes("auto", "fp32").agreed.precision == "fp32"  # a precision given is every node's


def test_a_mixed_cluster_encodes_at_one_precision_kept_apart_from_the_others(
    two_nodes: Cluster, flags: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DUPFIND_BACKEND", raising=False)
    pd.DataFrame({"id": range(300), "question": synthetic_questions(300)}).to_csv(tmp_path / "q.csv", index=False)
    work = tmp_path / "work"

    def mine_on_ray(name: str) -> tuple[pd.DataFrame, str]:
        out = tmp_path / f"{name}.parquet"
        code, _, err = run("-v", "mine", str(tmp_path / "q.csv"), "--engine", "ray", "--work-dir", str(work),
                           "-t", "0.7", "-o", str(out))  # fmt: skip
        assert code == 0, err
        return pd.read_parquet(out), err

    give_flags(flags, AMX, PLAIN)  # the driver has AMX too: it alone would choose bf16
    mixed, err = mine_on_ray("mixed")
    assert err.count("chooses openvino bf16 on cpu (the CPU has AMX") == 1
    assert err.count("chooses openvino fp32 on cpu (the CPU has no AMX") == 1
    assert "encoding with openvino fp32 on cpu (the nodes chose fp32 and bf16" in err
    assert {folder.name for folder in (work / "embeddings").iterdir()} == {"fake-openvino-fp32"}
    give_flags(flags, AMX, AMX)
    bf16, err = mine_on_ray("bf16")
    assert "encoding with openvino bf16 on cpu (the CPU has AMX" in err
    assert "(280 of 280 distinct questions encoded now" in err  # the fp32 vectors are not used for bf16
    assert {folder.name for folder in (work / "embeddings").iterdir()} == {"fake-openvino-fp32", "fake-openvino-bf16"}
    pd.testing.assert_frame_equal(mixed, bf16)


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
