"""The int8 model: the exported model quantised locally, once, with NNCF post-training quantisation.

Calibration data: the 300 questions shipped in `dupfind/data/int8_calibration_questions.txt`, every 229th
row of the Quora train-questions.csv (rows 0, 229, …; 68,926 // 300 = 229) with whitespace collapsed: the
model's training distribution, never dev. Each is one calibration sample (no padding). The int8 OpenVINO IR
is built beside the fp32 export it comes from (`cache_dir()/models/<fingerprint>/openvino-int8/`), so it is
keyed by the model's content fingerprint like the export. nncf is imported only while building, in a child
process (`run_in_child`): NNCF and OpenVINO hold the main thread in native code for long stretches, where a
Ctrl-C or SIGTERM waited; the parent only waits, so a signal kills the child at once and the half-built folder
is dropped (`build_atomically`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import multiprocessing
import os
import signal
import warnings
from collections.abc import Callable
from importlib.resources import files
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from dupfind.errors import DupfindError
from dupfind.io.atomic import build_atomically
from dupfind.vectors.backends.export import (
    OPENVINO_XML,
    TOKENIZER_FILE,
    ExportedModel,
    Features,
    ensure_openvino_ir,
    load_tokenizer,
    tokenize,
)

CALIBRATION_FILE = "data/int8_calibration_questions.txt"
OPENVINO_INT8_DIR = "openvino-int8"


def calibration_questions() -> list[str]:
    """The questions whose activations set the int8 quantisation ranges."""
    return files("dupfind").joinpath(CALIBRATION_FILE).read_text(encoding="utf-8").splitlines()


def calibration_samples(exported: ExportedModel) -> list[Features]:
    """The model inputs of each calibration question, one question per sample, lower-cased if the model says so."""
    tokenizer = load_tokenizer(exported.path / TOKENIZER_FILE, exported.max_seq_length)
    texts = [text.lower() if exported.do_lower_case else text for text in calibration_questions()]
    return [tokenize(tokenizer, [text], exported.input_names) for text in texts]


def ensure_int8_openvino(exported: ExportedModel) -> Path:
    """The int8 OpenVINO IR, quantised from the fp32 IR first if it is not there yet."""
    source = ensure_openvino_ir(exported)
    target = exported.path / OPENVINO_INT8_DIR
    if not (target / OPENVINO_XML).is_file():
        if importlib.util.find_spec("nncf") is None:
            _nncf()
        warnings.warn("building the int8 model once (a minute or two)", stacklevel=2)
        build_atomically(
            target, lambda folder: run_in_child(_quantize_openvino, exported, source, folder / OPENVINO_XML)
        )
    return target / OPENVINO_XML


def run_in_child(function: Callable[..., None], *args: Any) -> None:
    """Run `function(*args)` in a spawned process and wait for it; an interrupt or SIGTERM while waiting kills it
    and is raised here, and its failure is raised as a `DupfindError` with its message."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(function, args, sender), daemon=True)
    child.start()
    sender.close()
    try:
        child.join()
    finally:
        if child.is_alive():
            child.kill()
            child.join()
    failure = receiver.recv() if receiver.poll() else f"it stopped with exit code {child.exitcode}"
    receiver.close()
    if failure is not None:
        raise DupfindError(f"cannot build the int8 model: {failure}")


def _child(function: Callable[..., None], args: tuple[Any, ...], sender: Connection) -> None:
    """The child's side: Ctrl-C reaches the whole process group, but only the parent decides; the outcome (None,
    or the first line of the error) goes back on `sender`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.simplefilter("ignore")  # the parent said what is being built
    try:
        function(*args)
    except Exception as exc:  # any failure is reported by the parent, in one line
        sender.send(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    else:
        sender.send(None)
    finally:
        sender.close()


def _nncf() -> Any:
    try:
        import nncf
    except ImportError as exc:
        raise DupfindError(
            "--precision int8 needs nncf to build the int8 model once: pip install 'dupfind[int8]'"
        ) from exc
    nncf.set_log_level(logging.ERROR)
    return nncf


def _quantize_openvino(exported: ExportedModel, source: Path, out_file: Path) -> None:
    """Quantise the fp32 IR with NNCF (transformer preset: SmoothQuant, fast bias correction)."""
    import openvino as ov

    nncf = _nncf()
    samples = calibration_samples(exported)
    # NNCF draws progress bars on stdout, which carries only data: they are dropped.
    with open(os.devnull, "w", encoding="utf-8") as devnull, contextlib.redirect_stdout(devnull):
        quantized = nncf.quantize(
            ov.Core().read_model(source),
            nncf.Dataset(samples),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(samples),
        )
    ov.save_model(quantized, out_file, compress_to_fp16=False)
