"""The one exception type that reaches users as a one-line message, and messages as they are printed."""

import re

_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")  # a terminal's control sequences: colours, cursor moves


class DupfindError(Exception):
    """A problem with the user's input or set-up, reported as one line with exit code 2."""


def plain(text: str) -> str:
    """Text without terminal escape sequences (the colours Ray puts in its errors' text): printed as it is
    under NO_COLOR, to a file or to a terminal."""
    return _ESCAPES.sub("", text)
