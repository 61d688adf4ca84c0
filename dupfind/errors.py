"""The one exception type that reaches users as a one-line message."""


class DupfindError(Exception):
    """A problem with the user's input or set-up, reported as one line with exit code 2."""
