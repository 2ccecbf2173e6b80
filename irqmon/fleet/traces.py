"""Which files a fleet run analyses: the traces named, and every trace under the folders named."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from irqmon.errors import UsageError

TRACE_SUFFIXES = (".csv", ".parquet")


def trace_files(paths: Sequence[Path]) -> list[Path]:
    """The files of `paths` in order: a file as given (a missing one fails as its trace), a folder
    as every `*.csv` and `*.parquet` file under it, recursively, sorted. Each file once."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.suffix.lower() in TRACE_SUFFIXES and p.is_file())
            if not inside:
                raise UsageError(f"{path}: no *.csv or *.parquet trace in this folder")
            found.update(dict.fromkeys(inside))
        else:  # a file, or what its analysis will report as missing
            found[path] = None
    return list(found)
