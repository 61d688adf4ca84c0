"""What both trainers share: the training arguments of a schedule with checkpoint selection, running
sentence-transformers' trainer quietly, and writing the model through a temporary directory that replaces the old
one whole."""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, Protocol

from dupfind.errors import DupfindError
from dupfind.io.atomic import replacing_folder
from dupfind.quality.training.weights import store_fp16

Log = Callable[[str], None]


class Schedule(Protocol):
    """The parts of a recipe that say how long and how fast to train, and how often to evaluate."""

    @property
    def epochs(self) -> float: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def learning_rate(self) -> float: ...

    @property
    def warmup_ratio(self) -> float: ...

    @property
    def seed(self) -> int: ...

    @property
    def selection_evals(self) -> int: ...


TRAINING_PRECISIONS = ("auto", "fp32", "bf16")


def training_arguments(
    schedule: Schedule,
    checkpoints: Path,
    steps: int,
    metric: str,
    progress: bool,
    selecting: bool = True,
    precision: str = "auto",
) -> dict[str, Any]:
    """The training arguments of `schedule` over `steps` steps: `selection_evals` held-out evaluations, each
    saving a checkpoint in `checkpoints`, and the best by `metric` kept at the end (none without `selecting`);
    a log line every 5 % of the steps; torch's bf16 autocast as `precision` says (`bf16_autocast`)."""
    every = max(1, steps // schedule.selection_evals) if selecting else steps
    bf16, cuda = bf16_autocast(precision)
    return {
        "bf16": bf16,
        "use_cpu": not cuda,
        "dataloader_pin_memory": cuda,
        "output_dir": str(checkpoints),
        "num_train_epochs": schedule.epochs,
        "per_device_train_batch_size": schedule.batch_size,
        "learning_rate": schedule.learning_rate,
        "warmup_steps": math.ceil(schedule.warmup_ratio * steps),
        "seed": schedule.seed,
        "data_seed": schedule.seed,
        "eval_strategy": "steps" if selecting else "no",
        "save_strategy": "steps" if selecting else "no",
        "eval_steps": every,
        "save_steps": every,
        "save_only_model": True,
        "save_total_limit": 2,
        "load_best_model_at_end": selecting,
        "metric_for_best_model": metric,
        "greater_is_better": True,
        "logging_steps": max(1, steps // 20),
        "report_to": "none",
        "disable_tqdm": not progress,
    }


def bf16_autocast(precision: str) -> tuple[bool, bool]:
    """Whether to train in torch's bf16 autocast (`bf16`; `fp32`: never; `auto`: where
    `dupfind.vectors.precision.training_precision` says so for this machine), and whether on a CUDA device."""
    import torch

    from dupfind.vectors.precision import cpu_features, training_precision

    cuda = torch.cuda.is_available()
    if precision not in TRAINING_PRECISIONS:
        raise DupfindError(f"unknown training precision '{precision}' (choose from {', '.join(TRAINING_PRECISIONS)})")
    if precision != "auto":
        return precision == "bf16", cuda
    return training_precision(cpu_features(), cuda, cuda and torch.cuda.is_bf16_supported()) == "bf16", cuda


def fit(trainer: Any, progress: bool) -> None:
    """Run a sentence-transformers trainer, its logs on stderr (stdout carries only data) and none without
    `progress`; its checkpoints are removed after."""
    if not progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    with redirect_stdout(sys.stderr):
        trainer.train()
    shutil.rmtree(trainer.args.output_dir, ignore_errors=True)


def prepare_output(output: Path, force: bool) -> None:
    """Check, before training, that the model can be written to the directory `output`."""
    if output.exists() and not output.is_dir():
        raise DupfindError(f"'{output}' exists and is not a directory")
    if output.is_dir() and any(output.iterdir()) and not force:
        raise DupfindError(f"'{output}' exists and is not empty (use --force to replace it)")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryDirectory(dir=output.parent).cleanup()  # made and removed now, not found unwritable after
    except OSError as exc:
        raise DupfindError(f"{output}: cannot write there ({exc.strerror or exc})") from exc


@contextmanager
def model_directory(output: Path, force: bool, fp16: bool) -> Iterator[Path]:
    """A new directory to write a model into; once the block is done the weights are stored in float16 with `fp16`
    (`weights.store_fp16`) and it replaces `output` whole (`dupfind.io.atomic.replacing_folder`: the old model or
    the new one, never neither); if the block fails it is removed."""
    prepare_output(output, force)
    with replacing_folder(output) as folder:
        yield folder
        if fp16:
            store_fp16(folder)
