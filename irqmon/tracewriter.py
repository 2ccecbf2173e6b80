"""The streaming CSV trace writer used while capturing (kept free of pandas: the capture
starts fast and stays lean)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from irqmon import schema
from irqmon.errors import CaptureError


def format_cell(value: Any) -> str:
    """One CSV cell: empty for missing, integers in decimal, floats with µs precision."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


class TraceWriter:
    """Writes a CSV trace in whole rows, each batch straight to the file, so a cut-off capture
    stays valid.

    A write that fails part-way (disk full, I/O error) is cut back to the last whole row and
    ends the capture (`CaptureError`): every row written before it stays readable.
    `metadata` becomes the leading `# key: value` lines; `schema` is always written.
    """

    def __init__(self, path: Path | str, metadata: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        self._size = 0  # bytes of whole lines in the file
        self.rows = 0
        head = io.StringIO()
        head.write(f"# {schema.MAGIC}\n")
        head.write(f"# {schema.META_SCHEMA}: {schema.SCHEMA_VERSION}\n")
        for key, value in metadata.items():
            if key != schema.META_SCHEMA:
                text = str(value).replace("\n", " ").replace("\r", " ")
                head.write(f"# {key}: {text}\n")
        csv.writer(head, lineterminator="\n").writerow(schema.COLUMNS)
        self._append(head.getvalue())

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one event; `seq` is assigned here, missing columns are left empty."""
        self.write_many((row,))

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append events that arrived together (an IRQ timeline chunk) in one write."""
        text = io.StringIO()
        out = csv.writer(text, lineterminator="\n")
        count = 0
        for row in rows:
            cells = [format_cell(row.get(column)) for column in schema.COLUMNS]
            cells[0] = str(self.rows + count)
            out.writerow(cells)
            count += 1
        if count:
            self._append(text.getvalue())
            self.rows += count

    def _append(self, text: str) -> None:
        if self._fd is None:
            raise CaptureError(f"{self.path}: the trace is closed")
        data = memoryview(text.encode("utf-8"))
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            os.ftruncate(self._fd, self._size)  # no half row: the file ends after the last whole one
            raise CaptureError(f"cannot write the trace {self.path}: {exc.strerror or exc} ({self.rows} events kept)") from None
        self._size += len(data)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
