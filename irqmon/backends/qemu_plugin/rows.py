"""Trace rows made column by column: blocks of rows from one batch of records, each row with its
place in the trace, assembled into one Arrow table in trace order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as compute

from irqmon import schema
from irqmon.tracewriter import arrow_schema

ROWS_PER_RECORD = 64  # a row's place: its record's index times this, plus its rank in the record
INT_COLUMNS = frozenset(name for name, dtype in schema.COLUMNS.items() if dtype in ("int64", "Int64"))
ARROW_SCHEMA = arrow_schema()
Column = np.ndarray | Sequence[Any] | int | str | None  # per row (masked: some empty), or one value for every row


class RowBlocks:
    """The rows made from one batch so far: blocks of columns, and each row's place."""

    def __init__(self) -> None:
        self._blocks: list[tuple[np.ndarray, dict[str, Column]]] = []

    def add(self, places: np.ndarray, columns: dict[str, Column]) -> None:
        if len(places):
            self._blocks.append((np.asarray(places, np.int64), columns))

    def add_rows(self, places: Sequence[int], rows: Sequence[schema.Row]) -> None:
        """Rows made one at a time (the rare, stateful ones)."""
        if rows:
            names = {name for row in rows for name in row}
            self.add(np.array(places, np.int64), {name: [row.get(name) for row in rows] for name in names})

    def __len__(self) -> int:
        return sum(len(places) for places, _ in self._blocks)

    def table(self) -> tuple[pa.Table, np.ndarray]:
        """All rows in trace order (without `seq`), and each row's record index."""
        if not self._blocks:
            return ARROW_SCHEMA.empty_table().drop_columns(["seq"]), np.empty(0, np.int64)
        places = np.concatenate([places for places, _ in self._blocks])
        order = np.argsort(places, kind="stable")
        arrays = [self._column(field, order) for field in ARROW_SCHEMA if field.name != "seq"]
        return pa.Table.from_arrays(arrays, schema=pa.schema([f for f in ARROW_SCHEMA if f.name != "seq"])), places[order] // ROWS_PER_RECORD

    def _column(self, field: pa.Field, order: np.ndarray) -> pa.Array:
        parts = [_part(columns.get(field.name), len(places)) for places, columns in self._blocks]
        if field.name in INT_COLUMNS:
            values = np.concatenate([_ints(part) for part in parts])[order]
            valid = np.concatenate([_valid(part) for part in parts])[order]
            return pa.array(values, type=pa.int64(), mask=~valid)
        if pa.types.is_floating(field.type):
            return pa.array(np.round(np.concatenate([np.asarray(p, np.float64) for p in parts])[order], 6))
        return pa.array(np.concatenate([np.asarray(part, object) for part in parts])[order], type=pa.string())


def _part(values: Column, length: int) -> np.ndarray:
    if isinstance(values, np.ma.MaskedArray):
        return values
    if isinstance(values, np.ndarray):
        return values
    if values is None or isinstance(values, (int, str)):
        return np.full(length, values, dtype=object if not isinstance(values, int) else np.int64)
    return np.array(values, dtype=object)


def _valid(part: np.ndarray) -> np.ndarray:
    if isinstance(part, np.ma.MaskedArray):
        return ~np.ma.getmaskarray(part)
    if part.dtype != object:
        return np.ones(len(part), bool)
    return np.array([value is not None for value in part], bool)


def _ints(part: np.ndarray) -> np.ndarray:
    if isinstance(part, np.ma.MaskedArray):
        return part.filled(0).astype(np.int64, copy=False)
    if part.dtype != object:
        return part.astype(np.int64, copy=False)
    return np.array([0 if value is None else int(value) for value in part], np.int64)


def tally(table: pa.Table) -> tuple[Counter, Counter]:
    """Rows by kind (the event where a row has no kind) and by exception ('?' where none)."""
    kinds = compute.coalesce(table.column("kind"), table.column("event")).value_counts()
    exceptions = compute.fill_null(table.column("exception"), "?").value_counts()
    return (
        Counter(dict(zip(kinds.field(0).to_pylist(), kinds.field(1).to_pylist()))),
        Counter(dict(zip(exceptions.field(0).to_pylist(), exceptions.field(1).to_pylist()))),
    )
