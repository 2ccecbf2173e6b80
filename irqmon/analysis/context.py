"""Columns every rule shares, computed once per analysis: activations, priorities, contexts.

Derived columns added to the trace frame:
- `act` — the execution context a row belongs to: one id per ISR activation (from the
  `irq_enter`/`irq_exit` rows, or, on traces without them, from `ipsr` changes), one per RTOS
  task in thread mode (one for bare-metal thread mode).
- `in_isr` — the row runs in handler mode (`ipsr` > 0).
- `prio` — the active exception's priority, filled from other rows of the same exception.
- `exc_name` — the exception's name (trace's `exception` column, else the architectural name).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from irqmon import schema
from irqmon.schema import Event

ACT = "act"
IN_ISR = "in_isr"
PRIO = "prio"
EXC_NAME = "exc_name"
NO_CONTEXT = np.iinfo(np.int64).min  # rows without ipsr (config rows)
EXCEPTION_MARK = "<exception>"
CONTROL_SPSEL = 0x2  # CONTROL bit: thread mode uses the process stack

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


def own_frames(callpath: pd.Series) -> pd.Series:
    """The running context's frames of each call path (an ISR's stops at `<exception>`), as lists."""
    own = callpath.str.replace(rf"(?:^|;){re.escape(EXCEPTION_MARK)}(?:;.*)?$", "", regex=True)
    return own.str.split(schema.CALLPATH_SEPARATOR)


class Context:
    """The trace with its derived columns, its metadata and the analysis options."""

    def __init__(self, frame: pd.DataFrame, metadata: dict[str, str], config: AnalysisConfig) -> None:
        self.metadata = metadata
        self.config = config
        bits = metadata.get(schema.META_PRIORITY_BITS)
        self.priority_bits = int(bits) if bits and bits.isdigit() else None
        self.frame = frame.reset_index(drop=True).copy(deep=False)
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
        names = f["exception"].groupby(ipsr).first()
        arch = ipsr.map(ARCH_EXCEPTIONS).astype("string")
        irq = ("IRQ " + (ipsr - schema.FIRST_IRQ).astype("string")).where(ipsr >= schema.FIRST_IRQ)
        f[EXC_NAME] = f["exception"].fillna(ipsr.map(names)).fillna(arch).fillna(irq).astype("string")

        count = self._activation_counts(ipsr_np, f[IN_ISR].to_numpy())
        task_code = pd.factorize(f["task"])[0].astype(np.int64)  # -1 for no task
        act = np.where(ipsr_np > 0, (ipsr_np << 32) | count, -2 - task_code)
        f[ACT] = np.where(known, act, NO_CONTEXT)

    def _activation_counts(self, ipsr: np.ndarray, in_isr: np.ndarray) -> np.ndarray:
        """Per row, which activation of its exception it belongs to (0, 1, 2, …)."""
        f = self.frame
        event = f["event"].to_numpy(dtype=object)
        enter = event == Event.IRQ_ENTER.value
        counts = np.zeros(len(f), dtype=np.int64)
        with_irq_rows = set(np.unique(ipsr[enter]).tolist())
        by_ipsr = pd.Series(enter).groupby(ipsr).cumsum().to_numpy(dtype=np.int64)
        counts[:] = by_ipsr
        prio = f[PRIO].astype("Float64").fillna(np.nan).to_numpy(dtype=float)
        for exc in np.unique(ipsr[in_isr]).tolist():
            if exc in with_irq_rows:
                continue
            rows = np.flatnonzero(ipsr == exc)
            own = prio[rows[0]] if len(rows) else np.nan
            # A row of thread mode, or of an exception that cannot preempt this one, ends it.
            ends = ipsr == 0
            if not np.isnan(own):
                ends |= (ipsr > 0) & (ipsr != exc) & ~(prio < own)
            marks = np.cumsum(ends)[rows]
            new = np.r_[True, marks[1:] != marks[:-1]]
            counts[rows] = np.cumsum(new)
        return counts

    # --- selections ---------------------------------------------------------------------------

    def select(
        self,
        event: str | Iterable[str] | None = None,
        kind: str | Iterable[str] | None = None,
        role: str | Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Rows whose event, kind and role are among the given values (None: any)."""
        mask = np.ones(len(self.frame), dtype=bool)
        for column, wanted in (("event", event), ("kind", kind), ("role", role)):
            if wanted is None:
                continue
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            mask &= self.frame[column].isin(values).to_numpy(dtype=bool, na_value=False)
        return self.frame[mask]

    def is_closed(self, act: pd.Series) -> pd.Series:
        """Per row of `act`: whether that ISR activation is seen to return."""
        closed = self.closed_activations
        return act.isin(closed.index[closed.to_numpy(dtype=bool)])

    @cached_property
    def switched_task(self) -> pd.Series:
        """Per ISR activation id: whether thread mode resumed in another task than the one it
        preempted (a context switch: SVCall starting the scheduler, PendSV, a task woken)."""
        f = self.frame
        thread = np.flatnonzero((f["ipsr"] == 0).to_numpy(dtype=bool, na_value=False))
        # The task, and the stack thread mode runs on (CONTROL.SPSEL: the scheduler's start moves
        # thread mode from MSP to a task's PSP even when the task column already names the task).
        stack = (f["control"].fillna(0).astype(np.int64) & CONTROL_SPSEL).astype("string")
        tasks = (f["task"].fillna("") + ":" + stack).to_numpy(dtype=object)[thread]
        isr = f[f[IN_ISR]]
        first = isr.groupby(ACT)["seq"].idxmin()
        last = isr.groupby(ACT)["seq"].idxmax()
        before = np.searchsorted(thread, first.to_numpy()) - 1
        after = np.searchsorted(thread, last.to_numpy(), side="right")
        known = (before >= 0) & (after < len(thread))
        safe_before, safe_after = np.clip(before, 0, None), np.clip(after, None, max(len(thread) - 1, 0))
        if len(thread) == 0:
            return pd.Series(False, index=first.index)
        return pd.Series(known & (tasks[safe_before] != tasks[safe_after]), index=first.index)

    @cached_property
    def closed_activations(self) -> pd.Series:
        """Per ISR activation id: whether the trace shows it returned."""
        f = self.frame
        isr = f[f[IN_ISR]]
        exits = (isr["event"] == Event.IRQ_EXIT.value).fillna(False).groupby(isr[ACT]).any()
        last = isr.groupby(ACT)["seq"].max()
        # Without irq_exit rows: a later row of thread mode or of the same exception proves it.
        later_thread = f.loc[f["ipsr"] == 0, "seq"].max() if (f["ipsr"] == 0).any() else -1
        next_same = isr.groupby("ipsr")["seq"].max()
        exc_of_act = isr.groupby(ACT)["ipsr"].first()
        same_later = next_same.reindex(exc_of_act.to_numpy()).to_numpy() > last.to_numpy()
        return exits | pd.Series((last.to_numpy() < later_thread) | same_later, index=last.index)

    # --- labels, computed only for the rows a rule reports -----------------------------------

    def labels(self, rows: pd.DataFrame) -> pd.Series:
        """`OTG_FS (IRQ 67, priority 6)`, `SysTick (exception 15, priority 1)`, `task led`, `Thread`."""
        ipsr = rows["ipsr"]
        prio = (", priority " + rows[PRIO].astype("string")).fillna("")
        number = ("IRQ " + (ipsr - schema.FIRST_IRQ).astype("string")).where(
            ipsr >= schema.FIRST_IRQ, "exception " + ipsr.astype("string")
        )
        isr = rows[EXC_NAME] + " (" + number + prio + ")"
        thread = ("task " + rows["task"]).fillna("Thread")
        return thread.where(ipsr == 0, isr).astype("string")

    def handlers(self, rows: pd.DataFrame) -> pd.Series:
        """The running handler's function (the frame before `<exception>`), else the exception."""
        handler = rows["callpath"].str.extract(rf"(?:^|;)([^;]+);{re.escape(EXCEPTION_MARK)}", expand=False)
        return handler.fillna(rows[EXC_NAME]).astype("string")

    # --- shared helpers ----------------------------------------------------------------------

    def outermost_calls(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Drop `call` rows nested in another call of the same set (malloc → _malloc_r).

        The call path says it where the trace has one (only the running context's own frames
        count); otherwise an earlier call of the set in the same activation without its return.
        """
        calls = rows[rows["event"] == Event.CALL.value]
        if calls.empty:
            return calls
        frames = own_frames(calls["callpath"]).explode()
        in_set = frames.isin(calls["symbol"].dropna().unique()).fillna(False).astype(bool)
        itself = (frames == calls["symbol"].reindex(frames.index)).fillna(False).astype(bool)
        # Another call of the set among the frames (the function's own frame, if shown, aside).
        others = in_set.groupby(level=0).sum() - itself.groupby(level=0).any().astype(int)
        nested = (others.reindex(calls.index).fillna(0) > 0).astype(bool)
        with_returns = rows[rows["event"].isin([Event.CALL.value, Event.RETURN.value])]
        if (with_returns["event"] == Event.RETURN.value).any():
            previous = with_returns.groupby(ACT)["event"].shift()
            open_before = (previous == Event.CALL.value).fillna(False).astype(bool)
            fallback = open_before.reindex(calls.index) & calls["callpath"].isna()
            nested |= fallback
        return calls[~nested.to_numpy()]

    def frame_depth(self, rows: pd.DataFrame) -> pd.Series:
        """How many frames of the running context's own call path (NA without a call path)."""
        return own_frames(rows["callpath"]).str.len().astype("Int64")

    def raw_priority(self, logical: int) -> int | None:
        """The 8-bit register value of a priority in implemented bits (needs priority_bits)."""
        return None if self.priority_bits is None else logical << (8 - self.priority_bits)

    def logical_priority(self, raw: int) -> int | None:
        return None if self.priority_bits is None else raw >> (8 - self.priority_bits)
