"""Columns every rule shares, computed once per analysis: activations, priorities, contexts.

Derived columns added to the rows rules see:
- `act` — the execution context a row belongs to: one id per ISR activation (from the
  `irq_enter`/`irq_exit` rows, or, on traces without them, from `ipsr` changes), one per RTOS
  task in thread mode (one for bare-metal thread mode, and for main before the scheduler
  starts: thread mode on the main stack is no task).
- `in_isr` — the row runs in handler mode (`ipsr` > 0).
- `prio` — the active exception's priority, filled from other rows of the same exception.

Exception names (`exc_name`) are looked up per exception and added only to the rows a rule
reports, as are the context labels.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from irqmon import schema
from irqmon.analysis.coverage import Coverage, coverage_of
from irqmon.analysis.facts import TraceFacts
from irqmon.cortexm.exceptions import SYSTEM_EXCEPTIONS, by_number, logical_priority
from irqmon.schema import Event
from irqmon.tracefile import pandas_column

T = TypeVar("T")

ACT = "act"
IN_ISR = "in_isr"
PRIO = "prio"
EXC_NAME = "exc_name"
NO_CONTEXT = np.iinfo(np.int64).min  # rows without ipsr (config rows)
CONTROL_SPSEL = 0x2  # CONTROL bit: thread mode uses the process stack
SEP = schema.CALLPATH_SEPARATOR
# The trace columns in the frames rules see: all but a few no rule needs (cheaper to combine,
# convert and slice; pc and lr matter only for source lines, resolved before the analysis);
# exception names come from `Context.names`, every column stays in the Trace's table.
WORKING_COLUMNS = [c for c in schema.COLUMNS if c not in ("cycles", "probe", "pc", "lr", "exception", "args")]

LABEL_COLUMNS = ["ipsr", "task", PRIO]  # what `Context.labels` reads


@dataclass
class AnalysisConfig:
    """Thresholds and options of the rules (the command line sets them)."""

    max_syscall_priority: int | None = None  # raw BASEPRI ceiling; else the trace's config row
    storm_min_entries: int = 50  # back-to-back entries before a run is a storm
    storm_share: float = 0.8  # share of a sliding window spent in the handler (thread mode starved)
    storm_rate: float | None = None  # or: entries per second over a sliding window (off by default)
    # Longest exit-to-entry gap that still counts as back to back (s). On QEMU the times are the
    # host's: a host scheduling hiccup of a few hundred microseconds must not split a storm.
    storm_gap: float = 1e-3
    storm_window: float = 0.01  # the sliding window (s)
    # A periodic tick's run is a storm only when its entry rate exceeds this many times its period's rate.
    storm_tick_margin: float = 1.5
    lock_window: float | None = None  # report a lock held longer than this (s); None: only at the end


def _arrow(strings: pd.Series) -> pa.Array:
    return pa.array(strings.astype("string[pyarrow]").array, type=pa.string()) if len(strings) else pa.array([], pa.string())


def own_paths(callpath: pd.Series) -> pd.Series:
    """Each call path cut at `<exception>`: only the running context's own frames (cut once per
    distinct path: a trace repeats a few paths)."""
    codes, paths = pd.factorize(callpath)
    own = _own_frames(_arrow(pd.Series(paths)))
    per_row = pc.take(own, pa.array(codes, mask=codes < 0))  # -1: no call path
    return pd.Series(pd.arrays.ArrowStringArray(per_row), index=callpath.index)


def _own_frames(paths: pa.Array) -> pa.Array:
    """Call paths cut at `<exception>`."""
    return pc.replace_substring_regex(paths, rf"(?:^|{SEP}){re.escape(schema.EXCEPTION_FRAME)}(?:{SEP}.*)?$", "")


def _has_frame(paths: pa.Array, name: str) -> np.ndarray:
    padded = pc.binary_join_element_wise(SEP, paths, SEP)
    return pc.match_substring(padded, f"{SEP}{name}{SEP}").to_numpy(zero_copy_only=False) == True  # noqa: E712


def _exception_names(groups: _ByException, exception: pa.Array) -> pd.Series:
    """Exception number → name: the trace's `exception` column, else the architectural name."""
    numbers = groups.numbers[groups.starts][np.argsort(groups.rows[groups.starts])].tolist()  # in order of appearance
    named = groups.first_rows(_valid(exception))
    names = exception.take(pa.array(named.rows, type=pa.int64())).to_pylist()
    name_of = dict(zip(named.numbers.tolist(), names, strict=True))
    return pd.Series(
        [name_of[n] if n in name_of else SYSTEM_EXCEPTIONS.get(n, by_number(n)) for n in numbers],
        index=pd.Index(numbers, dtype=np.int64), dtype="string",
    )  # fmt: skip


class _ByException:
    """The rows with an exception number (thread mode's 0 included) grouped by number, in order
    within each group (a stable radix sort: the numbers are small)."""

    def __init__(self, ipsr: np.ndarray, known: np.ndarray) -> None:
        every = bool(known.all())
        rows = np.flatnonzero(known) if not every else None
        numbers = ipsr if rows is None else ipsr[rows]
        low = int(numbers.min()) if len(numbers) else 0
        small = len(numbers) and -(2**15) <= low and numbers.max() < 2**15
        order = np.argsort(numbers.astype(np.int16) if small else numbers, kind="stable")
        self.rows = order if rows is None else rows[order]
        if small:  # the sorted numbers and their groups from the count of each number
            offset = min(low, 0)  # bincount counts from 0
            counts = np.bincount(numbers - offset if offset else numbers)
            present = np.flatnonzero(counts)
            sizes = counts[present]
            self.numbers = np.repeat(present.astype(np.int64) + offset, sizes)
            self.ends = np.cumsum(sizes)
            self.starts = self.ends - sizes
        else:
            self.numbers = numbers[order]
            self.starts = np.flatnonzero(np.r_[True, self.numbers[1:] != self.numbers[:-1]]) if len(order) else order
            self.ends = np.r_[self.starts[1:], len(order)] if len(order) else order
        self.handler = int(np.searchsorted(self.numbers, 1))  # where the rows in handler mode begin

    def first_rows(self, has: np.ndarray) -> _FirstRows:
        """Per exception number, the first of its rows where `has` is set (in order of position)."""
        first = self.rows[self.starts]
        for group in np.flatnonzero(~has[first]):  # an exception whose first row lacks it (rare)
            members = self.rows[self.starts[group] : self.ends[group]]
            found = members[has[members]]
            first[group] = found[0] if len(found) else -1
        numbers = self.numbers[self.starts][first >= 0]
        first = first[first >= 0]
        order = np.argsort(first)
        return _FirstRows(first[order], numbers[order])


@dataclass
class _FirstRows:
    rows: np.ndarray
    numbers: np.ndarray


def _valid(column: pa.Array) -> np.ndarray:
    return column.is_valid().to_numpy(zero_copy_only=False)


def _dictionary_encoded(column: pa.Array) -> pa.DictionaryArray:
    """A string column as a dictionary array (as it is if the loader already encoded it)."""
    return column if pa.types.is_dictionary(column.type) else column.cast(pa.string()).dictionary_encode()


def _string_codes(column: pa.Array) -> tuple[np.ndarray, list[str]]:
    """A string column as integer codes (-1 where missing) and the values they stand for."""
    encoded = _dictionary_encoded(column)
    return _integers(encoded.indices, -1), encoded.dictionary.to_pylist()


def _matches(codes: np.ndarray, values: list[str], wanted: str) -> np.ndarray:
    return codes == (values.index(wanted) if wanted in values else -2)  # codes are -1 or more


def _group_max(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per element, the largest of `values` among the elements of its group (groups contiguous)."""
    if len(values) == 0:
        return values
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    return np.repeat(np.maximum.reduceat(values, starts), np.diff(np.r_[starts, len(values)]))


def among_sorted(values: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Per value, whether it is one of `sorted_ids` (a binary search: `isin` hashes every id).
    Values in order, and many more than the ids, are found the other way round: each id's run of
    equal values, by a binary search per id."""
    values = np.asarray(values, dtype=np.int64)
    if len(sorted_ids) == 0:
        return np.zeros(len(values), dtype=bool)
    if len(values) > 8 * len(sorted_ids) and bool((values[1:] >= values[:-1]).all()):
        starts, ends = np.searchsorted(values, sorted_ids), np.searchsorted(values, sorted_ids, side="right")
        found = ends > starts
        # The runs, in order and apart, and the stretches between them, each repeated its length.
        bounds = np.column_stack((starts[found], ends[found])).ravel()
        inside = np.r_[np.tile([False, True], int(found.sum())), False]
        return np.repeat(inside, np.diff(np.r_[0, bounds, len(values)]))
    return sorted_ids[np.minimum(np.searchsorted(sorted_ids, values), len(sorted_ids) - 1)] == values


def _values(wanted: str | Iterable[str]) -> tuple[str, ...]:
    return (wanted,) if isinstance(wanted, str) else tuple(wanted)


class _Columns:
    """A context's working columns by name, each kept in the chunks it arrived in (the carried
    rows', then the batch's) until it is looked up whole (`columns[name]`: combined into one array
    then, once). Most columns are only ever taken a few rows at a time (`take`), which reads the
    chunks as they are: combining a batch's every column would copy it all again."""

    def __init__(self, columns: dict[str, pa.ChunkedArray]) -> None:
        self._chunks = {name: column.chunks or [pa.array([], column.type)] for name, column in columns.items()}
        self._whole: dict[str, pa.Array] = {}
        self._strings: dict[str, pa.Array] = {}  # per dictionary column, its chunks' dictionaries as one array

    def __getitem__(self, name: str) -> pa.Array:
        if name not in self._whole:
            chunks = self._chunks[name]
            self._whole[name] = chunks[0] if len(chunks) == 1 else _one_array(pa.chunked_array(chunks))
            self._chunks[name] = [self._whole[name]]  # the chunks are freed
            self._strings.pop(name, None)
        return self._whole[name]

    def __setitem__(self, name: str, column: pa.Array) -> None:
        self._chunks[name], self._whole[name] = [column], column
        self._strings.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._chunks

    def __iter__(self) -> Iterator[str]:
        return iter(self._chunks)

    def type(self, name: str) -> pa.DataType:
        return self._chunks[name][0].type

    def pop(self, name: str) -> pa.Array:
        column = self[name]
        del self._chunks[name], self._whole[name]
        return column

    def take(self, name: str, positions: np.ndarray) -> pa.Array:
        """The rows of column `name` at `positions` (any rows, in that order); a dictionary
        column's values decoded (what a frame holds), not their codes."""
        chunks = self._chunks[name]
        if len(chunks) == 1:
            return _decoded(chunks[0].take(pa.array(positions, type=pa.int64())))
        starts = np.cumsum([0, *(len(chunk) for chunk in chunks[:-1])])
        chunk_of = np.searchsorted(starts, positions, side="right") - 1
        used = np.flatnonzero(np.bincount(chunk_of, minlength=len(chunks)))
        if len(used) <= 1:  # no rows, or all in one chunk
            only = int(used[0]) if len(used) else 0
            return _decoded(chunks[only].take(pa.array(positions - starts[only], type=pa.int64())))
        taken = [_decoded(chunks[i].take(pa.array(positions[chunk_of == i] - starts[i], type=pa.int64()))) for i in used]
        rows = pa.concat_arrays(taken)  # each chunk's rows in turn: in order when `positions` go up
        if (chunk_of[1:] >= chunk_of[:-1]).all():
            return rows
        return rows.take(pa.array(np.argsort(np.argsort(chunk_of, kind="stable")), type=pa.int64()))

    def frame_columns(self, names: Iterable[str], positions: np.ndarray) -> dict[str, Any]:
        """The rows of columns `names` at `positions` as a frame holds them (`pandas_column`).
        Numbers and dictionary codes are read straight from the chunks' buffers, and strings
        looked up in the chunks' dictionaries in one take; where the rows lie among the chunks
        is worked out once per chunk layout."""
        parts_of: dict[tuple[int, ...], list[_Part]] = {}
        columns = {}
        for name in names:
            chunks = self._chunks[name]
            lengths = tuple(len(chunk) for chunk in chunks)
            if lengths not in parts_of:
                parts_of[lengths] = _parts(positions, lengths)
            columns[name] = self._frame_column(name, positions, parts_of[lengths])
        return columns

    def _frame_column(self, name: str, positions: np.ndarray, parts: list[_Part]) -> Any:
        chunks = self._chunks[name]
        kind = chunks[0].type
        if pa.types.is_dictionary(kind) and pa.types.is_string(kind.value_type):
            if name not in self._strings:  # the chunks' dictionaries one after the other
                self._strings[name] = pa.concat_arrays([chunk.dictionary for chunk in chunks]).cast(pa.large_string())
            first_codes = np.cumsum([0, *(len(chunk.dictionary) for chunk in chunks[:-1])])
            codes, valid = _gathered(parts, len(positions), [chunk.indices for chunk in chunks], first_codes, np.int64)
            return pandas_column(name, self._strings[name].take(pa.array(codes, mask=None if valid.all() else ~valid)))
        if not (pa.types.is_int64(kind) or pa.types.is_float64(kind)):
            return pandas_column(name, self.take(name, positions))
        values, valid = _gathered(parts, len(positions), chunks, np.zeros(len(chunks), dtype=np.int64), kind.to_pandas_dtype())
        if pa.types.is_float64(kind):
            values[~valid] = np.nan
            return values
        if schema.COLUMNS.get(name) == "int64" and valid.all():
            return values
        return pd.arrays.IntegerArray(np.where(valid, values, 0), ~valid)


@dataclass
class _Part:
    """The rows taken from one chunk: where they go (`into`: a slice or positions of the result)
    and where they are in the chunk (`rows`)."""

    chunk: int
    into: slice | np.ndarray
    rows: np.ndarray


def _parts(positions: np.ndarray, lengths: tuple[int, ...]) -> list[_Part]:
    """Where the rows at `positions` lie among chunks of `lengths` rows, chunk by chunk."""
    if len(lengths) == 1:
        return [_Part(0, slice(None), positions)]
    starts = np.cumsum([0, *lengths[:-1]])
    chunk_of = np.searchsorted(starts, positions, side="right") - 1
    if (chunk_of[1:] >= chunk_of[:-1]).all():  # in chunk order (rows taken in order): slices
        bounds = np.searchsorted(chunk_of, np.arange(len(lengths) + 1))
        return [_Part(i, slice(begin, end), positions[begin:end] - starts[i]) for i, (begin, end) in enumerate(zip(bounds[:-1], bounds[1:])) if end > begin]
    return [_Part(i, into, positions[into] - starts[i]) for i in range(len(lengths)) if len(into := np.flatnonzero(chunk_of == i))]


def _gathered(
    parts: list[_Part], rows: int, numbers: list[pa.Array], added: np.ndarray, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The values of the numeric arrays `numbers` (one per chunk, each plus its `added`) at the
    rows of `parts`, read from their buffers as `dtype`, and whether each has a value."""
    values = np.empty(rows, dtype=dtype)
    valid = np.ones(rows, dtype=bool)
    for part in parts:
        array = numbers[part.chunk]
        at = part.rows + array.offset
        validity, data = array.buffers()[:2]
        values[part.into] = np.frombuffer(data, dtype=array.type.to_pandas_dtype(), count=array.offset + len(array))[at] + added[part.chunk]
        if array.null_count:
            valid[part.into] = (np.frombuffer(validity, dtype=np.uint8)[at >> 3] >> (at & 7)) & 1
    return values, valid


def _decoded(column: pa.Array) -> pa.Array:
    return column.cast(column.type.value_type) if pa.types.is_dictionary(column.type) else column


def _one_array(column: pa.ChunkedArray) -> pa.Array:
    """A column's values as one array (a dictionary column's chunks put on one dictionary first,
    which makes combining them cheap)."""
    return (column.unify_dictionaries() if pa.types.is_dictionary(column.type) else column).combine_chunks()


def _tasks_on_process_stack(task: pa.Array, control: pa.Array) -> tuple[pa.Array, np.ndarray, list[str]]:
    """The task column without the rows where thread mode runs on the main stack (CONTROL.SPSEL
    clear, where the row says), with its codes (-1: no task) and the values they stand for: an
    RTOS runs its tasks on the process stack, while main, before the scheduler starts, runs on
    the main stack with the current-task pointer already naming the first task it created."""
    encoded = _dictionary_encoded(task)
    codes, tasks = _integers(encoded.indices, -1), encoded.dictionary.to_pylist()
    on_main_stack = (_integers(control.cast(pa.int64()), CONTROL_SPSEL) & CONTROL_SPSEL) == 0
    if not on_main_stack.any():
        return task, codes, tasks
    codes = np.where(on_main_stack, -1, codes)
    if not pa.types.is_dictionary(task.type):  # kept in its type: a batch's carried rows are in it too
        return pc.if_else(pa.array(on_main_stack), pa.nulls(len(task), task.type), task), codes, tasks
    masked = pa.array(codes, mask=codes < 0).cast(encoded.indices.type)  # the codes masked, not the strings row by row
    return pa.DictionaryArray.from_arrays(masked, encoded.dictionary), codes, tasks


def _forward_filled(values: np.ndarray, first: float) -> np.ndarray:
    """`values` with each NaN replaced by the last number before it (`first` where none is)."""
    last = np.maximum.accumulate(np.where(np.isnan(values), -1, np.arange(len(values))))
    return np.where(last >= 0, values[np.maximum(last, 0)], first)


def _integers(column: pa.Array, missing: int) -> np.ndarray:
    """An integer column as an array, `missing` where it has no value."""
    return (column if column.null_count == 0 else pc.fill_null(column, missing)).to_numpy()


@dataclass
class Before:
    """What the batches before a context's rows leave to it, when a trace is analysed in batches:
    the whole trace's facts, the rows carried over (the context's first rows, with their
    execution contexts), and the counts activations and tasks are numbered on."""

    facts: TraceFacts
    carried: pa.Table | None = None
    carried_act: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    enters: dict[int, int] = field(default_factory=dict)  # per exception with IRQ rows: irq_enter rows so far
    # Per exception without IRQ rows: its activations so far, and whether its last one was ended
    # (a row of thread mode, or of an exception that cannot preempt it, came after its last row).
    activations: dict[int, tuple[int, bool, float]] = field(default_factory=dict)  # (count, ended, its priority)
    tasks: dict[str, int] = field(default_factory=dict)  # task name -> its number
    halted: float = 0.0
    halts: int = 0
    # What the batch before worked out of its carried rows (`Context.shared_with_next`), by key.
    shared: dict[str, object] = field(default_factory=dict)


class Timeline:
    """Per row of the whole trace, IRQ rows included, as numpy arrays: what the rules that follow
    ISR activations need of every row."""

    def __init__(
        self, time: np.ndarray, ipsr: np.ndarray, act: np.ndarray, enter: np.ndarray, exit: np.ndarray,
        halted: np.ndarray | None = None, halts: np.ndarray | None = None,
    ) -> None:  # fmt: skip
        self.time = time  # seconds
        self.ipsr = ipsr  # exception number, -1 where the row has none (config rows)
        self.act = act  # the row's execution context (`act` column)
        self.enter = enter  # irq_enter rows
        self.exit = exit  # irq_exit rows
        self.in_isr = ipsr > 0
        self.irq = enter | exit
        # Where the capture halted the core (`halted`, `halts` columns): the seconds of `time` it
        # was stopped, and how many halts came before; None for a trace that records no halts.
        self.halted = halted
        self.halts = halts

    @cached_property
    def run_time(self) -> np.ndarray:
        """Per row, the seconds the core ran up to it: `time` without the time it was halted."""
        return self.time if self.halted is None else self.time - self.halted

    @cached_property
    def thread(self) -> np.ndarray:
        """The positions of the rows of thread mode (ipsr 0), in order."""
        return np.flatnonzero(self.ipsr == 0)

    @cached_property
    def thread_rows(self) -> np.ndarray:
        """Per row, how many rows of thread mode there are up to it (itself included)."""
        return np.cumsum(self.ipsr == 0)


class Context:
    """The trace with its derived columns, its metadata and the analysis options.

    The context keeps the trace's working columns as Arrow arrays and converts to pandas only
    the rows a rule asks for: `select` (rows by event, kind and role), `rows_at` (rows at given
    positions), with the derived columns; a frame's index is each row's position in the trace.
    What rules need of every row, IRQ rows included, is in `timeline` and `activations`;
    `halting` (every row but irq_enter/irq_exit) and `frame` (every row) are built on first use.
    """

    def __init__(
        self, rows: pd.DataFrame | pa.Table | list[pa.Table], metadata: dict[str, str], config: AnalysisConfig,
        before: Before | None = None, is_last: Callable[[], bool] | None = None,
    ) -> None:  # fmt: skip
        """`rows`: the trace's rows. A table in a one-item list is handed over: the context takes
        it out of the list and lets go of the columns it does not keep.

        `before`: the rows are one batch of a trace analysed in batches, after the batches
        `before` describes; its carried rows come first (positions below `carried`).
        `is_last`: says whether no batch follows this one (`last_batch`); without it, none does."""
        self.metadata = metadata
        self.before = before
        self._is_last = is_last
        self.carried = 0 if before is None or before.carried is None else before.carried.num_rows
        self.config = config
        bits = metadata.get(schema.META_PRIORITY_BITS)
        self.priority_bits = int(bits) if bits and bits.isascii() and bits.isdigit() else None
        if isinstance(rows, list):
            table = rows.pop()
        elif isinstance(rows, pd.DataFrame):
            table = pa.Table.from_pandas(rows[[c for c in schema.COLUMNS if c in rows]], preserve_index=False)
        else:
            table = rows
        del rows
        kept = WORKING_COLUMNS if before else [*WORKING_COLUMNS, "exception"]
        if self.carried:
            table = pa.concat_tables([before.carried.select(WORKING_COLUMNS), table.select(WORKING_COLUMNS)])  # type: ignore[union-attr]
        columns = _Columns({c: table[c] for c in kept if c in table.column_names})
        del table  # the columns not kept are freed here when the table was handed over
        self._columns = columns
        ipsr = _integers(self._columns["ipsr"].cast(pa.int64()), -1)
        known = _valid(self._columns["ipsr"])
        self._by_exception = _ByException(ipsr, known)
        if before:
            self.exception_names, self._prio_by_ipsr = before.facts.exception_names, before.facts.prio_by_ipsr
        else:
            self.exception_names = _exception_names(self._by_exception, columns.pop("exception"))
            priority = self._columns["priority"]
            prioritized = self._by_exception.first_rows(_valid(priority))
            prio = priority.take(pa.array(prioritized.rows, type=pa.int64())).cast(pa.int64()).to_numpy()
            self._prio_by_ipsr = pd.Series(prio, index=pd.Index(prioritized.numbers, dtype=np.int64), dtype=np.int64)
        self.shared: dict[str, object] = {}  # intermediate results several rules use (lock events)
        # What the next batch needs to know of the rows this one carries over (`Before.shared`).
        self.shared_with_next: dict[str, object] = {}
        self.rules: frozenset[str] | None = None  # the rules this analysis runs (None: every rule)
        self._event_positions: dict[tuple[str, ...], np.ndarray] = {}
        self._codes = {c: _string_codes(self._columns[c]) for c in ("event", "kind", "role")}
        task, codes, tasks = _tasks_on_process_stack(self._columns["task"], self._columns["control"])
        self._columns["task"], self._codes["task"] = task, (codes, tasks)
        self.timeline = self._timeline(ipsr, known)

    @property
    def last_batch(self) -> bool:
        """Whether no batch follows this one (the whole trace is one batch): a rule can judge
        what waits for the end of the trace here, rather than keep the context for it."""
        return self._is_last is None or self._is_last()

    # --- derived columns -------------------------------------------------------------------

    def _timeline(self, ipsr: np.ndarray, known: np.ndarray) -> Timeline:
        codes, events = self._codes["event"]
        enter = _matches(codes, events, Event.IRQ_ENTER.value)
        exit = _matches(codes, events, Event.IRQ_EXIT.value)
        # Built in place on the activation counts (fewer arrays of the batch's length to allocate).
        act = self._activation_counts(ipsr, enter)
        act |= ipsr << 32
        np.copyto(act, -2 - self._task_numbers(), where=ipsr <= 0)
        np.copyto(act, NO_CONTEXT, where=~known)
        if self.carried:
            act[: self.carried] = self.before.carried_act  # type: ignore[union-attr]
        time = self._columns["time"].cast(pa.float64()).to_numpy(zero_copy_only=False)
        halted, halts = self._halts()
        return Timeline(time, ipsr, act, enter, exit, halted, halts)

    def _task_numbers(self) -> np.ndarray:
        """Per row, a number for its task (-1 for none): the task column's codes, or, in a batch,
        numbers kept across batches (new tasks numbered on in order of appearance)."""
        codes, tasks = self._codes["task"]
        if self.before is None:
            return codes
        known = self.before.tasks
        present = np.flatnonzero(np.bincount(codes + 1, minlength=len(tasks) + 1)[1:])
        new = [code for code in present.tolist() if tasks[code] not in known]
        for code in sorted(new, key=lambda code: int(np.argmax(codes == code))):  # few: tasks are named once
            known[tasks[code]] = len(known)
        return np.r_[[known.get(t, -1) for t in tasks], -1].astype(np.int64)[codes]

    def leaving(self, carry: np.ndarray) -> Before:
        """What this batch leaves to the next: the rows at positions `carry` carried over, and
        the counts. (The counts of activations and tasks are updated as this context is built.)"""
        if self.before is None:
            raise RuntimeError("leaving() is for a context built on the batches before it")
        t = self.timeline
        fresh_enters = t.enter[self.carried :] & t.in_isr[self.carried :]
        enters = dict(self.before.enters)
        for number, entered in zip(*np.unique(t.ipsr[self.carried :][fresh_enters], return_counts=True), strict=True):
            enters[int(number)] = enters.get(int(number), 0) + int(entered)
        carry = np.asarray(carry, dtype=np.int64)
        carried = {name: self._columns.take(name, carry) for name in WORKING_COLUMNS}
        for name in WORKING_COLUMNS:  # the codes the batches are held in (`take` decodes them)
            if pa.types.is_dictionary(self._columns.type(name)):
                carried[name] = carried[name].dictionary_encode()
        if t.halted is not None and t.halts is not None:  # as filled in here
            carried["halted"], carried["halts"] = pa.array(t.halted[carry]), pa.array(t.halts[carry])
        halted = self.before.halted if t.halted is None or not len(t.halted) else float(t.halted[-1])
        halts = self.before.halts if t.halts is None or not len(t.halts) else int(t.halts[-1])
        return Before(
            self.before.facts, pa.table(carried), t.act[carry], enters, self.before.activations, self.before.tasks, halted, halts,
            dict(self.shared_with_next),
        )  # fmt: skip

    def _halts(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The `halted` and `halts` columns carried forward over rows without them (a trace
        from a backend that never halts has neither: None, None)."""
        if "halted" not in self._columns or "halts" not in self._columns:
            return None, None
        if self.before is not None and self.before.facts.halted_rows == 0:
            return None, None
        halted = self._columns["halted"].cast(pa.float64()).to_numpy(zero_copy_only=False)
        if self.before is None and np.isnan(halted).all():
            return None, None
        halts = self._columns["halts"].cast(pa.float64()).to_numpy(zero_copy_only=False)
        if self.before is None:
            return _forward_filled(halted, 0.0), _forward_filled(halts, 0.0).astype(np.int64)
        # Carried rows hold the values their batch filled in; the batch's own rows go on from
        # the last value of the batch before.
        carried = self.carried
        halted = np.r_[halted[:carried], _forward_filled(halted[carried:], self.before.halted)]
        halts = np.r_[halts[:carried], _forward_filled(halts[carried:], float(self.before.halts))]
        return halted, halts.astype(np.int64)

    def _activation_counts(self, ipsr: np.ndarray, enter: np.ndarray) -> np.ndarray:
        """Per row in handler mode, which activation of its exception it belongs to (0, 1, 2, …):
        how many irq_enter rows of the exception come up to it (in a batch: counted on from the
        batches before; carried rows are numbered already)."""
        if self.carried:
            enter = enter.copy()
            enter[: self.carried] = False
        groups = self._by_exception
        handler = groups.handler
        rows = groups.rows[handler:]
        in_handler = groups.starts >= handler  # the exceptions' groups in handler mode
        starts, ends = groups.starts[in_handler] - handler, groups.ends[in_handler] - handler
        entered = np.r_[0, np.cumsum(enter[rows])]  # irq_enter rows among the first k rows
        numbers = groups.numbers[handler:][starts]
        # Per exception, what its count starts from: minus the enters of the exceptions before it
        # in `rows`, plus (in a batch) its enters in the batches before.
        start = -entered[starts]
        if self.before is not None:
            start += np.array([self.before.enters.get(n, 0) for n in numbers.tolist()], dtype=np.int64)
        counts = np.zeros(len(ipsr), dtype=np.int64)
        counts[rows] = entered[1:] + np.repeat(start, ends - starts)
        if self.before is None:
            without_irq_rows = numbers[entered[ends] == entered[starts]].tolist()
        else:
            without_irq_rows = [n for n in numbers.tolist() if n not in self.before.facts.irq_exceptions]
            without_irq_rows += [n for n in self.before.activations if n not in without_irq_rows]
        if not without_irq_rows:
            return counts
        priority = self._columns["priority"].cast(pa.float64()).to_numpy(zero_copy_only=False)  # NaN where missing
        prio = np.where(np.isnan(priority), self._exception_priority(ipsr), priority)
        fresh = np.arange(len(ipsr)) >= self.carried
        for exc in without_irq_rows:  # per exception: a fallback without IRQ rows
            rows = np.flatnonzero((ipsr == exc) & fresh)
            so_far, ended, own = self.before.activations.get(exc, (0, True, np.nan)) if self.before else (0, True, np.nan)
            if len(rows) and exc not in (self.before.activations if self.before else {}):
                own = prio[rows[0]]  # its priority: that of its first row
            # A row of thread mode, or of an exception that cannot preempt this one, ends it.
            ends = (ipsr == 0) & fresh
            if not np.isnan(own):
                ends |= (ipsr > 0) & (ipsr != exc) & ~(prio < own) & fresh
            marks = np.cumsum(ends)
            if len(rows):
                new = np.r_[ended or marks[rows[0]] > 0, marks[rows][1:] != marks[rows][:-1]]
                counts[rows] = so_far + np.cumsum(new)
                so_far, ended = int(counts[rows[-1]]), bool(marks[-1] > marks[rows[-1]])
            else:
                ended = ended or bool(marks[-1] > 0) if len(marks) else ended
            if self.before is not None:
                self.before.activations[exc] = (so_far, ended, own)
        return counts

    @property
    def ends_trace(self) -> bool:
        """Whether the trace ends with this context's rows (a whole trace, or its last batch):
        what is still open at its end stays open."""
        if self.before is None or self.before.facts.last_seq is None:
            return True
        rows = len(self.timeline.time)
        return rows > 0 and self._columns.take("seq", np.array([rows - 1]))[0].as_py() == self.before.facts.last_seq

    @cached_property
    def coverage(self) -> Coverage | None:
        """Which probe sites were armed when (None: the trace has no coverage rows, so
        everything its capture planned was armed throughout)."""
        return coverage_of(self)

    @cached_property
    def halting(self) -> pd.DataFrame:
        """The rows where a probe halted the core: every row but irq_enter/irq_exit."""
        return self.rows_at(np.flatnonzero(~self.timeline.irq))

    @cached_property
    def frame(self) -> pd.DataFrame:
        """Every row of the trace, IRQ rows included, with the derived columns."""
        rows = self.rows_at(np.arange(len(self.timeline.time)))
        rows.index = pd.RangeIndex(len(rows))
        return rows

    @property
    def columns(self) -> list[str]:
        """The columns of the frames `rows_at` and `select` give: the working and derived ones."""
        return [*self._columns, IN_ISR, PRIO, ACT]

    def rows_at(self, positions: np.ndarray, columns: list[str] | None = None) -> pd.DataFrame:
        """The rows at `positions` (any rows, in that order) as a DataFrame indexed by position:
        the working columns and the derived ones, or only `columns`."""
        positions = np.asarray(positions, dtype=np.int64)
        names = self.columns if columns is None else columns
        derived = {IN_ISR: lambda: self.timeline.in_isr[positions], PRIO: lambda: self._priorities(positions),
                   ACT: lambda: self.timeline.act[positions]}  # fmt: skip
        stored = self._columns.frame_columns([name for name in names if name in self._columns], positions)
        data = {name: stored[name] if name in stored else derived[name]() for name in names}
        return pd.DataFrame(data, index=pd.Index(positions, dtype=np.int64), copy=False)

    def has_value(self, column: str, positions: np.ndarray) -> np.ndarray:
        """Whether each row at `positions` has a value in `column`."""
        return self._columns.take(column, np.asarray(positions, dtype=np.int64)).is_valid().to_numpy(zero_copy_only=False)

    def _priorities(self, positions: np.ndarray) -> pd.arrays.IntegerArray:
        """The active exception's priority at each row: the row's own, else its exception's."""
        own = pd.array(self._columns.frame_columns(["priority"], positions)["priority"]).to_numpy(dtype=float, na_value=np.nan)
        prio = np.where(np.isnan(own), self._exception_priority(self.timeline.ipsr[positions]), own)
        return pd.arrays.IntegerArray(np.nan_to_num(prio).astype(np.int64), np.isnan(prio))

    def _exception_priority(self, ipsr: np.ndarray) -> np.ndarray:
        """Per exception number of `ipsr` (-1: none), its first recorded priority (NaN: none)."""
        return np.take(self._priority_of_number, ipsr + 1, mode="clip")  # numbers past the table: its last entry

    @cached_property
    def _priority_of_number(self) -> np.ndarray:
        """`_prio_by_ipsr` as a table indexed by exception number + 1, NaN where it has none
        (first and last entries included)."""
        numbers = self._prio_by_ipsr.index.to_numpy()
        table = np.full(int(numbers.max(initial=0)) + 3, np.nan)
        table[numbers + 1] = self._prio_by_ipsr.to_numpy(dtype=float)
        return table

    # --- ISR activations -----------------------------------------------------------------------

    @cached_property
    def activations(self) -> pd.DataFrame:
        """One row per ISR activation, indexed by its id (sorted: by exception, then in the order
        they start): `ipsr`, `first_row`, `last_row` (positions), `timed` (it has IRQ rows),
        `exited` (an irq_exit), `closed` (seen to return)."""
        t, groups = self.timeline, self._by_exception
        # An exception's activation ids only grow along the trace: in the rows grouped by
        # exception, each activation's rows are lined up, in order.
        rows = groups.rows[groups.handler :]
        ids = t.act[rows]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, dtype=np.int64)
        ends = np.r_[starts[1:], len(ids)] - 1 if len(ids) else starts
        first_row, last_row = rows[starts], rows[ends]
        ipsr = groups.numbers[groups.handler :][starts]
        exited = t.exit[last_row]
        thread = t.thread
        # Without irq_exit rows: a later row of thread mode or of the same exception proves it.
        later_thread = last_row < thread[-1] if len(thread) else np.zeros(len(last_row), dtype=bool)
        return pd.DataFrame(
            {
                "first_row": first_row, "last_row": last_row, "ipsr": ipsr,
                # IRQ rows open and close their activation: its first row is the enter, its last the exit.
                "timed": t.enter[first_row], "exited": exited,
                "closed": exited | later_thread | (last_row < _group_max(last_row, ipsr)),
            },
            index=ids[starts], copy=False,
        )  # fmt: skip

    def _switched(self, first_row: np.ndarray, last_row: np.ndarray) -> np.ndarray:
        """Whether thread mode runs in another context after each activation (its first and last
        rows) than before it."""
        t = self.timeline
        before = np.searchsorted(t.thread, first_row, side="right") - 1  # the thread row before each (-1: none)
        after = np.searchsorted(t.thread, last_row, side="right")  # and after it (len(thread): none)
        known = np.flatnonzero((before >= 0) & (after < len(t.thread)))
        around = t.thread[np.r_[before[known], after[known]]]
        # The task (thread mode's context id), and the stack thread mode runs on (CONTROL.SPSEL:
        # the scheduler's start moves thread mode from MSP to a task's PSP even when the task
        # column already names the task).
        control = self._columns.take("control", around).cast(pa.int64())
        key = t.act[around] * 4 + ((_integers(control, 0) & CONTROL_SPSEL) != 0)
        switched = np.zeros(len(first_row), dtype=bool)
        switched[known] = key[: len(known)] != key[len(known) :]
        return switched

    @cached_property
    def latest_activations(self) -> np.ndarray:
        """The id of each exception's latest activation in these rows, sorted (the activations
        before it are over)."""
        ids, ipsr = self.activations.index.to_numpy(), self.activations["ipsr"].to_numpy()  # sorted by exception, then id
        return ids[np.r_[ipsr[1:] != ipsr[:-1], True]] if len(ids) else ids

    def is_latest_activation(self, acts: np.ndarray) -> np.ndarray:
        """Per id of `acts`, whether it is its exception's latest activation in these rows."""
        return among_sorted(acts, self.latest_activations)

    def _activation_rows(self, act: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """Per row of `act`, whether it is an ISR activation's id, and that activation's row of
        `activations` (any where it is not)."""
        ids = self.activations.index.to_numpy()
        wanted = act.to_numpy(dtype=np.int64)
        if not len(ids):
            return np.zeros(len(wanted), dtype=bool), np.zeros(len(wanted), dtype=np.int64)
        at = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)  # the ids are sorted
        return ids[at] == wanted, at

    def is_closed(self, act: pd.Series) -> pd.Series:
        """Per row of `act`: whether that ISR activation is seen to return."""
        found, at = self._activation_rows(act)
        closed = np.zeros(len(act), dtype=bool)
        closed[found] = self.activations["closed"].to_numpy(dtype=bool)[at[found]]
        return pd.Series(closed, index=act.index)

    def is_switch(self, act: pd.Series) -> pd.Series:
        """Per row of `act`: whether thread mode resumed in another context after that activation
        (a context switch: in another task, or on another stack)."""
        found, at = self._activation_rows(act)
        at = at[found]
        switched = np.zeros(len(act), dtype=bool)
        activations = self.activations
        switched[found] = self._switched(activations["first_row"].to_numpy()[at], activations["last_row"].to_numpy()[at])
        return pd.Series(switched, index=act.index)

    # --- selections ---------------------------------------------------------------------------

    def select(
        self,
        event: str | Iterable[str] | None = None,
        kind: str | Iterable[str] | None = None,
        role: str | Iterable[str] | None = None,
        isr: bool = False,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """Rows whose event, kind and role are among the given values (None: any), in handler
        mode only with `isr`; all columns, or only `columns` (less to convert for big selections)."""
        return self.rows_at(self.positions_of(event, kind, role, isr), columns)

    def positions_of(
        self,
        event: str | Iterable[str] | None = None,
        kind: str | Iterable[str] | None = None,
        role: str | Iterable[str] | None = None,
        isr: bool = False,
    ) -> np.ndarray:
        """The positions of the rows `select` gives, in order."""
        positions = np.arange(len(self.timeline.time)) if event is None else self._event_rows(_values(event))
        for column, wanted in (("kind", kind), ("role", role)):
            if wanted is not None:
                positions = positions[self._matching(column, _values(wanted))[self._codes[column][0][positions]]]
        if isr:
            positions = positions[self.timeline.in_isr[positions]]
        return positions

    def _event_rows(self, events: tuple[str, ...]) -> np.ndarray:
        """Positions of the rows of `events` (kept: rules select the same events again)."""
        if events not in self._event_positions:
            codes, values = self._codes["event"]
            wanted = np.zeros(len(codes), dtype=bool)
            for event in set(events):  # a comparison per event is faster than a lookup per row
                wanted |= _matches(codes, values, event)
            self._event_positions[events] = np.flatnonzero(wanted)
        return self._event_positions[events]

    def _matching(self, column: str, values: tuple[str, ...]) -> np.ndarray:
        """Per code of a string column, whether it stands for one of `values`; one more entry,
        false, last: where code -1 (no value) points."""
        uniques = self._codes[column][1]
        return np.r_[pd.Index(uniques, dtype=object).isin(values), False]

    # --- labels, computed only for the rows a rule reports -----------------------------------

    def names(self, rows: pd.DataFrame) -> pd.Series:
        return rows["ipsr"].map(self.exception_names).astype("string")

    def labels(self, rows: pd.DataFrame) -> pd.Series:
        """`OTG_FS (IRQ 67, priority 6)`, `SysTick (exception 15, priority 1)`, `task led`, `Thread`.

        Built once per distinct (exception, task, priority) and spread to the rows."""
        key = np.zeros(len(rows), dtype=np.int64)
        for column in LABEL_COLUMNS:  # one number per distinct combination, missing values included
            codes, values = pd.factorize(rows[column])
            key = key * (len(values) + 1) + codes + 1
        same = pd.factorize(key)[0]
        _, first = np.unique(same, return_index=True)  # ids 0…n-1 in order of first appearance
        labels = np.array(self.labels_of_distinct(rows.iloc[first]), dtype=object)
        return pd.Series(labels[same] if len(rows) else [], index=rows.index, dtype="string")

    def labels_of_distinct(self, rows: pd.DataFrame) -> list[str | None]:
        """The label of each of `rows`, worked out row by row: for rows that differ already."""
        return [self._label(*values) for values in zip(*(rows[column].tolist() for column in LABEL_COLUMNS))]

    def _label(self, ipsr: int | None, task: str | None, prio: int | None) -> str | None:
        """The label of one (exception, task, priority), each possibly missing (NA); none without
        a known exception (config rows)."""
        if pd.isna(ipsr) or (ipsr != 0 and ipsr not in self.exception_names.index):
            return None
        if ipsr == 0:
            return "Thread" if pd.isna(task) else f"task {task}"
        priority = "" if pd.isna(prio) else f", priority {prio}"
        return f"{self.exception_names[ipsr]} ({by_number(ipsr)}{priority})"

    def labels_at(self, positions: np.ndarray) -> pd.Series:
        """`labels` of the rows at `positions` (taking only the columns labels read)."""
        return self.labels(self.rows_at(positions, LABEL_COLUMNS))

    def handlers(self, rows: pd.DataFrame) -> pd.Series:
        """The running handler's function (the frame before `<exception>`), else the exception."""
        handler = rows["callpath"].str.extract(rf"(?:^|;)([^;]+);{re.escape(schema.EXCEPTION_FRAME)}", expand=False)
        return handler.fillna(self.names(rows)).astype("string")

    # --- shared helpers ----------------------------------------------------------------------

    def once(self, key: str, compute: Callable[[Context], T]) -> T:
        """`compute(self)`, worked out the first time any rule asks for `key` in this context and
        kept in `shared` for the others."""
        if key not in self.shared:
            self.shared[key] = compute(self)
        return self.shared[key]  # type: ignore[return-value]

    def outermost_calls(self, rows: pd.DataFrame, kinds: Iterable[str] | None = None, isr: bool = False) -> pd.DataFrame:
        """Drop `call` rows nested in another call of the same set (malloc → _malloc_r).

        The call path says it where the trace has one: another function of the set among the
        running context's own frames (its own frame aside; inlined frames may come before it).
        Without a call path: an earlier call of the set in the same activation without its return.
        `rows` are this context's, as `select` and `rows_at` give them (indexed by position). In a
        batch, the set is the whole trace's calls of `kinds` (None: any), in handler mode with `isr`.
        """
        positions = rows.index.to_numpy()
        is_call = self._is_value("event", positions, Event.CALL.value)
        calls = rows[is_call]
        if calls.empty:
            return calls
        if self.before is None:
            functions, returns = calls["symbol"].dropna().unique(), (rows["event"] == Event.RETURN.value).any()
        else:
            facts, wanted = self.before.facts, None if kinds is None else set(kinds)
            of_set = [s for s in facts.signatures if (wanted is None or s.kind in wanted) and (s.in_isr or not isr)]
            functions = sorted({s.symbol for s in of_set if s.event == Event.CALL.value and s.symbol is not None})
            returns = any(s.event == Event.RETURN.value for s in of_set)
        call_positions = positions[is_call]
        codes, own = self._own_frames(call_positions)
        symbol_codes, symbols = self._codes_of("symbol")
        symbol_codes = symbol_codes[call_positions]
        nested = np.zeros(len(calls), dtype=bool)
        for name in functions:  # per function of the set, not per row (compared on the symbols' codes)
            nested |= np.r_[_has_frame(own, name), False][codes] & ~_matches(symbol_codes, symbols, name)
        if returns:
            # Per call, whether the call or return row before it in its context is a call.
            paired = is_call | self._is_value("event", positions, Event.RETURN.value)
            previous = pd.Series(is_call[paired].astype(np.int8)).groupby(rows[ACT].to_numpy()[paired]).shift()
            open_before = np.zeros(len(rows), dtype=bool)
            open_before[np.flatnonzero(paired)] = previous.to_numpy(dtype=float, na_value=0.0) == 1.0
            nested |= open_before[is_call] & (codes < 0)
        return calls[~nested]

    def _codes_of(self, column: str) -> tuple[np.ndarray, list[str]]:
        """A string column's codes per row (-1 where missing) and the values they stand for
        (worked out once per context)."""
        if column not in self._codes:
            self._codes[column] = _string_codes(self._columns[column])
        return self._codes[column]

    def _is_value(self, column: str, positions: np.ndarray, value: str) -> np.ndarray:
        """Per row at `positions`, whether its `column` (a string column) is `value`."""
        codes, values = self._codes_of(column)
        return _matches(codes[positions], values, value)

    def reports(self, rule_id: str) -> bool:
        """Whether this analysis runs rule `rule_id`."""
        return self.rules is None or rule_id in self.rules

    def has_own_frame(self, positions: np.ndarray, name: str) -> np.ndarray:
        """Per row at `positions`, whether function `name` is among its running context's own
        frames (False without a call path)."""
        codes, own = self._own_frames(positions)
        return np.r_[_has_frame(own, name), False][codes]

    def frame_depth(self, positions: np.ndarray) -> np.ndarray:
        """Per row at `positions`, how many frames its running context's own call path has (NaN
        without a call path)."""
        codes, own = self._own_frames(positions)
        return np.r_[pc.add(pc.count_substring(own, SEP), 1).to_numpy(zero_copy_only=False).astype(float), np.nan][codes]

    def _own_frames(self, positions: np.ndarray) -> tuple[np.ndarray, pa.Array]:
        """Per row at `positions`, the code of its call path (-1 without one); and per code, the
        running context's own frames (the path cut at `<exception>`)."""
        indices, own = self._callpath_codes
        return pc.fill_null(indices.take(pa.array(positions, type=pa.int64())), -1).to_numpy(zero_copy_only=False), own

    @cached_property
    def _callpath_codes(self) -> tuple[pa.Array, pa.Array]:
        """Per row, the code of its call path; per code, the own frames (cut once per distinct path)."""
        encoded = _dictionary_encoded(self._columns["callpath"])
        return encoded.indices, _own_frames(encoded.dictionary.cast(pa.string()))

    def logical_priority(self, raw: int) -> int | None:
        """A raw 8-bit priority (BASEPRI, IPR) in implemented bits (needs priority_bits)."""
        return None if self.priority_bits is None else logical_priority(raw, self.priority_bits)
