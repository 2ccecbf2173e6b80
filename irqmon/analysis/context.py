"""Columns every rule shares, computed once per analysis: activations, priorities, contexts.

Derived columns added to the trace frame:
- `act` — the execution context a row belongs to: one id per ISR activation (from the
  `irq_enter`/`irq_exit` rows, or, on traces without them, from `ipsr` changes), one per RTOS
  task in thread mode (one for bare-metal thread mode).
- `in_isr` — the row runs in handler mode (`ipsr` > 0).
- `prio` — the active exception's priority, filled from other rows of the same exception.

Exception names (`exc_name`) are looked up per exception and added only to the rows a rule
reports, as are the context labels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from irqmon import schema
from irqmon.schema import Event

ACT = "act"
IN_ISR = "in_isr"
PRIO = "prio"
EXC_NAME = "exc_name"
NO_CONTEXT = np.iinfo(np.int64).min  # rows without ipsr (config rows)
EXCEPTION_MARK = "<exception>"
CONTROL_SPSEL = 0x2  # CONTROL bit: thread mode uses the process stack
SEP = schema.CALLPATH_SEPARATOR
# The trace columns in the working copy rules see: all but a few strings no rule needs (cheaper
# to slice); exception names come from `Context.names`, the original frame stays in the Trace.
WORKING_COLUMNS = [c for c in schema.COLUMNS if c not in ("cycles", "probe", "exception", "args")]

ARCH_EXCEPTIONS = {
    0: "Thread", 1: "Reset", 2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault",
    6: "UsageFault", 11: "SVCall", 12: "DebugMonitor", 14: "PendSV", 15: "SysTick",
}  # fmt: skip


@dataclass
class AnalysisConfig:
    """Thresholds and options of the rules (the command line sets them)."""

    max_syscall_priority: int | None = None  # raw BASEPRI ceiling; else the trace's config row
    storm_min_entries: int = 50  # back-to-back entries before a run is a storm
    storm_share: float = 0.8  # share of a sliding window spent in the handler (thread mode starved)
    storm_rate: float | None = None  # or: entries per second over a sliding window (off by default)
    storm_gap: float = 100e-6  # longest exit-to-entry gap that still counts as back to back (s)
    storm_window: float = 0.01  # the sliding window (s)
    lock_window: float | None = None  # report a lock held longer than this (s); None: only at the end


def _arrow(strings: pd.Series) -> pa.Array:
    return pa.array(strings.astype("string[pyarrow]").array, type=pa.string()) if len(strings) else pa.array([], pa.string())


def own_paths(callpath: pd.Series) -> pd.Series:
    """Each call path cut at `<exception>`: only the running context's own frames."""
    own = pc.replace_substring_regex(_arrow(callpath), rf"(?:^|{SEP}){re.escape(EXCEPTION_MARK)}(?:{SEP}.*)?$", "")
    return pd.Series(pd.arrays.ArrowStringArray(own), index=callpath.index)


def _has_frame(paths: pa.Array, name: str) -> np.ndarray:
    padded = pc.binary_join_element_wise(SEP, paths, SEP)
    return pc.match_substring(padded, f"{SEP}{name}{SEP}").to_numpy(zero_copy_only=False) == True  # noqa: E712


def _exception_names(frame: pd.DataFrame) -> pd.Series:
    """Exception number → name: the trace's `exception` column, else the architectural name."""
    named = frame["exception"].groupby(frame["ipsr"]).first()
    numbers = pd.Index(frame["ipsr"].dropna().unique())
    fallback = pd.Series(
        [ARCH_EXCEPTIONS.get(n, f"IRQ {n - schema.FIRST_IRQ}" if n >= schema.FIRST_IRQ else f"exception {n}") for n in numbers],
        index=numbers, dtype="string",
    )  # fmt: skip
    return named.reindex(numbers).fillna(fallback).astype("string")


class Context:
    """The trace with its derived columns, its metadata and the analysis options."""

    def __init__(self, frame: pd.DataFrame, metadata: dict[str, str], config: AnalysisConfig) -> None:
        self.metadata = metadata
        self.config = config
        bits = metadata.get(schema.META_PRIORITY_BITS)
        self.priority_bits = int(bits) if bits and bits.isdigit() else None
        self.exception_names = _exception_names(frame)
        self.frame = frame.reset_index(drop=True)[[c for c in WORKING_COLUMNS if c in frame]].copy(deep=False)
        self._codes = {c: pd.factorize(self.frame[c]) for c in ("event", "kind", "role")}
        self.shared: dict[str, object] = {}  # intermediate results several rules use (lock events)
        self._derive()

    # --- derived columns -------------------------------------------------------------------

    def _derive(self) -> None:
        f = self.frame
        ipsr = f["ipsr"]
        known = ipsr.notna().to_numpy()
        ipsr_np = ipsr.fillna(-1).to_numpy(dtype=np.int64)
        f[IN_ISR] = ipsr_np > 0
        prio_by_ipsr = f["priority"].groupby(ipsr).first()
        f[PRIO] = f["priority"].fillna(ipsr.map(prio_by_ipsr)).astype("Int64")
        count = self._activation_counts(ipsr_np, f[IN_ISR].to_numpy())
        task_code = pd.factorize(f["task"])[0].astype(np.int64)  # -1 for no task
        act = np.where(ipsr_np > 0, (ipsr_np << 32) | count, -2 - task_code)
        f[ACT] = np.where(known, act, NO_CONTEXT)

    def _activation_counts(self, ipsr: np.ndarray, in_isr: np.ndarray) -> np.ndarray:
        """Per row, which activation of its exception it belongs to (0, 1, 2, …)."""
        f = self.frame
        enter = self.mask(event=Event.IRQ_ENTER.value)
        with_irq_rows = set(np.unique(ipsr[enter]).tolist())
        counts = np.array(pd.Series(enter).groupby(ipsr).cumsum(), dtype=np.int64)
        prio = f[PRIO].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
        for exc in np.unique(ipsr[in_isr]).tolist():  # per exception: a fallback without IRQ rows
            if exc in with_irq_rows:
                continue
            rows = np.flatnonzero(ipsr == exc)
            own = prio[rows[0]]
            # A row of thread mode, or of an exception that cannot preempt this one, ends it.
            ends = ipsr == 0
            if not np.isnan(own):
                ends |= (ipsr > 0) & (ipsr != exc) & ~(prio < own)
            marks = np.cumsum(ends)[rows]
            counts[rows] = np.cumsum(np.r_[True, marks[1:] != marks[:-1]])
        return counts

    # --- ISR activations -----------------------------------------------------------------------

    def positions(self, mask: np.ndarray, last: bool = False) -> pd.Series:
        """Per ISR activation id, the position of its first (or last) row within `mask`."""
        positions = np.flatnonzero(mask & self.frame[IN_ISR].to_numpy())
        acts = pd.Series(self.frame[ACT].to_numpy()[positions])
        keep = ~acts.duplicated(keep="last" if last else "first").to_numpy()
        return pd.Series(positions[keep], index=acts.to_numpy()[keep])

    @cached_property
    def activations(self) -> pd.DataFrame:
        """One row per ISR activation id: `ipsr`, `first_row`, `last_row` (positions), `timed`
        (it has IRQ rows), `exited` (an irq_exit), `closed` (seen to return), `switched`
        (thread mode resumed in another task or on another stack: a context switch)."""
        f = self.frame
        everything = np.ones(len(f), dtype=bool)
        acts = pd.DataFrame({"first_row": self.positions(everything), "last_row": self.positions(everything, last=True)})
        acts["ipsr"] = f["ipsr"].to_numpy()[acts["first_row"].to_numpy()].astype(np.int64)
        # IRQ rows open and close their activation: its first row is the enter, its last the exit.
        acts["timed"] = self.mask(event=Event.IRQ_ENTER.value)[acts["first_row"].to_numpy()]
        acts["exited"] = self.mask(event=Event.IRQ_EXIT.value)[acts["last_row"].to_numpy()]
        thread = np.flatnonzero((f["ipsr"] == 0).to_numpy(dtype=bool, na_value=False))
        last_of_exception = acts.groupby("ipsr")["last_row"].transform("max")
        later_thread = len(thread) > 0 and thread[-1]
        # Without irq_exit rows: a later row of thread mode or of the same exception proves it.
        acts["closed"] = acts["exited"] | (acts["last_row"] < later_thread) | (acts["last_row"] < last_of_exception)
        acts["switched"] = self._switched(acts, thread)
        return acts

    def _switched(self, acts: pd.DataFrame, thread: np.ndarray) -> np.ndarray:
        if len(thread) == 0:
            return np.zeros(len(acts), dtype=bool)
        f = self.frame
        # The task, and the stack thread mode runs on (CONTROL.SPSEL: the scheduler's start moves
        # thread mode from MSP to a task's PSP even when the task column already names the task).
        stack = (f["control"].fillna(0).astype(np.int64) & CONTROL_SPSEL).to_numpy()[thread]
        task = pd.factorize(f["task"])[0][thread]
        key = task * 4 + stack
        before = np.searchsorted(thread, acts["first_row"].to_numpy()) - 1
        after = np.searchsorted(thread, acts["last_row"].to_numpy(), side="right")
        known = (before >= 0) & (after < len(thread))
        return known & (key[np.clip(before, 0, None)] != key[np.clip(after, None, len(thread) - 1)])

    def is_closed(self, act: pd.Series) -> pd.Series:
        """Per row of `act`: whether that ISR activation is seen to return."""
        closed = self.activations["closed"]
        return act.isin(closed.index[closed.to_numpy()])

    def is_switch(self, act: pd.Series) -> pd.Series:
        switched = self.activations["switched"]
        return act.isin(switched.index[switched.to_numpy()])

    # --- selections ---------------------------------------------------------------------------

    def mask(
        self,
        event: str | Iterable[str] | None = None,
        kind: str | Iterable[str] | None = None,
        role: str | Iterable[str] | None = None,
        isr: bool = False,
    ) -> np.ndarray:
        """Boolean array: rows whose event, kind and role are among the given values (None: any),
        in handler mode only with `isr`."""
        selected = self.frame[IN_ISR].to_numpy().copy() if isr else np.ones(len(self.frame), dtype=bool)
        for column, wanted in (("event", event), ("kind", kind), ("role", role)):
            if wanted is None:
                continue
            codes, uniques = self._codes[column]
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            selected &= np.isin(codes, np.flatnonzero(pd.Index(uniques).isin(values)))
        return selected

    def select(
        self,
        event: str | Iterable[str] | None = None,
        kind: str | Iterable[str] | None = None,
        role: str | Iterable[str] | None = None,
        isr: bool = False,
    ) -> pd.DataFrame:
        return self.frame[self.mask(event, kind, role, isr)]

    # --- labels, computed only for the rows a rule reports -----------------------------------

    def names(self, rows: pd.DataFrame) -> pd.Series:
        return rows["ipsr"].map(self.exception_names).astype("string")

    def labels(self, rows: pd.DataFrame) -> pd.Series:
        """`OTG_FS (IRQ 67, priority 6)`, `SysTick (exception 15, priority 1)`, `task led`, `Thread`.

        Built once per distinct (exception, task, priority) and spread to the rows."""
        same = rows.groupby(["ipsr", "task", PRIO], dropna=False, sort=False).ngroup().to_numpy()
        _, first = np.unique(same, return_index=True)  # ngroup ids are 0…n-1
        distinct = rows.iloc[first]
        ipsr = distinct["ipsr"]
        prio = (", priority " + distinct[PRIO].astype("string")).fillna("")
        number = ("IRQ " + (ipsr - schema.FIRST_IRQ).astype("string")).where(
            ipsr >= schema.FIRST_IRQ, "exception " + ipsr.astype("string")
        )
        isr = self.names(distinct) + " (" + number + prio + ")"
        thread = ("task " + distinct["task"]).fillna("Thread")
        labels = thread.where(ipsr == 0, isr).astype("string").to_numpy()
        return pd.Series(labels[same] if len(rows) else [], index=rows.index, dtype="string")

    def handlers(self, rows: pd.DataFrame) -> pd.Series:
        """The running handler's function (the frame before `<exception>`), else the exception."""
        handler = rows["callpath"].str.extract(rf"(?:^|;)([^;]+);{re.escape(EXCEPTION_MARK)}", expand=False)
        return handler.fillna(self.names(rows)).astype("string")

    # --- shared helpers ----------------------------------------------------------------------

    def outermost_calls(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Drop `call` rows nested in another call of the same set (malloc → _malloc_r).

        The call path says it where the trace has one: another function of the set among the
        running context's own frames (its own frame aside; inlined frames may come before it).
        Without a call path: an earlier call of the set in the same activation without its return.
        """
        calls = rows[rows["event"] == Event.CALL.value]
        if calls.empty:
            return calls
        paths = _arrow(own_paths(calls["callpath"]))
        symbols = calls["symbol"].to_numpy(dtype=object, na_value=None)
        nested = np.zeros(len(calls), dtype=bool)
        for name in calls["symbol"].dropna().unique():  # per function of the set, not per row
            nested |= _has_frame(paths, name) & (symbols != name)
        with_returns = rows[rows["event"].isin([Event.CALL.value, Event.RETURN.value])]
        if (with_returns["event"] == Event.RETURN.value).any():
            previous = with_returns.groupby(ACT)["event"].shift()
            open_before = (previous == Event.CALL.value).fillna(False).astype(bool)
            nested |= (open_before.reindex(calls.index) & calls["callpath"].isna()).to_numpy(dtype=bool)
        return calls[~nested]

    def frame_depth(self, rows: pd.DataFrame) -> pd.Series:
        """How many frames of the running context's own call path (NA without a call path)."""
        paths = _arrow(own_paths(rows["callpath"]))
        depth = pc.add(pc.count_substring(paths, SEP), 1)
        return pd.Series(depth.to_numpy(zero_copy_only=False), index=rows.index).astype("Int64")

    def logical_priority(self, raw: int) -> int | None:
        """A raw 8-bit priority (BASEPRI, IPR) in implemented bits (needs priority_bits)."""
        return None if self.priority_bits is None else raw >> (8 - self.priority_bits)
