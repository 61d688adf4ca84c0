"""Where dupfind keeps what it can rebuild: exported models and the like."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$DUPFIND_CACHE_DIR`, else `$XDG_CACHE_HOME/dupfind`, else `~/.cache/dupfind` (not created here)."""
    explicit = os.environ.get("DUPFIND_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "dupfind"
