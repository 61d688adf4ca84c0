"""Storing trained weights compactly: float16 safetensors, half the size, loaded back as float32."""

from __future__ import annotations

from pathlib import Path

WEIGHTS_FILE = "model.safetensors"


def store_fp16(directory: Path) -> int:
    """Rewrite the float32 tensors of `directory`'s safetensors weights (any sub-folder) in float16; returns the
    bytes saved. dupfind loads shipped models as float32, so only the stored values are rounded (~1e-3 relative)."""
    from safetensors.torch import load_file, save_file

    saved = 0
    for file in sorted(directory.rglob(WEIGHTS_FILE)):
        before = file.stat().st_size
        tensors = load_file(str(file))
        halved = {name: tensor.half() if tensor.is_floating_point() else tensor for name, tensor in tensors.items()}
        temporary = file.with_name(file.name + ".tmp")
        save_file({name: tensor.contiguous() for name, tensor in halved.items()}, str(temporary), {"format": "pt"})
        temporary.chmod(file.stat().st_mode & 0o7777)
        temporary.replace(file)
        saved += before - file.stat().st_size
    return saved
