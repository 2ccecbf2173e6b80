"""Trace files: the readers (CSV and Parquet, checked against the schema) and converters.

The streaming writer used while capturing is `irqmon.tracewriter`, which needs no pandas."""

from __future__ import annotations

import contextlib
import csv
import itertools
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from irqmon import schema
from irqmon.schema import PARQUET_META_PREFIX
from irqmon.errors import UsageError


# ---------------------------------------------------------------------------------------------
# Readers

PARQUET_MAGIC = b"PAR1"
_ARROW_TYPES = {"int64": pa.int64(), "Int64": pa.int64(), "float64": pa.float64(), "string": pa.string()}
# The schema's string columns are held dictionary-encoded: a few distinct values repeated (events,
# kinds, symbols, call paths) take four bytes a row instead of a copy of the text.
STRING_CODES = pa.dictionary(pa.int32(), pa.string())
_STRING_COLUMNS = [name for name, dtype in schema.COLUMNS.items() if dtype == "string"]
_NOT_NULL = ("seq", "time", "event")
CHECKED_COLUMNS = [*_NOT_NULL, "halted", "ipsr"]  # the columns row checks read besides the integer ranges
# `read_batches`: rows a batch holds unless asked otherwise, and the bytes of a CSV read at a time
# (whole lines; at least Arrow's block, for its threads to share; at most the top).
BATCH_ROWS = 1 << 20
CSV_BLOCK_BYTES = (1 << 20, 64 << 20)
UTF8_BOM = b"\xef\xbb\xbf"
# Seconds since the capture started: finite, and within any capture's reach (a renderer given
# 1e308 or inf has no axis to draw).
TIME_LIMIT = 1e9
HALTED_ROUNDING = 1e-6  # `halted` and `time` are each written to the microsecond
# Integer columns with a meaning narrower than int64; a value outside is not a real event.
WORD = (0, 2**32 - 1)
INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "priority": (0, 255), "basepri": (0, 255), "primask": (0, 1), "faultmask": (0, 1), "control": (0, 15),
    "pc": WORD, "lr": WORD, "sp": WORD, "address": WORD, "size": WORD, "cycles": (0, 2**63 - 1),
    "halts": (0, 2**63 - 1),
}  # fmt: skip


class PartialRowWarning(UserWarning):
    """The trace ends in a row cut off part-way (a capture killed mid-write); it was dropped."""


class Trace:
    """A loaded trace: one row per event with the schema's dtypes, and the capture's metadata.

    A trace read from a file keeps its checked Arrow table (`table`) and builds the DataFrame
    (`frame`) on first use, so the analysis can take only the rows and columns it needs."""

    def __init__(self, rows: pd.DataFrame | pa.Table, metadata: dict[str, str], path: Path) -> None:
        self._frame = rows if isinstance(rows, pd.DataFrame) else None
        self._table = rows if isinstance(rows, pa.Table) else None
        self._rows = len(rows) if isinstance(rows, pd.DataFrame) else rows.num_rows
        self.metadata = metadata
        self.path = path

    @property
    def frame(self) -> pd.DataFrame:
        """One row per event with the schema's dtypes (string columns as `string[pyarrow]`)."""
        self._check_held()
        if self._frame is None:
            tables = [self._table]
            self._table = None  # the frame replaces the table: _to_pandas frees it column by column
            self._frame = _to_pandas(tables)
        return self._frame

    @property
    def table(self) -> pa.Table:
        """The rows as an Arrow table (from the frame if the trace was made from one)."""
        self._check_held()
        if self._table is not None:
            return self._table
        return pa.Table.from_pandas(self._frame, preserve_index=False)

    @property
    def rows(self) -> int:
        return self._rows

    @classmethod
    def read_in_batches(cls, path: Path, metadata: dict[str, str], rows: int) -> Trace:
        """A trace whose rows were read in batches and not kept: its path, metadata and row count."""
        trace = cls(pa.table({}), metadata, path)
        trace._table, trace._rows = None, rows
        return trace

    def take_table(self) -> pa.Table:
        """The rows as an Arrow table, handed over: the trace keeps its path, metadata and row
        count but lets go of its rows, so their memory goes with the new owner."""
        table = self.table
        self._frame = self._table = None
        return table

    def _check_held(self) -> None:
        if self._frame is None and self._table is None:
            raise RuntimeError(f"{self.path}: the trace's rows were handed over (Trace.take_table)")


def load_trace(path: Path | str) -> Trace:
    """Read and check a CSV or Parquet trace; any problem is one `UsageError` line."""
    path = Path(path)
    parquet = _is_parquet(path)
    table, metadata = _read_parquet(path) if parquet else _read_csv(path)
    _check_metadata(path, metadata)
    table = with_optional_columns(table)
    _check_rows(path, table, first_line=None if parquet else _first_data_line(path))
    pa.default_memory_pool().release_unused()  # the reader's scratch memory, else kept by Arrow's pool
    return Trace(table, metadata, path)


def read_batches(path: Path | str, rows: int = BATCH_ROWS, columns: list[str] | None = None) -> TraceBatches:
    """Open and check a CSV or Parquet trace for reading in batches of at most `rows` rows (only
    `columns` of it, and the columns the row checks read, where given: the rest is neither read
    nor checked); problems found before any row is read (unreadable, empty, not a trace, bad
    header, missing columns, bad metadata) are one `UsageError` line here."""
    wanted = None if columns is None else [*dict.fromkeys([*CHECKED_COLUMNS, *columns])]
    path = Path(path)
    if rows < 1:
        raise ValueError(f"batches of {rows} rows")
    if _is_parquet(path):
        parquet, metadata = _open_parquet(path)
        with parquet:
            _held_columns(path, parquet.schema_arrow.empty_table())  # a column of the wrong type
        _check_metadata(path, metadata)
        return TraceBatches(path, metadata, rows, partial(_parquet_tables, path, rows, wanted), first_line=None)
    layout = _csv_layout(path)
    with pa.OSFile(str(path)) as file:
        end = _whole_lines_end(path, file)
    _check_metadata(path, layout.metadata)
    tables = partial(_csv_tables, path, layout, end, _csv_block_size(path, rows), wanted)
    return TraceBatches(path, layout.metadata, rows, tables, first_line=layout.skip + 2)


class TraceBatches:
    """A checked trace file whose rows are read, batch by batch, on each iteration (`read_batches`)."""

    def __init__(
        self, path: Path, metadata: dict[str, str], rows: int, tables: Callable[[], Iterator[pa.Table]], first_line: int | None
    ) -> None:
        self.path = path
        self.metadata = metadata
        self._rows = rows
        self._tables = tables  # the file's rows as Arrow reads them, in held types, the first table empty
        self._first_line = first_line  # of the rows in a CSV; None for Parquet (rows are counted)

    def __iter__(self) -> Iterator[pa.Table]:
        """The rows in file order, as tables of at most `rows` rows (the last may be shorter), each
        exactly as `load_trace(path).table` would hold those rows: the schema's dtypes, string
        columns dictionary-encoded (`STRING_CODES`; each batch may have its own dictionary), the
        optional columns present (added empty where the file lacks them), extra columns kept.
        Each batch is checked as load_trace checks the whole table, and a problem raises the same
        one-line UsageError load_trace would give, with the right line number (CSV) / row number
        (Parquet) counted over the whole file, not the batch. `seq` must increase across batch
        edges too. A cut-off last line warns PartialRowWarning once and is dropped, as today.
        A trace without rows is one empty table, so its columns are seen."""
        return self._checked(_in_batches(self._tables(), self._rows))

    @property
    def parsed(self) -> bool:
        """Whether the rows are parsed from text (a CSV): reading them again costs a parse."""
        return self._first_line is not None

    def as_read(self) -> Iterator[pa.Table]:
        """The same rows, checked alike, in the tables the reader gives: not cut again into
        batches of `rows` with each column in one chunk (a CSV's are ranges of its bytes, their
        columns in many chunks with a dictionary each). For readers that take any table, at less
        cost than joining chunks."""
        return self._checked(_as_read(self._tables()))

    def _checked(self, batches: Iterator[pa.Table]) -> Iterator[pa.Table]:
        done, last_seq = 0, None
        for batch in batches:
            batch = with_optional_columns(batch)
            _check_rows(self.path, batch, self._first_line, first_row=done, previous_seq=last_seq)
            if batch.num_rows:
                done += batch.num_rows
                last_seq = batch["seq"][batch.num_rows - 1].as_py()
            yield batch


class KeptRows:
    """Some columns of a trace's rows, written to a file while a first pass reads them, read
    back in batches by the next pass: for a CSV, whose second parse would cost far more than
    reading this file (an LZ4-compressed Arrow stream, about 16 bytes a row)."""

    def __init__(self, path: Path, columns: list[str], rows: int) -> None:
        self.path = path
        self._columns = columns
        self._rows = rows

    def writing(self, tables: Iterable[pa.Table]) -> Iterator[pa.Table]:
        """`tables` as they come, each one's columns written to the file on the way (a file that
        cannot be written, such as on a full disk, is one UsageError line)."""
        options = pa.ipc.IpcWriteOptions(compression="lz4")
        with self._writes():
            sink = pa.OSFile(str(self.path), "wb")
        with sink:
            writer = None
            for table in tables:
                # Each column in one chunk (one dictionary): a CSV's ranges come in many small
                # chunks, which compress and read back several times slower than one.
                kept = table.select([c for c in table.column_names if c in self._columns]).combine_chunks()
                with self._writes():
                    writer = writer or pa.ipc.new_stream(sink, kept.schema, options=options)
                    writer.write_table(kept)  # each table's own dictionaries: a stream may replace them
                yield table
            if writer is not None:
                with self._writes():
                    writer.close()

    @contextlib.contextmanager
    def _writes(self) -> Iterator[None]:
        """An error writing the file (a full disk) as one UsageError line."""
        try:
            yield
        except OSError as exc:
            raise UsageError(f"{self.path}: cannot keep the trace's rows for the second pass: {exc.strerror or exc} (TMPDIR names the folder)") from None

    def __iter__(self) -> Iterator[pa.Table]:
        """The rows written, as `TraceBatches` gives them: tables of `rows` rows (the last may
        be shorter), each column in one chunk; one empty table if there are none."""
        with pa.OSFile(str(self.path)) as source:
            reader = pa.ipc.open_stream(source)
            tables = (pa.Table.from_batches([batch]) for batch in reader)
            yield from _in_batches(itertools.chain([reader.schema.empty_table()], tables), self._rows)


@contextlib.contextmanager
def scratch_folder() -> Iterator[Path]:
    """A new folder under $TMPDIR, removed with what it holds on leaving (also on an error or
    Ctrl-C); none to be made is one UsageError line."""
    try:
        folder = tempfile.TemporaryDirectory(prefix="irqmon-rows-")
    except OSError as exc:
        raise UsageError(f"no temporary folder to keep the trace's rows in: {exc.strerror or exc} (TMPDIR names the folder)") from None
    with folder as name:
        yield Path(name)


def _as_read(tables: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The tables after the first (empty) one of `tables`; if there are none, that one."""
    empty = next(tables)
    first = next(tables, None)
    yield empty if first is None else first
    yield from tables


def _in_batches(tables: Iterator[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The rows of `tables` again, as tables of `rows` rows (the last may be shorter), each column
    in one chunk (combined here, in the reading thread, not by each reader of the batch); if there
    are none, one empty table (the first of `tables`, which gives the columns)."""
    # No local names a table while a batch is out: once its reader lets go of a column, the
    # column's memory is freed, not kept until the next batch is read.
    pending: list[pa.Table] = []
    count = 0
    yielded = False
    empty = next(tables)
    for table in tables:
        while table is not None and table.num_rows:
            pending.append(table.slice(0, rows - count))
            count += pending[-1].num_rows
            table = table.slice(pending[-1].num_rows) if pending[-1].num_rows < table.num_rows else None
            if count == rows:
                yield _joined(pending)
                count, yielded = 0, True
    if count or not yielded:
        yield _joined(pending or [empty])


def _joined(tables: list[pa.Table]) -> pa.Table:
    """`tables` as one table, each column in one chunk; the list is emptied."""
    joined = pa.concat_tables(tables).combine_chunks()
    tables.clear()
    return joined


def use_system_memory_pool() -> None:
    """Arrow allocates from the C allocator from now on."""
    # The C allocator, trimmed as the analysis frees the trace's columns, lets NumPy and pandas
    # reuse what Arrow frees: peak RSS at 10M rows 3.4 -> 3.0 GiB against mimalloc, no slower.
    pa.set_memory_pool(pa.system_memory_pool())


def with_optional_columns(table: pa.Table) -> pa.Table:
    """`table` with the schema's optional columns it lacks added, empty, in schema order."""
    for name in schema.OPTIONAL_COLUMNS:
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, _ARROW_TYPES[schema.COLUMNS[name]]))
    return table


def write_parquet(trace: Trace, path: Path | str) -> None:
    """Write `trace` as Parquet, metadata kept under `irqmon.<key>` in the schema metadata."""
    _write_parquet([trace.frame], trace.metadata, path)


def write_csv(trace: Trace, path: Path | str) -> None:
    """Write `trace` in the capture's CSV format (metadata lines, header, one row per event)."""
    _write_csv([trace.frame], trace.metadata, path)


def convert(source: Path | str, target: Path | str, rows: int = BATCH_ROWS) -> None:
    """Write the trace at `source` to `target`, Parquet or CSV by its extension, `rows` rows at a
    time: what `write_parquet`/`write_csv` write of `load_trace(source)`, in bounded memory."""
    batches = read_batches(source, rows)
    frames = (Trace(batch, batches.metadata, batches.path).frame for batch in batches)
    try:
        (_write_parquet if Path(target).suffix.lower() == ".parquet" else _write_csv)(frames, batches.metadata, target)
    except BaseException:  # a bad row far into the source: no half-written target left behind
        Path(target).unlink(missing_ok=True)
        raise


def _write_parquet(frames: Iterable[pd.DataFrame], metadata: dict[str, str], path: Path | str) -> None:
    writer: pq.ParquetWriter | None = None
    try:
        for frame in frames:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                kept = {f"{PARQUET_META_PREFIX}{k}".encode(): str(v).encode() for k, v in metadata.items()}
                kept.setdefault(f"{PARQUET_META_PREFIX}{schema.META_SCHEMA}".encode(), str(schema.SCHEMA_VERSION).encode())
                writer = pq.ParquetWriter(path, table.schema.with_metadata({**(table.schema.metadata or {}), **kept}))
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


def _write_csv(frames: Iterable[pd.DataFrame], metadata: dict[str, str], path: Path | str) -> None:
    with open(path, "w", newline="", encoding="utf-8") as file:
        file.write(f"# {schema.MAGIC}\n")
        file.write(f"# {schema.META_SCHEMA}: {metadata.get(schema.META_SCHEMA, schema.SCHEMA_VERSION)}\n")
        for key, value in metadata.items():
            if key != schema.META_SCHEMA:
                file.write(f"# {key}: {value}\n")
        for number, frame in enumerate(frames):
            frame.to_csv(file, index=False, header=number == 0, float_format="%.6f", lineterminator="\n")


def proven_in_range(path: Path | str, columns: Iterable[str]) -> set[str]:
    """Those of the integer `columns` whose every value the Parquet file's row-group statistics
    (each group's minimum and maximum) put within `INTEGER_RANGES`: the row checks need not read
    them. Empty for a CSV; a column is left out where a row group has no statistics for it."""
    path = Path(path)
    if not _is_parquet(path):
        return set()
    try:
        with pq.ParquetFile(path) as parquet:
            metadata = parquet.metadata
    except (pa.ArrowException, OSError):
        return set()
    positions = {metadata.schema.column(i).path: i for i in range(metadata.num_columns)}
    proven = set()
    for name in columns:
        if name not in positions or name not in INTEGER_RANGES:
            continue
        low, high = INTEGER_RANGES[name]
        groups = (metadata.row_group(g).column(positions[name]).statistics for g in range(metadata.num_row_groups))
        if all(_within(stats, low, high) for stats in groups):
            proven.add(name)
    return proven


def _within(stats: pq.Statistics | None, low: int, high: int) -> bool:
    if stats is None or stats.physical_type != "INT64":
        return False
    if stats.num_values == 0:  # every value null
        return True
    return stats.has_min_max and low <= stats.min and stats.max <= high


def _is_parquet(path: Path) -> bool:
    """Whether the file starts as Parquet does (else it is read as CSV); unreadable or empty is a UsageError."""
    try:
        with open(path, "rb") as file:
            head = file.read(4)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not head:
        raise UsageError(f"{path}: empty file, not a trace")
    return head == PARQUET_MAGIC


def _read_metadata_lines(path: Path) -> tuple[dict[str, str], int, bytes]:
    """The leading `# key: value` lines, how many there are, and the header line after them."""
    metadata: dict[str, str] = {}
    count = 0
    with open(path, "rb") as file:
        for raw in file:
            if count == 0 and raw.startswith(UTF8_BOM):  # saved by an editor that marks UTF-8
                raw = raw[len(UTF8_BOM) :]
            if not raw.startswith(b"#"):
                return metadata, count, raw
            count += 1
            text = _decode(path, raw, count).lstrip("#").strip()
            key, sep, value = text.partition(":")
            if sep:
                metadata[key.strip()] = value.strip()
    return metadata, count, b""


def _first_data_line(path: Path) -> int:
    return _read_metadata_lines(path)[1] + 2


def _decode(path: Path, raw: bytes, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}:{line}: not UTF-8 (byte {exc.start + 1} of the line)") from None


class _CsvLayout(NamedTuple):
    metadata: dict[str, str]
    skip: int  # metadata lines before the header
    header: list[str]
    types: dict[str, pa.DataType]  # each column's type as read


def _read_csv(path: Path) -> tuple[pa.Table, dict[str, str]]:
    layout = _csv_layout(path)
    try:
        table = pacsv.read_csv(_whole_lines(path), **_csv_options(layout))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise UsageError(_diagnose_csv(path, layout.skip, layout.header, str(exc))) from None
    return table, layout.metadata


def _csv_tables(path: Path, layout: _CsvLayout, end: int | None, block_size: int, columns: list[str] | None) -> Iterator[pa.Table]:
    """The CSV's rows about `block_size` bytes at a time (an empty table first), each range of
    whole lines read by Arrow's multithreaded reader; the whole lines only, up to `end` if the
    last is cut off; only `columns` (those the file has) where given."""
    names = layout.header if columns is None else [c for c in layout.header if c in columns]
    yield pa.schema([(name, layout.types[name]) for name in names]).empty_table()
    options = _csv_options(layout)
    options["read_options"] = pacsv.ReadOptions(column_names=layout.header, use_threads=True)
    options["convert_options"].include_columns = names
    with pa.OSFile(str(path)) as data:  # not mapped: the file's pages would count as the process's memory
        stop = data.size() if end is None else end
        start = _rows_start(data, layout.skip)
        while start < stop:
            next_start = _line_end_after(data, min(start + block_size, stop), stop)
            data.seek(start)
            try:
                table = pacsv.read_csv(pa.BufferReader(data.read_buffer(next_start - start)), **options)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise UsageError(_diagnose_csv(path, layout.skip, layout.header, str(exc))) from None
            start = next_start
            yield table


def _rows_start(data: pa.NativeFile, skip: int) -> int:
    """Where the first row begins: after the `skip` metadata lines and the header."""
    position = 0
    for _ in range(skip + 1):
        position = _line_end_after(data, position, data.size())
    return position


def _line_end_after(data: pa.NativeFile, position: int, stop: int) -> int:
    """Where the line that holds byte `position` ends (just after its newline), at most `stop`."""
    while position < stop:
        chunk = data.read_at(min(1 << 16, stop - position), position)
        newline = chunk.find(b"\n")
        if newline >= 0:
            return position + newline + 1
        position += len(chunk)
    return stop


def _csv_block_size(path: Path, rows: int) -> int:
    """Bytes of the file that hold about `rows` rows, judged from its start, within CSV_BLOCK_BYTES."""
    with open(path, "rb") as file:
        start = file.read(1 << 20)
    row_bytes = len(start) / max(start.count(b"\n"), 1)
    low, high = CSV_BLOCK_BYTES
    return int(min(max(rows * row_bytes, low), high))


def _csv_options(layout: _CsvLayout) -> dict[str, Any]:
    """How Arrow reads a CSV trace of `layout`."""
    return {
        "read_options": pacsv.ReadOptions(skip_rows=layout.skip, use_threads=True),
        "parse_options": pacsv.ParseOptions(newlines_in_values=False),
        "convert_options": pacsv.ConvertOptions(
            column_types=layout.types, null_values=[""], strings_can_be_null=True, check_utf8=True
        ),
    }


def _csv_layout(path: Path) -> _CsvLayout:
    """The metadata lines and the header, checked (required columns present, none twice)."""
    metadata, skip, header_raw = _read_metadata_lines(path)
    header_line = skip + 1
    header_text = _decode(path, header_raw, header_line).strip("\r\n")
    if not header_text.strip():
        raise UsageError(f"{path}: no header row after the metadata lines (empty or truncated file)")
    header = _cells(path, header_text, header_line)
    missing = [c for c in schema.REQUIRED_COLUMNS if c not in header]
    if missing:
        raise UsageError(f"{path}:{header_line}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise UsageError(f"{path}:{header_line}: column {duplicated[0]} appears twice")
    types = {c: _held_type(_ARROW_TYPES[schema.COLUMNS[c]]) if c in schema.COLUMNS else pa.string() for c in header}
    return _CsvLayout(metadata, skip, header, types)


def _whole_lines(path: Path) -> pa.NativeFile:
    """The file, mapped, up to its last newline (`_whole_lines_end`)."""
    data = pa.memory_map(str(path))
    end = _whole_lines_end(path, data)
    return data if end is None else pa.BufferReader(data.read_at(end, 0))


def _whole_lines_end(path: Path, data: pa.NativeFile) -> int | None:
    """Where the file's last newline ends it, if a line follows: a last line without one is a
    row cut off part-way by a capture that was killed mid-write (or a disk that filled), dropped
    with a warning. None if the file ends whole."""
    size = data.size()
    if size == 0 or data.read_at(1, size - 1) == b"\n":
        return None
    tail = data.read_at(min(size, 1 << 20), max(size - (1 << 20), 0))
    cut = tail.rfind(b"\n")
    if cut < 0:
        return None  # one long line: let the reader say what is wrong with it
    warnings.warn(PartialRowWarning(f"{path}: the last line is cut off part-way (a capture killed mid-write?): dropped"), stacklevel=4)
    return size - len(tail) + cut + 1


def _held_type(arrow_type: pa.DataType) -> pa.DataType:
    """How a schema column of `arrow_type` is held in a loaded table."""
    return STRING_CODES if arrow_type == pa.string() else arrow_type


def _diagnose_csv(path: Path, skip: int, header: list[str], arrow_message: str) -> str:
    """Find the line and column Arrow refused (the slow path, only taken for a bad file)."""
    for number, raw, last in _data_lines(path, skip):
        if not raw.strip(b"\r"):
            continue
        text = _decode(path, raw, number).rstrip("\r")
        cells = _cells(path, text, number)
        if len(cells) != len(header):
            hint = " (truncated file?)" if last else ""
            return f"{path}:{number}: {len(cells)} fields, the header has {len(header)}{hint}"
        for column, cell in zip(header, cells):
            problem = _cell_problem(schema.COLUMNS.get(column, "string"), cell)
            if problem:
                return f"{path}:{number}: column {column}: {problem}"
    return f"{path}: not a readable trace CSV ({arrow_message.splitlines()[0]})"


def _data_lines(path: Path, skip: int) -> Iterator[tuple[int, bytes, bool]]:
    """Each line after the `skip` metadata lines and the header, one at a time: its number, its
    bytes without the newline, and whether it is the file's last line."""
    with open(path, "rb") as file:
        for _ in range(skip + 1):
            file.readline()
        number, raw = skip + 2, file.readline()
        while raw:
            following = file.readline()
            yield number, raw.removesuffix(b"\n"), not following
            number, raw = number + 1, following


def _cells(path: Path, text: str, line: int) -> list[str]:
    try:
        return next(csv.reader([text]), [])
    except csv.Error as exc:
        raise UsageError(f"{path}:{line}: not a CSV row ({exc})") from None


def _cell_problem(dtype: str, cell: str) -> str | None:
    if cell == "" or dtype == "string":
        return None
    try:
        int(cell) if dtype in ("int64", "Int64") else float(cell)
    except ValueError:
        kind = "an integer" if dtype in ("int64", "Int64") else "a number"
        return f"{cell[:40]!r} is not {kind}"
    return None


def _read_parquet(path: Path) -> tuple[pa.Table, dict[str, str]]:
    parquet, metadata = _open_parquet(path)
    with parquet:
        try:
            table = parquet.read(use_threads=True)
        except (pa.ArrowException, OSError) as exc:
            raise _unreadable_parquet(path, exc) from None
    return _held_columns(path, table), metadata


def _parquet_tables(path: Path, rows: int, columns: list[str] | None) -> Iterator[pa.Table]:
    """The Parquet file's rows in held types, `rows` at most at a time (an empty table first);
    only `columns` (those the file has) where given."""
    parquet, _ = _open_parquet(path)
    with parquet:
        names = None if columns is None else [c for c in columns if c in parquet.schema_arrow.names]
        empty = parquet.schema_arrow.empty_table()
        yield _held_columns(path, empty if names is None else empty.select(names))
        # One reader per row group: a single reader over the whole file keeps about 12 MB more
        # Arrow memory per million rows it has read (pyarrow 26), so a 100M-row trace grew past 2 GiB.
        for group in range(parquet.num_row_groups):
            batches = parquet.iter_batches(batch_size=rows, row_groups=[group], columns=names, use_threads=True)
            while True:
                try:
                    batch = next(batches)
                except StopIteration:
                    break
                except (pa.ArrowException, OSError) as exc:
                    raise _unreadable_parquet(path, exc) from None
                yield _held_columns(path, pa.Table.from_batches([batch]))


def _open_parquet(path: Path) -> tuple[pq.ParquetFile, dict[str, str]]:
    """The file opened to read, the schema's string columns dictionary-encoded, and the trace's
    metadata (`irqmon.<key>` in the schema metadata); a file that is no trace is a UsageError."""
    try:
        with pq.ParquetFile(path) as footer:
            metadata = _parquet_metadata(path, footer.schema_arrow)
            strings = [name for name in _STRING_COLUMNS if name in footer.schema_arrow.names]
            return pq.ParquetFile(path, metadata=footer.metadata, read_dictionary=strings), metadata
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable_parquet(path, exc) from None


def _unreadable_parquet(path: Path, exc: Exception) -> UsageError:
    return UsageError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})")


def _parquet_metadata(path: Path, file_schema: pa.Schema) -> dict[str, str]:
    """The trace's metadata, once the file is known to be a trace with the required columns."""
    raw_meta = file_schema.metadata or {}
    metadata = {
        k.decode("utf-8", "replace")[len(PARQUET_META_PREFIX) :]: v.decode("utf-8", "replace")
        for k, v in raw_meta.items()
        if k.startswith(PARQUET_META_PREFIX.encode())
    }
    if schema.META_SCHEMA not in metadata:
        raise UsageError(f"{path}: Parquet file is not an irqmon trace (no {PARQUET_META_PREFIX}{schema.META_SCHEMA} metadata)")
    missing = [c for c in schema.REQUIRED_COLUMNS if c not in file_schema.names]
    if missing:
        raise UsageError(f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    return metadata


def _held_columns(path: Path, table: pa.Table) -> pa.Table:
    """A table read from Parquet with the schema's columns in their held types (extras as they are)."""
    columns = []
    for name in table.column_names:
        column = table.column(name)
        wanted = _ARROW_TYPES[schema.COLUMNS[name]] if name in schema.COLUMNS else column.type  # extras as they are
        held = _held_type(wanted) if name in schema.COLUMNS else wanted
        if column.type != held:
            compatible = pa.types.is_null(column.type) or (
                pa.types.is_integer(column.type) and pa.types.is_integer(wanted)
            ) or ((pa.types.is_integer(column.type) or pa.types.is_floating(column.type)) and pa.types.is_floating(wanted)) or (
                pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
            ) and pa.types.is_string(wanted) or (pa.types.is_dictionary(column.type) and pa.types.is_string(wanted))
            if not compatible:
                raise UsageError(f"{path}: column {name}: type {column.type}, expected {wanted}")
            try:
                column = column.cast(wanted)
            except pa.ArrowException as exc:
                raise UsageError(f"{path}: column {name}: {str(exc).splitlines()[0]}") from None
            if held != wanted:
                column = column.dictionary_encode()
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def to_frame(columns: Iterable[tuple[str, pa.Array | pa.ChunkedArray]]) -> pd.DataFrame:
    """Named columns of a loaded trace's table (any of them) as a DataFrame with the schema's
    dtypes, converted one at a time: from a generator, only one column at a time is in Arrow form."""
    converted: dict[str, Any] = {}
    for name, column in columns:
        converted[name] = pandas_column(name, column)
        del column
    return pd.DataFrame(converted, copy=False)


def pandas_column(name: str, column: pa.Array | pa.ChunkedArray) -> Any:
    """A column of a loaded trace's table as a frame holds it: the schema's dtype (integers
    `Int64`, or int64 for the schema's int64 columns when none is missing; strings
    `string[pyarrow]`; float64), as an array."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if isinstance(column, pa.ChunkedArray) and column.num_chunks != 1:
        column = column.combine_chunks()  # slicing rows out of many CSV blocks is several times slower
    mapped = _pandas_type(column.type)
    if mapped is not None and not pa.types.is_null(column.type):
        values = mapped.__from_arrow__(column)  # what Arrow's to_pandas does with this type mapper
    elif pa.types.is_floating(column.type):
        values = column.to_numpy(zero_copy_only=False)
    else:
        series = pa.table({name: column}).to_pandas(types_mapper=_pandas_type, self_destruct=True)[name]
        values = series.array if isinstance(series.dtype, pd.api.extensions.ExtensionDtype) else series.to_numpy()
    dtype = schema.COLUMNS.get(name)
    if dtype == "int64" and values.dtype != "int64" and not pd.isna(values).any():
        values = values.astype("int64")
    if dtype == "float64" and values.dtype != "float64":
        values = values.astype("float64")
    return values


def _to_pandas(tables: list[pa.Table]) -> pd.DataFrame:
    """The one table in `tables`, taken out of it, as a DataFrame: each Arrow column is released
    once converted, so the peak memory stays near the frame's own size."""
    table = tables.pop()

    def columns_taken_out() -> Iterator[tuple[str, pa.ChunkedArray]]:
        nonlocal table
        while table.num_columns:
            name, column = table.column_names[0], table.column(0)
            table = table.remove_column(0)
            yield name, column

    return to_frame(columns_taken_out())


def _pandas_type(arrow_type: pa.DataType) -> Any:
    if pa.types.is_integer(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) or pa.types.is_null(arrow_type):
        return pd.StringDtype("pyarrow")
    return None


def _check_metadata(path: Path, metadata: dict[str, str]) -> None:
    version = metadata.get(schema.META_SCHEMA, str(schema.SCHEMA_VERSION))
    if not (version.isascii() and version.isdigit()):
        raise UsageError(f"{path}: metadata schema {version!r} is not a version number")
    if int(version) > schema.SCHEMA_VERSION:
        raise UsageError(f"{path}: trace schema {version} is newer than this irqmon reads ({schema.SCHEMA_VERSION})")
    bits = metadata.get(schema.META_PRIORITY_BITS)
    if bits is not None and not (bits.isascii() and bits.isdigit() and 1 <= int(bits) <= 8):
        raise UsageError(f"{path}: metadata priority_bits {bits!r} is not a number of bits from 1 to 8")


def _check_rows(
    path: Path, table: pa.Table, first_line: int | None, first_row: int = 0, previous_seq: int | None = None
) -> None:
    """Vectorized row checks; the first offending row is named (CSV line, or Parquet row). The
    table may be a batch: `first_row` rows of the file and a last `seq` of `previous_seq` before it."""

    def where(position: int) -> str:
        row = first_row + position
        return f"{path}:{first_line + row}" if first_line is not None else f"{path}: row {row}"

    for column in _NOT_NULL:
        if table[column].null_count:
            raise UsageError(f"{where(_first(pc.is_null(table[column])))}: column {column} is empty")
    time = table["time"]
    bad_time = pc.invert(pc.and_(pc.is_finite(time), pc.less_equal(pc.abs(time), TIME_LIMIT)))
    if pc.any(bad_time).as_py():
        position = _first(bad_time)
        raise UsageError(f"{where(position)}: column time: {time[position].as_py()!r} is not a time in seconds (finite, within {TIME_LIMIT:g})")
    halted = table["halted"]
    within = pc.and_(pc.greater_equal(halted, 0), pc.less_equal(halted, pc.add(pc.max_element_wise(time, 0.0), HALTED_ROUNDING)))
    bad_halted = pc.fill_null(pc.invert(pc.or_(pc.is_nan(halted), pc.and_(pc.is_finite(halted), within))), False)  # NaN: none
    if pc.any(bad_halted).as_py():
        position = _first(bad_halted)
        raise UsageError(f"{where(position)}: column halted: {halted[position].as_py()!r} is not a time in seconds from 0 to the row's time")
    for column, (low, high) in INTEGER_RANGES.items():
        if column not in table.column_names or table[column].null_count == len(table):
            continue
        lowest, highest = pc.min_max(table[column]).values()
        if lowest.as_py() < low or highest.as_py() > high:
            outside = pc.or_(pc.less(table[column], low), pc.greater(table[column], high))
            position = _first(pc.fill_null(outside, False))
            raise UsageError(f"{where(position)}: column {column}: {table[column][position].as_py()} is outside {low}..{high}")
    seq = table["seq"].to_numpy()
    if previous_seq is not None and len(seq) and seq[0] <= previous_seq:
        raise UsageError(f"{where(0)}: column seq is not increasing")
    if len(seq) > 1:
        step = seq[1:] <= seq[:-1]
        if step.any():
            raise UsageError(f"{where(int(step.argmax()) + 1)}: column seq is not increasing")
    events = table["event"]
    names = pa.array([e.value for e in schema.Event])
    # Each distinct event once (the dictionaries' values); row by row only to find a bad one.
    encoded = pa.types.is_dictionary(events.type)
    if not (encoded and all(pc.all(pc.is_in(chunk.dictionary, value_set=names)).as_py() for chunk in events.chunks)):
        unknown = pc.invert(pc.is_in(events, value_set=names))
        if pc.any(unknown).as_py():
            position = _first(unknown)
            raise UsageError(f"{where(position)}: column event: unknown event {events[position].as_py()!r}")
    ipsr = table["ipsr"]
    lowest, highest = pc.min_max(ipsr).values()
    if lowest.is_valid and (lowest.as_py() < 0 or highest.as_py() > 511):
        position = _first(pc.or_(pc.less(ipsr, 0), pc.greater(ipsr, 511)))
        raise UsageError(f"{where(position)}: column ipsr: {ipsr[position].as_py()} is not an exception number")


def _first(mask: pa.ChunkedArray) -> int:
    """Position of the first true value of `mask`."""
    return pc.index(mask, True).as_py()
