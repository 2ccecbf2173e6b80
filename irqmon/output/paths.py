"""Output paths checked before any work starts: a capture must not run for minutes and then
find that its trace cannot be written."""

from __future__ import annotations

import os
from pathlib import Path

from irqmon.errors import UsageError


def check_output_file(path: Path, option: str = "-o") -> None:
    """`path` can be created or overwritten as a file (its folders are made if missing)."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory, give a file name")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot write there: {exc.strerror or exc}") from None
    if not existed:
        path.unlink(missing_ok=True)


def check_output_dir(path: Path, option: str = "-o") -> None:
    """`path` is, or can be made, a folder irqmon can write files in."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path}: is a file, give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot make the folder: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: cannot write in this folder")
