"""The streaming CSV trace writer used while capturing (kept free of pandas: the capture
starts fast and stays lean)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from irqmon import schema
from irqmon.errors import CaptureError

if TYPE_CHECKING:
    import pyarrow as pa


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
        self._append(head.getvalue(), rows=False)

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

    def write_table(self, table: pa.Table) -> None:
        """Append rows made column by column (every column but `seq`, in the trace's order)."""
        import pyarrow as pa
        from pyarrow import csv as arrow_csv

        numbered = table.add_column(0, "seq", pa.array(range(self.rows, self.rows + table.num_rows), pa.int64()))
        text = io.BytesIO()
        arrow_csv.write_csv(numbered, text, arrow_csv.WriteOptions(include_header=False))
        self._append(text.getvalue())

    def _append(self, text: str | bytes, rows: bool = True) -> None:
        """Write whole lines (`rows`: each line a row, counted). A write that fails part-way
        keeps the lines that reached the file whole and cuts the rest."""
        if self._fd is None:
            raise CaptureError(f"{self.path}: the trace is closed")
        data = memoryview(text.encode("utf-8") if isinstance(text, str) else text)
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            whole = bytes(data[:written])
            whole = whole[: whole.rfind(b"\n") + 1]
            os.ftruncate(self._fd, self._size + len(whole))  # no half row: the file ends after the last whole one
            self.rows += whole.count(b"\n") if rows else 0
            raise CaptureError(f"cannot write the trace {self.path}: {exc.strerror or exc} ({self.rows} events kept)") from None
        self._size += len(data)
        self.rows += text.count("\n" if isinstance(text, str) else b"\n") if rows else 0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> TraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ParquetTraceWriter:
    """Writes a Parquet trace straight from the capture, a row group at a time; the metadata
    goes under `irqmon.<key>` in the schema metadata. A cut-off capture keeps what reached the
    file when it was closed (every row, unless irqmon itself is killed)."""

    ROW_GROUP = 1 << 16

    def __init__(self, path: Path | str, metadata: Mapping[str, Any]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.rows = 0
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        meta = {f"{schema.PARQUET_META_PREFIX}{key}": str(value) for key, value in metadata.items()}
        meta[f"{schema.PARQUET_META_PREFIX}{schema.META_SCHEMA}"] = str(schema.SCHEMA_VERSION)
        self._schema = arrow_schema().with_metadata(meta)
        try:
            self._file: Any = pq.ParquetWriter(self.path, self._schema)
        except (OSError, pa.ArrowException) as exc:
            raise CaptureError(f"cannot write the trace {self.path}: {exc}") from None

    def write(self, row: Mapping[str, Any]) -> None:
        self.write_many((row,))

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> None:
        import pyarrow as pa

        cells = [{name: row.get(name) for name in schema.COLUMNS if name != "seq"} for row in rows]
        if cells:
            self.write_table(pa.Table.from_pylist(cells, schema=pa.schema([f for f in self._schema if f.name != "seq"])))

    def write_table(self, table: pa.Table) -> None:
        import pyarrow as pa

        numbered = table.add_column(0, "seq", pa.array(range(self.rows, self.rows + table.num_rows), pa.int64()))
        self._pending.append(numbered.cast(self._schema))
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        if self._pending_rows >= self.ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._pending or self._file is None:
            return
        try:
            self._file.write_table(pa.concat_tables(self._pending), row_group_size=self.ROW_GROUP)
        except (OSError, pa.ArrowException) as exc:
            raise CaptureError(f"cannot write the trace {self.path}: {exc}") from None
        finally:
            self._pending, self._pending_rows = [], 0

    def close(self) -> None:
        if self._file is not None:
            self._flush()
            self._file.close()
            self._file = None

    def __enter__(self) -> ParquetTraceWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def arrow_schema() -> pa.Schema:
    """The trace's columns as Arrow types (integers as int64, `time` float64, text as strings)."""
    import pyarrow as pa

    types = {"int64": pa.int64(), "Int64": pa.int64(), "float64": pa.float64(), "string": pa.string()}
    return pa.schema([(name, types[dtype]) for name, dtype in schema.COLUMNS.items()])


def open_trace_writer(path: Path | str, metadata: Mapping[str, Any]) -> TraceWriter | ParquetTraceWriter:
    """A Parquet writer for a `.parquet` path, else the CSV writer."""
    return (ParquetTraceWriter if Path(path).suffix == ".parquet" else TraceWriter)(path, metadata)
