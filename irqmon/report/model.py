"""What the report draws, computed once from a trace: activations, who ran when, masks, locks, heap.

No plotting here (the Perfetto export uses it too). Everything is vectorized over whole
columns; intervals are numpy arrays so a trace of a million rows stays fast.

- activations: the analyzer's ISR activations (`Context.activations`) as time intervals with
  their nesting depth and the activation each one preempted.
- segments: the timeline cut at every entry and exit, each piece naming who ran
  (an activation, or thread mode and its task): "self" time, preemption and CPU share.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from irqmon import schema
from irqmon.analysis.context import IN_ISR, AnalysisConfig, Context
from irqmon.analysis.locks import LOCK, STATE, contended, lock_events
from irqmon.schema import Event, Kind, Role

THREAD = -1  # `segments.running` value for thread mode
MAX_SYSCALL_CONFIG = "max_syscall_priority"


@dataclass(frozen=True)
class ReportModel:
    """A trace reduced to what the panels and the export need, over [start, end] seconds."""

    start: float
    end: float
    activations: pd.DataFrame  # ipsr, exception, priority, start, end, depth, closed, self_time
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

    @property
    def duration(self) -> float:
        return max(self.end - self.start, 0.0)

    def clipped(self, start: float | None, end: float | None) -> ReportModel:
        """The same model seen through a time window (intervals cut at its edges)."""
        lo = self.start if start is None else max(start, self.start)
        hi = self.end if end is None else min(end, self.end)
        if hi <= lo:
            raise ValueError(f"empty time window {lo:g}..{hi:g} s (trace: {self.start:g}..{self.end:g} s)")
        acts = _clip_intervals(self.activations, lo, hi)
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
        )

    def summary(self) -> pd.DataFrame:
        """Per exception, like a profiler: activations, total/self/max time, depth, CPU share.

        Thread mode and each task get a row too (time only). Sorted by self time, largest first.
        """
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


def build_model(ctx: Context) -> ReportModel:
    """The report's view of a whole trace, from the analyzer's context (the same activations,
    lock events and options the findings came from)."""
    f = ctx.frame
    times = f["time"].to_numpy(dtype=float)
    start, end = (float(times.min()), float(times.max())) if len(times) else (0.0, 0.0)
    acts = _activations(ctx, start, end)
    acts["exception"] = acts["ipsr"].map(ctx.exception_names).astype("string")
    acts["priority"] = acts["ipsr"].map(f["priority"].groupby(f["ipsr"]).first()).astype("Int64")
    segments = _segments(acts, f, start, end)
    acts = acts.assign(self_time=_self_times(acts, segments))
    holds, events = _lock_holds(ctx, end)
    config = ctx.config
    return ReportModel(
        start=start,
        end=end,
        activations=acts,
        segments=segments,
        lanes=_lanes(acts, segments),
        masks=_masks(f),
        locks=holds,
        lock_events=events,
        heap=_heap(ctx),
        max_syscall_priority=config.max_syscall_priority if config.max_syscall_priority is not None else _config_value(f, MAX_SYSCALL_CONFIG),
        config=config,
        metadata=dict(ctx.metadata),
        rows=len(f),
    )


def exception_label(name: str, ipsr: int, priority: object) -> str:
    """`I2C1_EV (IRQ 31, prio 3)`, `SysTick (exc 15, prio 1)`."""
    number = f"IRQ {ipsr - schema.FIRST_IRQ}" if ipsr >= schema.FIRST_IRQ else f"exc {ipsr}"
    prio = "" if priority is None or pd.isna(priority) else f", prio {int(priority)}"
    return f"{name} ({number}{prio})"


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
    with_irq_rows = bool(t.irq.any())
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


def _segments(acts: pd.DataFrame, f: pd.DataFrame, start: float, end: float) -> pd.DataFrame:
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
    segments["lane"] = _lane_names(acts, segments, f)
    return segments


def _lane_names(acts: pd.DataFrame, segments: pd.DataFrame, f: pd.DataFrame) -> pd.Series:
    """Exception pieces by the exception's name; thread pieces by the task of the first thread row
    in them (tasks only switch in an exception, so one piece is one task), else the task before."""
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
    thread_lanes = ("task " + task_names.astype("string")).fillna("Thread")
    exception_names = acts["exception"].to_numpy(dtype=object)[np.maximum(segments["running"].to_numpy(), 0)] if len(acts) else None
    return pd.Series(np.where(is_thread, thread_lanes.to_numpy(dtype=object), exception_names), index=segments.index, dtype="string")


def _self_times(acts: pd.DataFrame, segments: pd.DataFrame) -> np.ndarray:
    """Per activation (by index label), the time it ran itself, not preempted."""
    mine = segments[(segments["running"] != THREAD).to_numpy()]
    ran = (mine["end"] - mine["start"]).groupby(mine["running"].to_numpy()).sum()
    return ran.reindex(acts.index, fill_value=0.0).to_numpy(dtype=float)


def _lanes(acts: pd.DataFrame, segments: pd.DataFrame) -> pd.DataFrame:
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
    calls = ctx.outermost_calls(rows)
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


def _config_value(f: pd.DataFrame, name: str) -> int | None:
    rows = f[((f["event"] == Event.CONFIG.value) & (f["symbol"] == name)).fillna(False).to_numpy(dtype=bool)]
    values = rows["value"].dropna()
    return int(values.iloc[0]) if len(values) else None
