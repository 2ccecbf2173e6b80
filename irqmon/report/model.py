"""What the report draws, computed once from a trace: activations, who ran when, masks, locks, heap.

No plotting here (the Perfetto export uses it too). Everything is vectorized over whole
columns; intervals are numpy arrays so a trace of a million rows stays fast.

- activations: the analyzer's ISR activations (`Context.activations`) as time intervals with
  their nesting depth and the activation each one preempted.
- segments: the timeline cut at every entry and exit, each piece naming who ran
  (an activation, or thread mode and its task): "self" time, preemption and CPU share.
- halts: the times of the rows where a probe halted the core, for the caveat a halting capture
  needs (its handler times include the halts).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from irqmon import schema
from irqmon.analysis.context import IN_ISR, AnalysisConfig, Context
from irqmon.analysis.locks import LOCK, STATE, contended, lock_events
from irqmon.schema import Event, Kind, Role

if TYPE_CHECKING:
    from irqmon.report.streamed import TraceTotals

THREAD = -1  # `segments.running` value for thread mode
MAX_SYSCALL_CONFIG = "max_syscall_priority"
# Backends (the trace's `backend` metadata) that halt the core at every breakpoint and watchpoint hit.
HALTING_BACKENDS = frozenset({"gdb", "gdbmi", "rsp", "pyocd"})
P99 = 0.99
# The columns of every row the model reads (the rest only for some rows, such as lock and heap events).
MODEL_COLUMNS = ["time", "ipsr", "priority", "task", "basepri", "primask", "event", "symbol", "value"]


STATS_COLUMNS = ("exception", "ipsr", "priority", "count", "exec_min", "exec_median", "exec_p99", "exec_max",
                 "periods", "period_median", "period_min", "period_max", "jitter", "halts")  # fmt: skip


@dataclass(frozen=True)
class Halting:
    """A capture that halted the core at every hit: its backend, how many halts (one per hit row),
    and the estimated time one halt stopped the core (None when the trace cannot tell)."""

    backend: str
    halts: int
    per_halt: float | None

    @property
    def stopped(self) -> float | None:
        return None if self.per_halt is None else self.per_halt * self.halts


@dataclass(frozen=True)
class ReportModel:
    """A trace reduced to what the panels and the export need, over [start, end] seconds."""

    start: float
    end: float
    activations: pd.DataFrame  # ipsr, exception, priority, start, end, depth, closed, self_time, entered, complete, halts
    segments: pd.DataFrame  # start, end, running (activation index or THREAD), lane
    lanes: pd.DataFrame  # lane, kind ("thread"/"exception"), ipsr, priority, label; top to bottom
    masks: pd.DataFrame  # time, register ("basepri"/"primask"), value (change points only)
    locks: pd.DataFrame  # lock, holder, start, end (held intervals)
    lock_events: pd.DataFrame  # lock, time, role, contended, context
    heap: pd.DataFrame  # time, role, symbol, context, in_isr, size
    max_syscall_priority: int | None
    config: AnalysisConfig
    metadata: dict[str, str]
    rows: int
    halts: np.ndarray  # times of the rows where a probe halted the core (all but IRQ and config rows)
    # The whole trace's tables, streamed over its batches, when this model draws only a part of it.
    whole: TraceTotals | None = None

    @property
    def duration(self) -> float:
        return max(self.end - self.start, 0.0)

    def clipped(self, start: float | None, end: float | None) -> ReportModel:
        """The same model seen through a time window (intervals cut at its edges)."""
        lo = self.start if start is None else max(start, self.start)
        hi = self.end if end is None else min(end, self.end)
        if hi <= lo:
            raise ValueError(f"empty time window {lo:g}..{hi:g} s (trace: {self.start:g}..{self.end:g} s)")
        acts = self.activations
        # An activation cut by the window has no whole execution time, one begun before it no entry.
        acts = acts.assign(complete=acts["complete"] & (acts["start"] >= lo) & (acts["end"] <= hi), entered=acts["entered"] & (acts["start"] >= lo))
        acts = _clip_intervals(acts, lo, hi)
        segments = _clip_intervals(self.segments, lo, hi)
        return replace(
            self,
            start=lo,
            end=hi,
            activations=acts.assign(self_time=_self_times(acts, segments)),
            segments=segments,
            masks=_mask_window(self.masks, lo, hi),
            locks=_clip_intervals(self.locks, lo, hi),
            lock_events=self.lock_events[self.lock_events["time"].between(lo, hi)],
            heap=self.heap[self.heap["time"].between(lo, hi)],
            halts=self.halts[(self.halts >= lo) & (self.halts <= hi)],
        )

    def summary(self) -> pd.DataFrame:
        """Per exception, like a profiler: activations, total/self/max time, depth, CPU share.

        Thread mode and each task get a row too (time only). Sorted by self time, largest first.
        """
        if self.whole is not None:
            return self.whole.summary()
        acts = self.activations
        span = self.duration or 1.0
        per_exc = acts.groupby("ipsr").agg(
            exception=("exception", "first"), priority=("priority", "first"), count=("start", "size"),
            total=("duration", "sum"), self_time=("self_time", "sum"), max_time=("duration", "max"),
            max_depth=("depth", "max"), preempted=("preempted", "sum"),
        ).reset_index()  # fmt: skip
        per_exc["kind"] = "exception"
        thread = self.segments[self.segments["running"] == THREAD]
        per_task = thread.assign(duration=thread["end"] - thread["start"]).groupby("lane", sort=False)["duration"].sum()
        tasks = pd.DataFrame({"exception": per_task.index, "self_time": per_task.to_numpy(), "total": per_task.to_numpy(), "kind": "thread"})
        table = pd.concat([per_exc, tasks], ignore_index=True)
        table["share"] = table["self_time"] / span
        return table.sort_values(["self_time", "exception"], ascending=[False, True], ignore_index=True)

    def isr_stats(self) -> pd.DataFrame:
        """Per exception: execution time (self time: nested preemption excluded) of the activations
        entered and exited inside the trace — count, min, median, p99, max — and the period
        between successive entries — count, median, min, max and jitter (standard deviation).
        Also how many halts fell inside its activations. Most urgent first."""
        if self.whole is not None:
            return self.whole.isr_stats()
        acts = self.activations
        if acts.empty:
            return pd.DataFrame(columns=[*STATS_COLUMNS])
        per_exc = acts.groupby("ipsr", sort=False).agg(exception=("exception", "first"), priority=("priority", "first"))
        done = acts[acts["complete"].to_numpy(dtype=bool)]
        times = done.groupby("ipsr")["self_time"]
        execution = pd.DataFrame({"count": times.size(), "exec_min": times.min(), "exec_median": times.median(),
                                  "exec_p99": times.quantile(P99), "exec_max": times.max(),
                                  "halts": done.groupby("ipsr")["halts"].sum()})  # fmt: skip
        entries = acts[acts["entered"].to_numpy(dtype=bool)].sort_values(["ipsr", "start"])
        periods = entries.assign(period=entries.groupby("ipsr")["start"].diff()).dropna(subset=["period"]).groupby("ipsr")["period"]
        period = pd.DataFrame({"periods": periods.size(), "period_median": periods.median(), "period_min": periods.min(),
                               "period_max": periods.max(), "jitter": periods.std(ddof=0)})  # fmt: skip
        table = per_exc.join(execution).join(period)
        table[["count", "periods", "halts"]] = table[["count", "periods", "halts"]].fillna(0).astype(np.int64)
        table = table.reset_index()
        table["rank"] = table["priority"].astype("Float64").fillna(np.inf).astype(float)
        return table.sort_values(["rank", "ipsr"], ignore_index=True)[[*STATS_COLUMNS]]

    def cpu_load(self, window: float) -> pd.DataFrame:
        """Per window of `window` seconds (the index: its start), the share of it each exception
        ran itself (columns, by name; nested preemption counted for the one that ran): together,
        the share of time in handler mode. The last window may be shorter (shares of its length)."""
        if self.whole is not None:
            return self.whole.cpu_load()
        edges = load_edges(self.start, self.end, window)
        lengths = np.diff(edges)
        lengths[lengths <= 0] = np.nan
        ran = self.segments[(self.segments["running"] != THREAD).to_numpy()]
        shares = {}
        for lane, mine in ran.groupby("lane", sort=False):  # one vectorized pass per exception
            shares[str(lane)] = np.clip(busy_per_bin(mine["start"].to_numpy(), mine["end"].to_numpy(), edges) / lengths, 0.0, 1.0)
        return pd.DataFrame(shares, index=pd.Index(edges[:-1], name="start"))

    def halting(self) -> Halting | None:
        """What the capture's halts did to the times, when its backend halts the core at each hit."""
        backend = self.metadata.get(schema.META_BACKEND)
        if backend not in HALTING_BACKENDS:
            return None
        if self.whole is not None:
            return self.whole.halting(backend)
        return Halting(backend, len(self.halts), _halt_cost(self.activations))


def build_model(ctx: Context, span: tuple[float, float] | None = None, thread_lane: str | None = None) -> ReportModel:
    """The report's view of a whole trace, from the analyzer's context (the same activations,
    lock events and options the findings came from). For a part of a trace read in batches:
    `span`, the (start, end) seconds its rows cover (default: their first and last time), and
    `thread_lane`, the lane thread mode ran in last before it."""
    f = ctx.rows_at(np.arange(len(ctx.timeline.time)), MODEL_COLUMNS)
    times = f["time"].to_numpy(dtype=float)
    start, end = span if span is not None else (float(times.min()), float(times.max())) if len(times) else (0.0, 0.0)
    acts = _activations(ctx, start, end)
    acts["exception"] = acts["ipsr"].map(ctx.exception_names).astype("string")
    first_priority = ctx.before.facts.prio_by_ipsr if ctx.before else f["priority"].groupby(f["ipsr"]).first()
    acts["priority"] = acts["ipsr"].map(first_priority).astype("Int64")
    segments = _segments(acts, f, start, end, thread_lane)
    acts = acts.assign(self_time=_self_times(acts, segments))
    halting = ~ctx.timeline.irq & (~f["event"].isin([Event.CONFIG.value, Event.COVERAGE.value])).to_numpy(dtype=bool, na_value=True)
    halts = np.sort(times[halting])
    # Per activation, the halts while it was active (its own and those of what preempted it).
    acts["halts"] = np.searchsorted(halts, acts["end"].to_numpy(), side="right") - np.searchsorted(halts, acts["start"].to_numpy(), side="left")
    holds, events = _lock_holds(ctx, end)
    config = ctx.config
    return ReportModel(
        start=start,
        end=end,
        activations=acts,
        segments=segments,
        lanes=lanes_of(acts, segments),
        masks=_masks(f),
        locks=holds,
        lock_events=events,
        heap=_heap(ctx),
        max_syscall_priority=config.max_syscall_priority if config.max_syscall_priority is not None else _config_value(ctx, f, MAX_SYSCALL_CONFIG),
        config=config,
        metadata=dict(ctx.metadata),
        rows=len(f),
        halts=halts,
    )


def exception_label(name: str, ipsr: int, priority: object) -> str:
    """`I2C1_EV (IRQ 31, prio 3)`, `SysTick (exc 15, prio 1)`."""
    number = f"IRQ {ipsr - schema.FIRST_IRQ}" if ipsr >= schema.FIRST_IRQ else f"exc {ipsr}"
    prio = "" if priority is None or pd.isna(priority) else f", prio {int(priority)}"
    return f"{name} ({number}{prio})"


EVENT_COLUMNS = ["seq", "time", "event", "kind", "role", "symbol", "ipsr", "task", "value", "old_value", "source", IN_ISR]


def rows_around(ctx: Context, seq: int, before: int = 5, after: int = 5) -> pd.DataFrame:
    """The trace rows around the row numbered `seq` (`before` rows before it, `after` after), with
    `context` (`I2C1_EV`, `task led`, `Thread`) and `marked` (the row itself); empty when the
    trace has no such row."""
    count = len(ctx.timeline.time)
    at = seq  # a trace numbers its rows 0, 1, 2, …; else (rows left out) look it up
    if not (0 <= at < count and int(ctx.rows_at(np.array([at]), ["seq"])["seq"].iloc[0]) == seq):
        seqs = ctx.rows_at(np.arange(count), ["seq"])["seq"].to_numpy(dtype=np.int64)
        at = int(np.searchsorted(seqs, seq))  # seq only grows along the trace
        if at >= count or seqs[at] != seq:
            return pd.DataFrame(columns=[*EVENT_COLUMNS, "context", "marked"])
    positions = np.arange(max(at - before, 0), min(at + after + 1, count))
    return event_rows_at(ctx, positions).assign(marked=positions == at)


def event_rows_at(ctx: Context, positions: np.ndarray) -> pd.DataFrame:
    """The rows at `positions` as a finding's nearby events show them: `EVENT_COLUMNS` and `context`."""
    rows = ctx.rows_at(positions, EVENT_COLUMNS)
    context = _context_names(ctx, rows).astype(object)
    return rows.assign(context=context.where(rows["ipsr"].notna().to_numpy(dtype=bool), None))


def load_window(duration: float, windows: int = 150) -> float:
    """A round window length (1, 2 or 5 × 10^k s) giving about `windows` windows over `duration`."""
    raw = max(duration, 1e-9) / windows
    power = 10.0 ** np.floor(np.log10(raw))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9)))


def load_edges(start: float, end: float, window: float) -> np.ndarray:
    """The edges of the load windows of `window` seconds from `start` to `end` (the last may be shorter)."""
    count = max(int(np.ceil(max(end - start, 0.0) / window - 1e-9)), 1)
    edges = np.minimum(start + np.arange(count + 1) * window, end)
    edges[-1] = end
    return edges


def busy_per_bin(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Seconds covered by the intervals in each bin (overlaps between intervals counted once each)."""
    s, e = np.sort(starts), np.sort(ends)
    cs, ce = np.r_[0.0, np.cumsum(s)], np.r_[0.0, np.cumsum(e)]
    ks, ke = np.searchsorted(s, edges), np.searchsorted(e, edges)
    covered = (ks * edges - cs[ks]) - (ke * edges - ce[ke])
    return np.diff(covered)


def _halt_cost(acts: pd.DataFrame) -> float | None:
    """How long one halt stops the core, from the trace itself: an activation with halts inside
    lasted longer than the median one of the same exception without any, by about its halts
    times this. The median over those activations; None when no exception ran both ways."""
    done = acts[acts["complete"].to_numpy(dtype=bool)]
    clean = done[done["halts"] == 0].groupby("ipsr")["duration"].median()
    halted = done[(done["halts"] > 0).to_numpy() & done["ipsr"].isin(clean.index).to_numpy()]
    if halted.empty:
        return None
    extra = (halted["duration"].to_numpy() - clean.reindex(halted["ipsr"]).to_numpy()) / halted["halts"].to_numpy()
    return max(float(np.median(extra)), 0.0)


# --- activations ----------------------------------------------------------------------------


def _activations(ctx: Context, start: float, end: float) -> pd.DataFrame:
    """The analyzer's activations (`Context.activations`) as intervals in time, with `depth`
    (1 = preempted thread mode) and `parent` (the activation it preempted, or THREAD).

    With IRQ rows, an activation spans its irq_enter to its irq_exit: one entered before the
    capture starts at the trace's start, one still running at its end ends there. Without them
    (no exception trace), an activation spans its halting rows."""
    t = ctx.timeline
    found = ctx.activations
    first, last = found["first_row"].to_numpy(), found["last_row"].to_numpy()
    entered, exited = t.enter[first], t.exit[last]
    with_irq_rows = bool(ctx.before.facts.irq_exceptions) if ctx.before else bool(t.irq.any())
    if with_irq_rows:  # activations seen only through halting rows have no interval
        keep = entered | exited
        found, first, last, entered, exited = found[keep], first[keep], last[keep], entered[keep], exited[keep]
        closed = exited
    else:
        entered = exited = np.ones(len(found), dtype=bool)
        closed = found["closed"].to_numpy(dtype=bool)
    n_rows = len(t.time)
    acts = pd.DataFrame(
        {
            "ipsr": found["ipsr"].to_numpy(dtype=np.int64),
            "start": np.where(entered, t.time[first], start),
            "end": np.where(exited, t.time[last], end),
            "closed": closed,
            # Entered and exited inside the trace, with IRQ rows: its execution time is known.
            "entered": entered & with_irq_rows,
            "complete": entered & exited & with_irq_rows,
            # Running when the capture started: before every other, the outermost first.
            "enter_pos": np.where(entered, first, -1 - last),
            "exit_pos": np.where(exited, last, n_rows),
        }
    )
    acts = acts.sort_values("enter_pos", ignore_index=True)
    acts["depth"] = _depths(acts["enter_pos"].to_numpy(), acts["exit_pos"].to_numpy())
    acts["parent"] = _parents(acts)
    acts["duration"] = acts["end"] - acts["start"]
    acts["preempted"] = np.bincount(acts["parent"].to_numpy()[acts["parent"].to_numpy() >= 0], minlength=len(acts)) > 0
    return acts


def _depths(enter_pos: np.ndarray, exit_pos: np.ndarray) -> np.ndarray:
    """Per activation (sorted by `enter_pos`), how deep it is nested: 1 + the activations that
    entered before it and had not yet returned."""
    entered_before = np.arange(len(enter_pos))
    returned_before = np.searchsorted(np.sort(exit_pos), enter_pos, side="left")
    return entered_before - returned_before + 1


def _parents(acts: pd.DataFrame) -> np.ndarray:
    """The activation each one preempted: the latest-entered one a level below."""
    parent = np.full(len(acts), THREAD, dtype=np.int64)
    depth = acts["depth"].to_numpy()
    pos = acts["enter_pos"].to_numpy()
    for level in np.unique(depth[depth > 1]):  # one sorted search per nesting level
        lower = np.flatnonzero(depth == level - 1)
        mine = np.flatnonzero(depth == level)
        at = np.searchsorted(pos[lower], pos[mine], side="right") - 1
        parent[mine[at >= 0]] = lower[at[at >= 0]]
    return parent


def _segments(acts: pd.DataFrame, f: pd.DataFrame, start: float, end: float, thread_lane: str | None = None) -> pd.DataFrame:
    """Cut the timeline at every entry and exit; each piece names the activation that ran."""
    n = len(acts)
    bounds = np.r_[acts["start"], acts["end"]]
    # After an entry its activation runs; after an exit, the one it preempted.
    running_after = np.r_[np.arange(n), acts["parent"].to_numpy()]
    key = np.r_[acts["enter_pos"], acts["exit_pos"]].astype(float)
    order = np.argsort(key, kind="stable")
    bounds, running_after = bounds[order], running_after[order]
    starts = np.r_[start, bounds]
    ends = np.r_[bounds, end]
    running = np.r_[THREAD, running_after]
    keep = ends > starts
    segments = pd.DataFrame({"start": starts[keep], "end": ends[keep], "running": running[keep]})
    segments["lane"] = _lane_names(acts, segments, f, thread_lane)
    return segments


def _lane_names(acts: pd.DataFrame, segments: pd.DataFrame, f: pd.DataFrame, thread_lane: str | None = None) -> pd.Series:
    """Exception pieces by the exception's name; thread pieces by the task of the first thread row
    in them (tasks only switch in an exception, so one piece is one task), else the task before
    (`thread_lane` before the first)."""
    thread = f[(f["ipsr"] == 0).to_numpy(dtype=bool, na_value=False)]
    times, tasks = thread["time"].to_numpy(dtype=float), thread["task"].to_numpy(dtype=object, na_value=None)
    is_thread = (segments["running"] == THREAD).to_numpy()
    task = np.full(len(segments), None, dtype=object)
    if len(times):
        at = np.searchsorted(times, segments["start"].to_numpy(), side="left")
        inside = at < len(times)
        at = np.minimum(at, len(times) - 1)
        inside &= times[at] <= segments["end"].to_numpy()
        task[inside] = tasks[at[inside]]
    task_names = pd.Series(task, dtype="object").where(is_thread).ffill().where(is_thread)
    thread_lanes = ("task " + task_names.astype("string")).fillna(thread_lane or "Thread")
    exception_names = acts["exception"].to_numpy(dtype=object)[np.maximum(segments["running"].to_numpy(), 0)] if len(acts) else None
    return pd.Series(np.where(is_thread, thread_lanes.to_numpy(dtype=object), exception_names), index=segments.index, dtype="string")


def _self_times(acts: pd.DataFrame, segments: pd.DataFrame) -> np.ndarray:
    """Per activation (by index label), the time it ran itself, not preempted."""
    mine = segments[(segments["running"] != THREAD).to_numpy()]
    ran = (mine["end"] - mine["start"]).groupby(mine["running"].to_numpy()).sum()
    return ran.reindex(acts.index, fill_value=0.0).to_numpy(dtype=float)


def lanes_of(acts: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
    """Thread/task lanes at the bottom, exceptions above them, most urgent on top."""
    exc = acts.groupby("ipsr").agg(exception=("exception", "first"), priority=("priority", "first")).reset_index()
    exc["rank"] = exc["priority"].astype("Float64").fillna(-1.0).astype(float)
    exc = exc.sort_values(["rank", "ipsr"], ascending=[True, False])
    exc_lanes = pd.DataFrame(
        {
            "lane": exc["exception"].astype("string"),
            "kind": "exception",
            "ipsr": exc["ipsr"].astype("Int64"),
            "priority": exc["priority"].astype("Int64"),
            "label": [exception_label(n, int(i), p) for n, i, p in zip(exc["exception"], exc["ipsr"], exc["priority"])],
        }
    )
    thread_names = segments.loc[(segments["running"] == THREAD).to_numpy(), "lane"].dropna().unique().tolist()
    threads = pd.DataFrame({"lane": pd.Series(sorted(thread_names), dtype="string"), "kind": "thread", "ipsr": pd.Series([0] * len(thread_names), dtype="Int64"), "priority": pd.Series([pd.NA] * len(thread_names), dtype="Int64")})
    threads["label"] = threads["lane"]
    return pd.concat([exc_lanes, threads], ignore_index=True)


def _clip_intervals(frame: pd.DataFrame, lo: float, hi: float) -> pd.DataFrame:
    inside = (frame["end"] >= lo) & (frame["start"] <= hi)
    out = frame[inside.to_numpy(dtype=bool)].copy()
    out["start"] = out["start"].clip(lower=lo)
    out["end"] = out["end"].clip(upper=hi)
    if "duration" in out:
        out["duration"] = out["end"] - out["start"]
    return out


# --- masks, locks, heap -----------------------------------------------------------------------


def _masks(f: pd.DataFrame) -> pd.DataFrame:
    """BASEPRI and PRIMASK at every row that carries them, kept where the value changes."""
    parts = []
    for register in ("basepri", "primask"):
        rows = f[f[register].notna().to_numpy(dtype=bool)]
        values = rows[register].to_numpy(dtype=np.int64)
        change = np.r_[True, values[1:] != values[:-1]] if len(values) else np.zeros(0, bool)
        parts.append(pd.DataFrame({"time": rows["time"].to_numpy(dtype=float)[change], "register": register, "value": values[change]}))
    return pd.concat(parts, ignore_index=True)


def _mask_window(masks: pd.DataFrame, lo: float, hi: float) -> pd.DataFrame:
    """Change points inside the window, plus the value each register had at its start."""
    before = masks[masks["time"] < lo].groupby("register").tail(1).assign(time=lo)
    return pd.concat([before, masks[masks["time"].between(lo, hi)]], ignore_index=True)


def _lock_holds(ctx: Context, end: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Held intervals of every HAL Lock and mutex (take → next release), and every lock event."""
    events = lock_events(ctx)
    empty_holds = pd.DataFrame({"lock": pd.Series(dtype="string"), "holder": pd.Series(dtype="string"), "start": pd.Series(dtype=float), "end": pd.Series(dtype=float)})
    if events.empty:
        return empty_holds, pd.DataFrame({"lock": pd.Series(dtype="string"), "time": pd.Series(dtype=float), "role": pd.Series(dtype="string"), "contended": pd.Series(dtype=bool), "context": pd.Series(dtype="string")})
    labels = _context_names(ctx, events)
    names = _lock_names(events)
    marked = pd.DataFrame(
        {
            "lock": names.to_numpy(),
            "time": events["time"].to_numpy(dtype=float),
            "role": events["role"].to_numpy(),
            "contended": contended(events).to_numpy(dtype=bool),
            "context": labels.to_numpy(),
        }
    )
    changes = events[events[STATE].to_numpy(dtype=bool)]
    change_labels = _context_names(ctx, changes)
    next_time = changes.groupby(LOCK, sort=False)["time"].shift(-1).fillna(end)
    takes = (changes["role"] == Role.ACQUIRE.value).to_numpy(dtype=bool)
    holds = pd.DataFrame(
        {
            "lock": names[changes.index].to_numpy()[takes],
            "holder": change_labels.to_numpy()[takes],
            "start": changes["time"].to_numpy(dtype=float)[takes],
            "end": next_time.to_numpy(dtype=float)[takes],
        }
    ).astype({"lock": "string", "holder": "string"})
    return holds, marked.astype({"lock": "string", "role": "string", "context": "string"})


def _lock_names(events: pd.DataFrame) -> pd.Series:
    """A HAL lock by its field (`hi2c1.Lock`), a mutex by its handle (`mutex 0x200000d0`)."""
    handle = events["address"].astype("Int64").map(lambda a: f"mutex 0x{a:x}", na_action="ignore").astype("string")
    return events["symbol"].where(events["kind"] == Kind.LOCK.value, handle).fillna(events[LOCK]).astype("string")


def _context_names(ctx: Context, rows: pd.DataFrame) -> pd.Series:
    """`I2C1_EV`, `task led`, `Thread`: the running context of each row, short."""
    thread = ("task " + rows["task"]).fillna("Thread")
    return thread.where(~rows[IN_ISR].to_numpy(dtype=bool), ctx.names(rows)).astype("string")


def _heap(ctx: Context) -> pd.DataFrame:
    rows = ctx.select(event=(Event.CALL.value, Event.RETURN.value), kind=Kind.HEAP.value)
    calls = ctx.outermost_calls(rows, [Kind.HEAP.value])
    return pd.DataFrame(
        {
            "time": calls["time"].to_numpy(dtype=float),
            "role": calls["role"].astype("string").to_numpy(),
            "symbol": calls["symbol"].astype("string").to_numpy(),
            "context": _context_names(ctx, calls).to_numpy(),
            "in_isr": calls[IN_ISR].to_numpy(dtype=bool),
            "size": calls["size"].astype("Float64").to_numpy(dtype=float, na_value=np.nan),
        }
    )


def _config_value(ctx: Context, f: pd.DataFrame, name: str) -> int | None:
    """The first value the trace's config rows give `name` (all the trace's, for a batch of it)."""
    if ctx.before:
        config = ctx.before.facts.config
        values = config.loc[(config["symbol"] == name).to_numpy(dtype=bool), "value"].dropna()
    else:
        values = f.loc[((f["event"] == Event.CONFIG.value) & (f["symbol"] == name)).fillna(False).to_numpy(dtype=bool), "value"].dropna()
    return int(values.iloc[0]) if len(values) else None
