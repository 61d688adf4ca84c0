"""`--precision auto`: the choice from injected CPU flags (never this machine's), explicit options winning, each
precision its own fingerprint and compiled-model cache, the re-ranker at the same choice, and what -v and
`dupfind models` say."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np
import pytest

from dupfind.cli.model_options import EmbedderOptions
from dupfind.errors import DupfindError
from dupfind.vectors import backends, precision
from dupfind.vectors.backends import export, load_encoder, load_pair_scorer, resolve_choice, torch_backend
from dupfind.vectors.backends import openvino_backend as ov_backend
from dupfind.vectors.precision import (
    Choice,
    choose,
    cpu_features,
    cuda_visible,
    most_conservative,
    training_precision,
)
from tests.cli.runner import run
from tests.conftest import FakeEncoder, write_fake_reranker

AMX = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile"})
BF16_VNNI = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni"})  # e.g. AMD Zen 4
VNNI_512 = frozenset({"avx2", "avx512f", "avx512_vnni"})
VNNI_AVX = frozenset({"avx2", "avx_vnni"})
PLAIN = frozenset({"sse4_2", "avx2"})


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """This machine as the tests say: CPU flags and CUDA or not (default: AMX, no CUDA)."""
    state: dict[str, Any] = {"features": AMX, "cuda": False}
    monkeypatch.setattr(backends, "cpu_features", lambda: state["features"])
    monkeypatch.setattr(backends, "cuda_visible", lambda: state["cuda"])
    monkeypatch.delenv("DUPFIND_BACKEND", raising=False)
    return state


@pytest.mark.parametrize(
    ("features", "cuda", "expected"),
    [
        (AMX, True, ("torch", "fp32", "cuda")),
        (PLAIN, True, ("torch", "fp32", "cuda")),
        (AMX, False, ("openvino", "bf16", "cpu")),
        (BF16_VNNI, False, ("openvino", "bf16", "cpu")),
        (VNNI_512, False, ("openvino", "fp32", "cpu")),
        (VNNI_AVX, False, ("openvino", "fp32", "cpu")),
        (PLAIN, False, ("openvino", "fp32", "cpu")),
        (frozenset(), False, ("openvino", "fp32", "cpu")),
    ],
)
def test_the_choice_follows_the_cpu_flags_and_cuda(
    features: frozenset[str], cuda: bool, expected: tuple[str, str, str]
) -> None:
    choice = choose(features, cuda)
    assert (choice.backend, choice.precision, choice.device) == expected
    assert choice.reason
    assert choice.describe().startswith("torch fp16 on cuda (" if cuda else f"openvino {expected[1]} on cpu (")


def test_vnni_runs_int8_only_where_the_guard_lets_it(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "int8 fails the quality guard" in choose(VNNI_512, cuda=False).reason
    monkeypatch.setattr(precision, "INT8_ON_VNNI", True)
    for features in (VNNI_512, VNNI_AVX):
        assert choose(features, cuda=False).precision == "int8"
    assert choose(AMX, cuda=False).precision == "bf16"  # AMX first
    assert choose(BF16_VNNI, cuda=False).precision == "bf16"  # then bf16: faster than fp32 and exact enough
    assert choose(PLAIN, cuda=False).precision == "fp32"


def test_cpu_features_reads_the_flags_line(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 amx_bf16\n\nflags : other\n")
    assert cpu_features(cpuinfo) == frozenset({"fpu", "avx2", "amx_bf16"})
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd\n")  # ARM
    assert cpu_features(cpuinfo) == frozenset({"fp", "asimd"})
    assert cpu_features(tmp_path / "missing") == frozenset()


def test_hidden_cuda_devices_are_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert cuda_visible() is False


@pytest.mark.parametrize(
    ("backend", "precision_", "device", "features", "cuda", "expected"),
    [
        (None, "auto", "auto", AMX, True, ("torch", "fp32", "cuda")),
        (None, "auto", "cpu", AMX, True, ("openvino", "bf16", "cpu")),  # --device cpu: the CPU's choice
        (None, "auto", "cuda", PLAIN, True, ("torch", "fp32", "cuda")),
        ("auto", "fp32", "auto", AMX, True, ("openvino", "fp32", "cpu")),  # a precision alone: the CPU backend
        (None, "int8", "auto", PLAIN, False, ("openvino", "int8", "cpu")),
        ("openvino", "auto", "auto", AMX, True, ("openvino", "bf16", "cpu")),
        ("openvino", "auto", "auto", PLAIN, False, ("openvino", "fp32", "cpu")),
        ("onnx", "auto", "auto", AMX, False, ("onnx", "fp32", "cpu")),
        ("torch", "auto", "auto", AMX, False, ("torch", "fp32", "cpu")),
        ("torch", "auto", "auto", PLAIN, True, ("torch", "fp32", "cuda")),
        ("torch", "fp32", "cpu", AMX, True, ("torch", "fp32", "cpu")),
    ],
)
def test_options_given_win(
    backend: str | None,
    precision_: str,
    device: str,
    features: frozenset[str],
    cuda: bool,
    expected: tuple[str, str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DUPFIND_BACKEND", raising=False)
    choice = resolve_choice(backend, precision_, device, features, cuda)
    assert (choice.backend, choice.precision, choice.device) == expected


@pytest.mark.parametrize(
    ("backend", "precision_", "device", "cuda", "message"),
    [
        (None, "fp16", "auto", False, "unknown precision 'fp16'"),
        ("torch", "bf16", "auto", False, "--precision bf16 needs --backend openvino, not torch"),
        (None, "bf16", "cuda", True, "--precision bf16 needs --backend openvino, not torch"),
        ("onnx", "int8", "auto", False, "--precision int8 needs --backend openvino, not onnx"),
        (None, "auto", "cuda", False, "--device cuda, but torch sees no CUDA device"),
        ("openvino", "auto", "cuda", True, "--device cuda needs --backend torch"),
        (None, "auto", "tpu", False, "unknown device 'tpu'"),
        ("nope", "auto", "auto", False, "unknown backend 'nope' (choose from auto, "),
    ],
)
def test_impossible_options_are_one_line_errors(
    backend: str | None, precision_: str, device: str, cuda: bool, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DUPFIND_BACKEND", raising=False)
    with pytest.raises(DupfindError, match=message.replace("(", r"\(")) as raised:
        resolve_choice(backend, precision_, device, AMX, cuda)
    assert "\n" not in str(raised.value)


def test_a_registered_default_backend_runs_in_fp32(use_fake_encoder: FakeEncoder) -> None:
    choice = resolve_choice(features=AMX, cuda=True)
    assert (choice.backend, choice.precision, choice.device) == ("fake", "fp32", "cpu")
    with pytest.raises(DupfindError, match="--precision bf16 needs --backend openvino, not fake"):
        resolve_choice(precision="bf16", features=AMX, cuda=False)


def test_the_options_are_resolved_before_anything_loads(machine: dict[str, Any]) -> None:
    options = EmbedderOptions(model=None, backend=None, batch_size=8, cache=False)
    assert (options.backend, options.precision, options.device) == ("openvino", "bf16", "cpu")
    assert "AMX" in options.reason
    assert replace(options, cache=True).reason == options.reason  # a copy keeps why
    machine["features"] = PLAIN
    assert EmbedderOptions(model=None, backend=None, batch_size=8, cache=False).precision == "fp32"
    bad = EmbedderOptions(model=None, backend=None, batch_size=8, cache=False, precision="fp8")
    with pytest.raises(DupfindError, match="unknown precision 'fp8'"):  # where the command checks its model
        bad.resolve()


class Recorded:
    """Stands for a backend's class: records how it was made."""

    def __init__(self, ref: object, **options: str) -> None:
        self.ref = ref
        self.options = options


def test_encoder_and_pair_scorer_get_the_same_choice(
    machine: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("OpenVinoEncoder", "OpenVinoPairScorer"):
        monkeypatch.setattr(ov_backend, name, Recorded)
    monkeypatch.setattr(torch_backend, "TorchPairScorer", Recorded)
    model = str(write_fake_reranker(tmp_path / "model"))
    encoder: Any = load_encoder(model)
    scorer: Any = load_pair_scorer(model)
    assert encoder.options == scorer.options == {"precision": "bf16"}
    assert load_pair_scorer(model, precision="fp32").options == {"precision": "fp32"}  # type: ignore[attr-defined]
    # there is no int8 re-ranker: it scores in fp32
    assert load_pair_scorer(model, precision="int8").options == {"precision": "fp32"}  # type: ignore[attr-defined]
    machine["cuda"] = True
    assert load_pair_scorer(model).options == {"device": "cuda"}  # type: ignore[attr-defined]


def _exported(tmp_path: Path) -> export.ExportedModel:
    return export.ExportedModel(tmp_path, "abc123", 128, True, ("input_ids", "attention_mask"))


def test_each_precision_has_its_own_fingerprint(tmp_path: Path) -> None:
    fingerprints = set()
    for precision_ in ("fp32", "bf16", "int8"):
        encoder = object.__new__(ov_backend.OpenVinoEncoder)
        encoder.exported, encoder.precision = _exported(tmp_path), precision_
        fingerprints.add(encoder.fingerprint)
    assert fingerprints == {"abc123-openvino", "abc123-openvino-bf16", "abc123-openvino-int8"}


def test_the_compiled_model_cache_is_keyed_by_precision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[tuple[str, str]] = []

    class Core:
        def set_property(self, properties: dict[str, str]) -> None:
            self.cache = properties["CACHE_DIR"]

        def compile_model(self, model: Path, device: str, config: dict[str, object]) -> object:
            compiled.append((self.cache, str(config["INFERENCE_PRECISION_HINT"])))
            return SimpleNamespace()

    fake = ModuleType("openvino")
    fake.Core = Core  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "openvino", fake)
    exported = _exported(tmp_path)
    for precision_ in ("fp32", "bf16", "int8"):
        ov_backend.openvino_runner(exported, tmp_path / "model.xml", precision_)
    assert [hint for _, hint in compiled] == ["f32", "bf16", "f32"]
    folders = [Path(cache) for cache, _ in compiled]
    assert len(set(folders)) == 3 and all(folder.is_relative_to(tmp_path) for folder in folders)
    assert folders == [ov_backend.compiled_dir(exported, p) for p in ("fp32", "bf16", "int8")]


def test_verbose_says_what_encodes_and_why(use_fake_encoder: FakeEncoder) -> None:
    code, _, stderr = run("-v", "compare", "red apple pie", "red apple pie")
    assert code == 0 and "dupfind: encoding with fake fp32 on cpu (DUPFIND_BACKEND=fake at fp32)" in stderr


def test_models_says_what_auto_chooses_here(machine: dict[str, Any]) -> None:
    code, stdout, _ = run("models")
    expected = Choice("openvino", "bf16", "cpu", "the CPU has AMX (amx_bf16): bf16 on the same model").describe()
    assert code == 0 and stdout.splitlines()[-1] == f"on this machine: {expected}"


@pytest.mark.slow
def test_bf16_encodes_like_fp32_after_an_fp32_compile(real_encoder: Any) -> None:
    """The fp32 model is compiled (and its blob cached) first; bf16 then compiles the same IR with its own cache."""
    from dupfind.vectors.encoding import encode

    texts = ["How do I learn Python?", "What is the best way to learn Python?", "Why is the sky blue?"]
    bf16 = load_encoder(None, "openvino", "bf16")
    assert bf16.fingerprint == f"{real_encoder.fingerprint}-bf16"
    cosines = np.sum(encode(real_encoder, texts) * encode(bf16, texts), axis=1)
    assert cosines.min() > 0.999
    folders = {path.name for path in (real_encoder.exported.path / export.OPENVINO_COMPILED_DIR).iterdir()}
    assert {"fp32", "bf16"} <= folders


def test_a_cluster_runs_the_most_conservative_of_its_nodes_choices() -> None:
    bf16, fp32 = choose(AMX, cuda=False), choose(PLAIN, cuda=False)
    agreed = most_conservative([bf16, fp32, bf16])
    assert (agreed.backend, agreed.precision, agreed.device) == ("openvino", "fp32", "cpu")
    assert "fp32 and bf16" in agreed.reason
    int8 = Choice("openvino", "int8", "cpu", "int8")
    assert most_conservative([int8, bf16]).precision == "bf16"
    assert most_conservative([bf16, choose(BF16_VNNI, cuda=False)]) == bf16  # one precision: the first's reason
    with pytest.raises(ValueError):
        most_conservative([])


@pytest.mark.parametrize(
    ("features", "cuda", "cuda_bf16", "expected"),
    [
        (AMX, False, False, "bf16"),
        (BF16_VNNI, False, False, "fp32"),  # avx512_bf16 without AMX: bf16 autocast measured no faster
        (VNNI_512, False, False, "fp32"),
        (PLAIN, False, False, "fp32"),
        (PLAIN, True, True, "bf16"),
        (AMX, True, False, "fp32"),  # a CUDA device without bf16
    ],
)
def test_training_precision_follows_the_cpu_flags_and_cuda(
    features: frozenset[str], cuda: bool, cuda_bf16: bool, expected: str
) -> None:
    assert training_precision(features, cuda, cuda_bf16) == expected
