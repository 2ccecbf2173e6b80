"""What the analysis of a part of a trace needs to know of the whole trace.

A rule judging one batch of a trace read in batches (out-of-core analysis) may need facts that
later rows decide: an exception's name and priority where only later rows carry them, the last
value of a configuration register, whether a function's returns are traced at all. They are
learned in a first pass over a few columns and kept small: per exception, per distinct
(event, kind, role, symbol) combination, the few config and coverage rows, and where the trace ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from irqmon.cortexm.exceptions import SYSTEM_EXCEPTIONS, by_number
from irqmon.schema import Event
from irqmon.tracefile import pandas_column

if TYPE_CHECKING:
    from irqmon.analysis.coverage import Coverage

# The columns the first pass reads.
FACT_COLUMNS = ["seq", "time", "ipsr", "priority", "exception", "event", "kind", "role", "symbol", "address", "value", "halted"]
SIGNATURE_COLUMNS = ["event", "kind", "role", "symbol"]
COVERAGE_COLUMNS = ["seq", "time", "kind", "symbol", "value"]


@dataclass(frozen=True)
class Signature:
    """A distinct combination of what a row is, as `TraceFacts.signatures` holds them."""

    event: str | None
    kind: str | None
    role: str | None
    symbol: str | None
    has_address: bool
    in_isr: bool


@dataclass
class TraceFacts:
    """Facts of the whole trace (see the module docstring)."""

    exception_names: pd.Series  # exception number -> name, in order of appearance
    prio_by_ipsr: pd.Series  # exception number -> its first recorded priority
    irq_exceptions: frozenset[int]  # exceptions with irq_enter rows
    signatures: frozenset[Signature]
    config: pd.DataFrame  # the config rows (`symbol`, `value`), in order
    halted_rows: int  # rows with a `halted` value (0: the capture never halted the core)
    rows: int
    coverage: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COVERAGE_COLUMNS))  # the coverage rows, in order
    end_time: float = np.nan  # the trace's latest time (NaN for no rows)
    last_seq: int | None = None  # the trace's last row's seq (None for no rows)
    # The symbols of the call, return and access rows of thread mode (ipsr 0): the sites that saw it run.
    thread_symbols: frozenset[str] = frozenset()

    @cached_property
    def capture_coverage(self) -> Coverage | None:
        """The capture's coverage (None: the trace has no coverage rows), worked out once."""
        from irqmon.analysis.coverage import coverage_from  # coverage.py reads this module's columns

        return coverage_from(self.coverage, self.end_time) if len(self.coverage) else None

    def has(self, event: str, kinds: Iterable[str], isr: bool | None = None) -> bool:
        """Whether the trace has a row of `event` of one of `kinds` (in handler mode only, or
        in thread mode only, where `isr` says)."""
        wanted = set(kinds)
        return any(s.event == event and s.kind in wanted and (isr is None or s.in_isr == isr) for s in self.signatures)

    def symbols(self, event: str, kinds: Iterable[str], isr: bool | None = None) -> set[str]:
        """The symbols of the rows `has` looks for."""
        wanted = set(kinds)
        return {
            s.symbol for s in self.signatures
            if s.event == event and s.kind in wanted and s.symbol is not None and (isr is None or s.in_isr == isr)
        }  # fmt: skip

    def config_value(self, symbol: str) -> int | None:
        """The last value the trace's config rows give `symbol`."""
        values = self.config.loc[self.config["symbol"] == symbol, "value"].dropna()
        return int(values.iloc[-1]) if len(values) else None


def facts_of(batches: Iterable[pa.Table]) -> TraceFacts:
    """The facts of a trace given as its tables in order (one, or its batches)."""
    names: dict[int, str | None] = {}
    prio: dict[int, int] = {}
    irq: set[int] = set()
    signatures: set[Signature] = set()
    config: list[pd.DataFrame] = []
    halted_rows = rows = 0
    coverage: list[pd.DataFrame] = []
    end_time, last_seq = np.nan, None
    thread_symbols: set[str] = set()
    for table in batches:
        rows += table.num_rows
        ipsr = table["ipsr"]
        _first_per_exception(names, prio, table)
        events = _one_dictionary(table["event"])
        irq.update(v for v in pc.unique(ipsr.filter(_rows_of(events, Event.IRQ_ENTER))).to_pylist() if v is not None)
        signatures.update(_signatures(table))
        config_rows = table.filter(_rows_of(events, Event.CONFIG))
        if config_rows.num_rows:
            config.append(pd.DataFrame({"symbol": config_rows["symbol"].cast(pa.string()).to_pylist(), "value": config_rows["value"].to_pylist()}))
        halted_rows += int(pc.sum(pc.and_(pc.is_valid(table["halted"]), pc.invert(pc.is_nan(table["halted"])))).as_py() or 0)
        coverage_rows = table.filter(_rows_of(events, Event.COVERAGE))
        if coverage_rows.num_rows:
            coverage.append(pd.DataFrame({c: pandas_column(c, coverage_rows[c]) for c in COVERAGE_COLUMNS}))
        thread_symbols.update(_thread_symbols(table, events))
        if table.num_rows:
            end_time = float(np.nanmax([end_time, pc.max(table["time"]).as_py()]))
            last_seq = int(table["seq"][table.num_rows - 1].as_py())
    return TraceFacts(
        exception_names=pd.Series(
            [name if name is not None else SYSTEM_EXCEPTIONS.get(n, by_number(n)) for n, name in names.items()],
            index=pd.Index(list(names), dtype=np.int64), dtype="string",
        ),
        prio_by_ipsr=pd.Series(list(prio.values()), index=pd.Index(list(prio), dtype=np.int64), dtype=np.int64),
        irq_exceptions=frozenset(irq),
        signatures=frozenset(signatures),
        config=pd.concat(config, ignore_index=True) if config else pd.DataFrame({"symbol": [], "value": []}),
        halted_rows=halted_rows,
        rows=rows,
        coverage=pd.concat(coverage, ignore_index=True) if coverage else pd.DataFrame(columns=COVERAGE_COLUMNS),
        end_time=end_time,
        last_seq=last_seq,
        thread_symbols=frozenset(thread_symbols),
    )  # fmt: skip


def _first_per_exception(names: dict[int, str | None], prio: dict[int, int], table: pa.Table) -> None:
    """Per exception number not yet known, its first name (`exception`; None where none of its
    rows has one: it still counts as seen) and its first priority, from `table` (one grouping
    for both: `first` skips missing values)."""
    exception = _one_dictionary(table["exception"])
    named = pa.types.is_dictionary(exception.type)
    rows = pa.table({"ipsr": table["ipsr"], "name": exception.indices if named else exception, "priority": table["priority"]})
    firsts = rows.group_by("ipsr", use_threads=False).aggregate([("name", "first"), ("priority", "first")])
    numbers = firsts["ipsr"].to_pylist()  # in order of appearance; None: the rows without one (config rows)
    first_names = (exception.dictionary.take(firsts["name_first"]) if named else firsts["name_first"]).to_pylist()
    for number, name, priority in zip(numbers, first_names, firsts["priority_first"].to_pylist(), strict=True):
        if number is None:
            continue
        if number not in names or (names[number] is None and name is not None):
            names[number] = name
        if priority is not None and number not in prio:
            prio[number] = priority


def _one_dictionary(column: pa.ChunkedArray) -> pa.Array:
    """A column as one array; a dictionary column with one dictionary for all its rows."""
    if pa.types.is_dictionary(column.type):
        column = column.unify_dictionaries()
    return column.combine_chunks()


def _rows_of(events: pa.Array, event: Event) -> pa.Array:
    """Per row of the `event` column `events` (one array), whether it is an `event` row; compared
    on the dictionary's codes, not row by row as text."""
    encoded = events if pa.types.is_dictionary(events.type) else events.cast(pa.string()).dictionary_encode()
    code = pc.index(encoded.dictionary, event.value).as_py()  # -1: no such row, and no code is -1
    return pc.fill_null(pc.equal(encoded.indices, pa.scalar(code, encoded.indices.type)), False)


def _signatures(table: pa.Table) -> set[Signature]:
    """The distinct signatures of `table`'s rows (grouped on dictionary codes, decoded once)."""
    strings = {c: _one_dictionary(table[c]) for c in SIGNATURE_COLUMNS}
    encoded = {c: v if pa.types.is_dictionary(v.type) else v.cast(pa.string()).dictionary_encode() for c, v in strings.items()}
    columns = {c: v.indices for c, v in encoded.items()}
    columns["has_address"] = pc.is_valid(table["address"]).combine_chunks()
    columns["in_isr"] = pc.fill_null(pc.greater(table["ipsr"], 0), False).combine_chunks()
    distinct = pa.table(columns).group_by(list(columns), use_threads=False).aggregate([])
    decoded = {c: encoded[c].dictionary.take(distinct[c]).to_pylist() for c in SIGNATURE_COLUMNS}
    return {
        Signature(*(decoded[c][i] for c in SIGNATURE_COLUMNS), has_address=has_address, in_isr=in_isr)
        for i, (has_address, in_isr) in enumerate(zip(distinct["has_address"].to_pylist(), distinct["in_isr"].to_pylist(), strict=True))
    }


def _thread_symbols(table: pa.Table, events: pa.Array) -> set[str]:
    """The distinct symbols of `table`'s call, return and access rows in thread mode (`events`:
    its `event` column as one array)."""
    wanted = pc.or_(pc.or_(_rows_of(events, Event.CALL), _rows_of(events, Event.RETURN)), _rows_of(events, Event.ACCESS))
    wanted = pc.and_(wanted, pc.fill_null(pc.equal(table["ipsr"], 0), False).combine_chunks())
    symbols = table["symbol"].filter(wanted).cast(pa.string())
    return {s for s in pc.unique(symbols).to_pylist() if s is not None}
