"""A process's peak RSS from /proc, for the benchmarks that measure memory (a module of its own: importing it
adds nothing to the figure it gives)."""

from __future__ import annotations

import re
from pathlib import Path


def peak_rss_kb(pid: int | str = "self") -> int:
    """A process's peak RSS (VmHWM, kB); TypeError for one that has none (a zombie)."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    return int(re.search(r"VmHWM:\s+(\d+)", status)[1])  # type: ignore[index]
