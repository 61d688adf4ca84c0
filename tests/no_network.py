"""Run `dupfind` with every network connection refused: `python -m tests.no_network compare a b`."""

from __future__ import annotations

import socket
from typing import NoReturn

from dupfind.cli import main


def refuse(*args: object, **kwargs: object) -> NoReturn:
    raise RuntimeError(f"dupfind tried to open a network connection: {args!r}")


if __name__ == "__main__":
    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse
    socket.getaddrinfo = refuse
    main()
