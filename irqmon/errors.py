"""Errors the command line turns into one clear line and an exit status."""


class UsageError(Exception):
    """Bad input: a file, an option or a target that cannot be used (exit status 2)."""


class CaptureError(Exception):
    """The capture was cut off: the target or the debugger went away (exit status 1)."""

