"""`--precision auto`: the backend, precision and device that are fast on this machine without losing duplicates.

`choose` decides from a CPU's feature flags and whether torch sees a CUDA device, and nothing else, so it is
pure (tests inject the flags; Ray actors may call it on their own machine). `cpu_features` and `cuda_visible`
read this machine. Measured on the CPU classes in docs/benchmarks.md ("Precision chosen by `auto`").
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

AUTO = "auto"
AMX = "amx_bf16"
AVX512_BF16 = "avx512_bf16"
VNNI = frozenset({"avx512_vnni", "avx_vnni"})
# Measured on train (never dev) on a 2-core AMD EPYC with avx512_bf16 and avx512_vnni, no AMX
# (bench/bench_precision.py --split train, bench/bench_encode.py): bf16 passes the quality guard and encodes
# at 1.99x fp32, so avx512_bf16 without AMX runs bf16 too; int8 (2.50x) fails the guard at thresholds of its
# own (mining F1 -1.8 points, 92.4 % of fp32's mined pairs), so VNNI alone runs fp32.
INT8_ON_VNNI = False


@dataclass(frozen=True)
class Choice:
    """What encodes: `backend`, `precision` (a `--precision` value; torch on cuda runs it in fp16), `device`, and
    why, in words."""

    backend: str
    precision: str
    device: str
    reason: str

    def describe(self) -> str:
        """E.g. "openvino bf16 on cpu (the CPU has ...)"; torch on cuda says fp16, which it runs."""
        runs = "fp16" if self.backend == "torch" and self.device == "cuda" else self.precision
        return f"{self.backend} {runs} on {self.device} ({self.reason})"


def choose(features: frozenset[str], cuda: bool) -> Choice:
    """The fastest choice that finds the same duplicates as fp32, for a CPU with these `/proc/cpuinfo` flags and
    whether torch sees a CUDA device."""
    if cuda:
        return Choice("torch", "fp32", "cuda", "torch sees a CUDA device: fp16 on the GPU")
    if AMX in features:
        return Choice("openvino", "bf16", "cpu", f"the CPU has AMX ({AMX}): bf16 on the same model")
    if AVX512_BF16 in features:
        return Choice("openvino", "bf16", "cpu", f"the CPU has {AVX512_BF16} (no AMX): bf16 on the same model")
    vnni = ", ".join(sorted(VNNI & features))
    if vnni and INT8_ON_VNNI:
        return Choice("openvino", "int8", "cpu", f"the CPU has {vnni} and no AMX: int8")
    if vnni:
        return Choice("openvino", "fp32", "cpu", f"the CPU has {vnni} but no bf16; int8 fails the quality guard there")
    return Choice("openvino", "fp32", "cpu", "the CPU has no AMX, avx512_bf16 or VNNI")


# Measured by one short run each way, same seed (docs/benchmarks.md, "Training precision and memory"): on a CPU
# with avx512_bf16 but no AMX, bf16 autocast trained within the noise of fp32 (1.4 % less wall, 4.5 % less CPU,
# held-out AP -0.001), so only AMX (and CUDA with bf16) trains in bf16 by default.
BF16_TRAINING_WITHOUT_AMX = False


def training_precision(features: frozenset[str], cuda: bool, cuda_bf16: bool = False) -> str:
    """How `dupfind train` and `train-reranker` train by default: `bf16` (torch's bf16 autocast) on a CUDA device
    that has bf16 and on a CPU with AMX, where it is faster at the same held-out quality, else `fp32`; for a CPU
    with these `/proc/cpuinfo` flags, CUDA or not, and whether that CUDA device has bf16."""
    if cuda:
        return "bf16" if cuda_bf16 else "fp32"
    if AMX in features or (BF16_TRAINING_WITHOUT_AMX and AVX512_BF16 in features):
        return "bf16"
    return "fp32"


# Precisions, those whose vectors are nearest fp32's first: the order `most_conservative` goes by.
CONSERVATIVE = ("fp32", "bf16", "int8")


def most_conservative(choices: Iterable[Choice]) -> Choice:
    """Of the choices of a cluster's nodes (one backend, on their CPUs), the one whose vectors are nearest fp32's:
    what every encoder actor of a run uses, so that its vectors are of one precision, with one fingerprint in the
    work folder and one set of thresholds (docs/scaling.md)."""
    chosen = list(choices)
    if not chosen:
        raise ValueError("no choices to agree on")
    agreed = min(chosen, key=lambda choice: CONSERVATIVE.index(choice.precision))
    precisions = sorted({choice.precision for choice in chosen}, key=CONSERVATIVE.index)
    if len(precisions) == 1:
        return agreed
    reason = f"the nodes chose {' and '.join(precisions)}: every actor runs the most conservative"
    return Choice(agreed.backend, agreed.precision, agreed.device, reason)


def cpu_features(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The flags of this machine's first CPU in `/proc/cpuinfo` (none where there is no such file)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cuda_visible() -> bool:
    """Whether torch sees a CUDA device; torch is imported only where an NVIDIA driver is there and devices are not
    hidden (`CUDA_VISIBLE_DEVICES` empty or -1), so a CPU machine starts fast."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", "0").strip() in ("", "-1"):
        return False
    if not Path("/proc/driver/nvidia").exists() or importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())
