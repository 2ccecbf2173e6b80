"""The streaming CSV trace writer used while capturing (kept free of pandas: the capture
starts fast and stays lean)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from irqmon import schema


def format_cell(value: Any) -> str:
    """One CSV cell: empty for missing, integers in decimal, floats with µs precision."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


class TraceWriter:
    """Writes a CSV trace row by row, flushed as it goes, so a cut-off capture stays valid.

    `metadata` becomes the leading `# key: value` lines; `schema` is always written.
    """

    def __init__(self, path: Path | str, metadata: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self._file: IO[str] = open(self.path, "w", newline="", encoding="utf-8")
        self._file.write(f"# {schema.MAGIC}\n")
        self._file.write(f"# {schema.META_SCHEMA}: {schema.SCHEMA_VERSION}\n")
        for key, value in metadata.items():
            if key != schema.META_SCHEMA:
                text = str(value).replace("\n", " ")
                self._file.write(f"# {key}: {text}\n")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow(schema.COLUMNS)
        self._file.flush()
        self.rows = 0

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one event; `seq` is assigned here, missing columns are left empty."""
        self.write_many((row,))

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append events that arrived together (an IRQ timeline chunk), flushed once."""
        for row in rows:
            cells = [format_cell(row.get(column)) for column in schema.COLUMNS]
            cells[0] = str(self.rows)
            self._csv.writerow(cells)
            self.rows += 1
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
