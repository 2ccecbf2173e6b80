"""interrupt-storm: an IRQ re-entered back to back, taking the CPU from thread mode.

Why it is bad:
    A handler that returns without removing the cause of its interrupt (flag not cleared, data
    register not read, level-triggered line still asserted) is taken again at once. Everything
    less urgent, thread mode and the RTOS included, stops; a task holding a resource the handler
    needs never gets to release it, so the storm does not end by itself.

Example:
    I2C1_EV finds hi2c1.Lock held by the task and returns HAL_BUSY without clearing TXIS: the
    interrupt re-enters 150 times back to back while the task's 25 ms timeout cannot advance;
    later an error path sets XferISR to NULL and the next event has no handler (seed 004).

Time:
    Entries are timed on the time the core ran: a halting backend records how long it held the
    core stopped (`halted`), left out here, since a breakpoint stop stretches the host's clock
    inside the handler. A periodic tick (SysTick) is a storm only when its entries come faster than
    its configured period allows (`storm_tick_margin` times its rate): its period from its LOAD
    register and the core clock where the trace has both, else the median time between its entries.

Instead:
    Make every path through the handler clear (or disable) its interrupt source, including the
    error and busy paths; do not let the handler depend on a lock a task can hold (see
    isr-lock-contention); rate-limit noisy sources (disable the IRQ and re-arm from a task).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from irqmon.analysis.common import where
from irqmon.analysis.context import ACT, EXC_NAME, Context
from irqmon.analysis.findings import Finding, group_hits
from irqmon.analysis.locks import LOCK_NAME, contended, holder_labels, lock_events
from irqmon.analysis.registry import Rule
from irqmon.cortexm.exceptions import SYSTICK
from irqmon.cortexm.registers import SYST_CSR_CLKSOURCE, SYST_CSR_ENABLE
from irqmon.schema import CONFIG_SYSTICK_CONTROL, CONFIG_SYSTICK_RELOAD, META_CORE_CLOCK, Event

RULE = Rule(id="interrupt-storm", severity="error", summary="IRQ re-entered back to back, starving thread mode")


@dataclass(frozen=True)
class TickPeriod:
    """A periodic tick's period, and how it was learned."""

    seconds: float
    source: str


def tick_periods(ctx: Context) -> dict[int, TickPeriod]:
    """The exceptions that are periodic ticks, by number, with their periods: SysTick's from its
    reload value at the core clock where the trace has both, else the median time the core ran
    between its entries."""
    acts = ctx.activations
    starts = ctx.timeline.run_time[acts.loc[acts["ipsr"] == SYSTICK, "first_row"].to_numpy()]
    if len(starts) == 0:
        return {}
    configured = _configured_systick(ctx)
    if configured is not None:
        return {SYSTICK: configured}
    gaps = np.diff(starts)
    gaps = gaps[gaps > 0]
    return {SYSTICK: TickPeriod(float(np.median(gaps)), "the median time between its entries")} if len(gaps) else {}


def _configured_systick(ctx: Context) -> TickPeriod | None:
    """SysTick's period from its registers (config rows) and the core clock (metadata), where
    it counts the core clock and is enabled."""
    clock_text = ctx.metadata.get(META_CORE_CLOCK, "")
    rows = ctx.select(event=Event.CONFIG.value, columns=["symbol", "value"]).dropna()
    values = dict(zip(rows["symbol"], rows["value"].astype(np.int64)))  # the last read of each
    control, reload = values.get(CONFIG_SYSTICK_CONTROL), values.get(CONFIG_SYSTICK_RELOAD)
    if not clock_text.isascii() or not clock_text.isdigit() or int(clock_text) == 0 or control is None or not reload:
        return None
    if not control & SYST_CSR_ENABLE or not control & SYST_CSR_CLKSOURCE:
        return None  # stopped, or counting a reference clock the trace does not name
    clock = int(clock_text)
    return TickPeriod((int(reload) + 1) / clock, f"LOAD {int(reload)} at the {clock / 1e6:g} MHz core clock")


def candidate_runs(ctx: Context) -> pd.DataFrame:
    """The activations of runs long enough to be storms (`storm_runs`' columns; `run` numbers the
    runs across exceptions), by exception and in the order they start.

    Computed on arrays over every activation (most of a long trace's activations are in no storm):
    the frame holds only the candidates'."""
    cfg = ctx.config
    acts = ctx.activations
    ipsr, timed = acts["ipsr"].to_numpy(), acts["timed"].to_numpy()
    first_row, last_row = acts["first_row"].to_numpy(), acts["last_row"].to_numpy()
    start, end = ctx.timeline.run_time[first_row], ctx.timeline.run_time[last_row]
    back_to_back = _back_to_back(ctx, ipsr, first_row, last_row, start, end, timed)
    run = np.cumsum(~back_to_back)  # an exception's first activation starts a run
    busy = end - start
    window_entries, window_busy = _window_load(ipsr, start, busy, cfg.storm_window)
    keep = np.bincount(run)[run] >= cfg.storm_min_entries
    columns = {
        "ipsr": ipsr, "first_row": first_row, "last_row": last_row, "timed": timed, "start": start, "end": end,
        "back_to_back": back_to_back, "run": run, "busy": busy, "window_entries": window_entries, "window_busy": window_busy,
    }  # fmt: skip
    return pd.DataFrame({name: values[keep] for name, values in columns.items()}, index=acts.index[keep])


def _back_to_back(
    ctx: Context, ipsr: np.ndarray, first_row: np.ndarray, last_row: np.ndarray, start: np.ndarray, end: np.ndarray, timed: np.ndarray
) -> np.ndarray:
    """Per activation: it follows the previous activation of its exception with nothing of thread
    mode between them, and (timed ones) within `storm_gap` of its end."""
    follows = np.r_[False, ipsr[1:] == ipsr[:-1]]  # the activations are grouped by exception, in order
    prev_last = np.where(follows, np.r_[0, last_row[:-1]], 0)
    prev_end = np.where(follows, np.r_[np.nan, end[:-1]], np.nan)
    thread_rows = ctx.timeline.thread_rows
    thread_between = thread_rows[first_row] - thread_rows[prev_last]
    close = (start - prev_end <= ctx.config.storm_gap) | ~timed
    return follows & (thread_between == 0) & close


def _storm_rows(ctx: Context, acts: pd.DataFrame) -> pd.DataFrame:
    """For the activations of storms only: the first row with a call path, the last with a source line."""
    t = ctx.timeline
    halting = np.flatnonzero(~t.irq & np.isin(t.ipsr, acts["ipsr"].unique()))  # IRQ rows have neither
    inside = halting[pd.Series(t.act[halting]).isin(acts.index).to_numpy()]
    with_path, with_source = ctx.has_value("callpath", inside), ctx.has_value("source", inside)
    path_row = _per_activation(inside[with_path], t.act[inside[with_path]]).reindex(acts.index)
    last_source_row = _per_activation(inside[with_source], t.act[inside[with_source]], last=True).reindex(acts.index)
    return pd.DataFrame({"path_row": path_row, "last_source_row": last_source_row}, index=acts.index)


def _sources(ctx: Context, rows: pd.Series) -> np.ndarray:
    """The source line at each of `rows` (positions, NaN for none): strings, NA where none."""
    known = rows.notna().to_numpy()
    sources = np.full(len(rows), pd.NA, dtype=object)
    sources[known] = ctx.rows_at(rows[known].astype(np.int64).to_numpy(), ["source"])["source"].to_numpy()
    return sources


def _per_activation(positions: np.ndarray, act: np.ndarray, last: bool = False) -> pd.Series:
    """Per activation among the rows at `positions` (of activations `act`), the position of its
    first (or last) row."""
    keep = ~pd.Series(act).duplicated(keep="last" if last else "first").to_numpy()
    return pd.Series(positions[keep], index=act[keep])


def _window_load(ipsr: np.ndarray, start: np.ndarray, busy: np.ndarray, window: float) -> tuple[np.ndarray, np.ndarray]:
    """Per activation: entries of its exception, and their time in the handler, in the `window`
    seconds from its start (a sliding window anchored at every entry).

    All exceptions in one sorted search: each exception's times are offset past the previous
    exception's, so a window never reaches into another exception's entries."""
    in_order = np.all((ipsr[1:] > ipsr[:-1]) | ((ipsr[1:] == ipsr[:-1]) & (start[1:] >= start[:-1])))
    order = np.arange(len(start)) if in_order else np.lexsort((start, ipsr))  # lexsort is stable: the same order
    start = start[order]
    sorted_ipsr = ipsr[order]
    group = np.cumsum(np.r_[0, sorted_ipsr[1:] != sorted_ipsr[:-1]]) if len(order) else order  # 0, 1, … per exception
    span = (np.nanmax(start) - np.nanmin(start) if len(start) else 0.0) + 2 * window + 1.0
    keyed = start - np.nanmin(start, initial=0.0) + group * span
    busy = np.r_[0.0, np.cumsum(np.nan_to_num(busy[order]))]
    first = np.arange(len(order))
    last = np.searchsorted(keyed, keyed + window, side="left")
    entries, time_busy = np.empty(len(order), dtype=np.int64), np.empty(len(order))
    entries[order] = last - first
    time_busy[order] = busy[last] - busy[first]
    return entries, time_busy


def check(ctx: Context) -> list[Finding]:
    if ctx.activations.empty:
        return []
    acts = candidate_runs(ctx)
    cfg = ctx.config
    runs = acts.groupby(["ipsr", "run"], sort=False).agg(
        entries=("run", "size"), start=("start", "min"), end=("end", "max"), busy=("busy", "sum"),
        timed=("timed", "all"), first_row=("first_row", "min"), last_row=("last_row", "max"), peak=("window_entries", "max"),
        window_busy=("window_busy", "max"),
    )  # fmt: skip
    duration = (runs["end"] - runs["start"]).clip(lower=1e-9)
    runs["rate"] = runs["entries"] / duration
    runs["share"] = (runs["busy"] / duration).clip(upper=1.0)
    runs["duration"] = runs["end"] - runs["start"]
    runs["window_share"] = (runs["window_busy"] / cfg.storm_window).clip(upper=1.0)
    loud = (runs["window_share"] >= cfg.storm_share) | ~runs["timed"]
    if cfg.storm_rate is not None:
        loud |= runs["peak"] / cfg.storm_window >= cfg.storm_rate
    periods = tick_periods(ctx)
    exceptions = runs.index.get_level_values("ipsr")
    runs["period"] = [periods[e].seconds if e in periods else np.nan for e in exceptions]
    runs["period_from"] = [periods[e].source if e in periods else None for e in exceptions]
    runs["over_period"] = runs["rate"] * runs["period"]  # NaN: no period known
    within_period = (runs["over_period"] <= cfg.storm_tick_margin) & runs["timed"]
    storms = runs[(runs["entries"] >= cfg.storm_min_entries) & loud & ~within_period].reset_index()
    if ctx.coverage is not None and ctx.coverage.partial and not storms.empty:
        storms = storms[_thread_visible(ctx, storms)].reset_index(drop=True)
    if storms.empty:
        return []
    causes = _lock_causes(ctx, acts, storms)
    in_storm = acts["run"].isin(storms["run"]).to_numpy()  # a run's number is unique across exceptions
    acts = acts[in_storm].join(_storm_rows(ctx, acts[in_storm]))
    per_storm = acts.groupby(["ipsr", "run"]).agg(path_row=("path_row", "min"), last_source_row=("last_source_row", "last"))
    per_storm = per_storm.reindex(list(zip(storms["ipsr"], storms["run"])))
    # The storm's first row with a call path names the handler; else its first row.
    rows = per_storm["path_row"].fillna(pd.Series(storms["first_row"].to_numpy(), index=per_storm.index))
    rows = rows.astype(np.int64).to_numpy()
    hits = ctx.rows_at(rows)
    for column in ("entries", "duration", "rate", "share", "peak", "timed", "window_share", "period", "period_from", "over_period"):
        hits[column] = storms[column].to_numpy()
    hits["halts"], hits["halted"] = _halts_during(ctx, storms["first_row"].to_numpy(), storms["last_row"].to_numpy())
    hits["cause"] = causes
    hits["last_source"] = _sources(ctx, per_storm["last_source_row"])
    return group_hits(RULE, ctx, hits, site=(EXC_NAME,), title=_title, message=_message, evidence=_evidence)


def _halts_during(ctx: Context, first_row: np.ndarray, last_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per storm (its first and last rows): the halts the capture made in it, and the seconds it
    held the core stopped; NaN on a trace that records no halts."""
    t = ctx.timeline
    if t.halted is None or t.halts is None:
        return np.full(len(first_row), np.nan), np.full(len(first_row), np.nan)
    return (t.halts[last_row] - t.halts[first_row]).astype(float), t.halted[last_row] - t.halted[first_row]


def _thread_visible(ctx: Context, storms: pd.DataFrame) -> np.ndarray:
    """Per storm of a capture that armed its sites in turns: whether a site that saw thread mode
    somewhere in the trace was armed all through it. Without one, "thread mode did not run"
    is only the absence of rows a disarmed site could not write."""
    assert ctx.coverage is not None
    rows = ctx.select(event=(Event.CALL.value, Event.RETURN.value, Event.ACCESS.value), columns=["symbol", "ipsr"])
    thread = set(rows.loc[(rows["ipsr"] == 0).fillna(False).astype(bool), "symbol"].dropna().astype(str))
    # Coverage intervals are in the trace's own time; a storm's start and end leave halts out.
    starts, ends = ctx.timeline.time[storms["first_row"].to_numpy()], ctx.timeline.time[storms["last_row"].to_numpy()]
    return np.array([ctx.coverage.armed_throughout(thread, start, end) for start, end in zip(starts, ends)], dtype=bool)


def _lock_causes(ctx: Context, acts: pd.DataFrame, storms: pd.DataFrame) -> list[str | None]:
    """Per storm: 'found <lock> held by <context>' when its activations met a held lock."""
    events = lock_events(ctx)
    if events.empty:
        return [None] * len(storms)
    blocked = events.loc[contended(events), ["ipsr", ACT, LOCK_NAME, "held_row"]]
    blocked = blocked[blocked[ACT].isin(acts.index)].copy()
    blocked["run"] = blocked[ACT].map(acts["run"])
    first = blocked.groupby(["ipsr", "run"]).head(1).set_index(["ipsr", "run"])
    first = first.assign(holder=holder_labels(ctx, first.reset_index()).fillna("a context not in the trace").to_numpy())
    met = blocked.groupby(["ipsr", "run"])[ACT].nunique()
    keys = pd.MultiIndex.from_arrays([storms["ipsr"], storms["run"]])
    lock, holder, count = first[LOCK_NAME].reindex(keys), first["holder"].reindex(keys), met.reindex(keys)
    return [
        None if pd.isna(n) else f"its handler found {name} held by {who} in {int(n)} of {entries} entries"
        for name, who, n, entries in zip(lock, holder, count, storms["entries"])
    ]


def _title(first: pd.Series, group: pd.DataFrame) -> str:
    return f"{where(first)} re-entered {int(group['entries'].max())} times back to back"


def _message(first: pd.Series, group: pd.DataFrame) -> str:
    worst = group.loc[group["entries"].idxmax()]
    halted = (
        "" if pd.isna(worst["halts"]) else ", no halts in it" if worst["halts"] == 0
        else f", halted time left out: {int(worst['halts'])} halts held the core {worst['halted'] * 1e3:.3f} ms"
    )  # fmt: skip
    timing = (
        f" over {worst['duration'] * 1e3:.3f} ms the core ran ({worst['rate']:.0f} entries/s, "
        f"{worst['share']:.0%} of the time in the handler{halted})"
        if worst["timed"] else ""
    )  # fmt: skip
    tick = (
        f" It is a periodic tick of {worst['period'] * 1e3:.3f} ms ({worst['period_from']}): its entries came "
        f"{worst['over_period']:.1f} times as fast as that period allows."
        if pd.notna(worst["period"]) and worst["timed"] else ""
    )  # fmt: skip
    cause = worst["cause"] if isinstance(worst["cause"], str) else (
        f"the handler kept returning with its interrupt still pending (last traced line {worst['last_source']})"
        if isinstance(worst["last_source"], str) else "the handler kept returning with its interrupt still pending"
    )  # fmt: skip
    return f"{len(group)} storm(s); the longest: {int(worst['entries'])} entries{timing}, thread mode did not run.{tick} Likely cause: {cause}."


def _evidence(first: pd.Series, group: pd.DataFrame) -> dict:
    worst = group.loc[group["entries"].idxmax()]
    return {
        "storms": len(group),
        "entries": int(group["entries"].sum()),
        "longest_run": int(worst["entries"]),
        "duration_s": float(worst["duration"]) if worst["timed"] else None,
        "rate_per_s": float(worst["rate"]) if worst["timed"] else None,
        "share_of_time": float(worst["share"]) if worst["timed"] else None,
        "peak_entries_in_window": int(group["peak"].max()),
        "peak_share_of_window": float(group["window_share"].max()) if worst["timed"] else None,
        "halts": int(group["halts"].sum()) if group["halts"].notna().all() else None,
        "halted_s": float(group["halted"].sum()) if group["halts"].notna().all() else None,
        "tick_period_s": float(worst["period"]) if pd.notna(worst["period"]) else None,
        "tick_period_from": worst["period_from"] if isinstance(worst["period_from"], str) else None,
        "rate_over_tick_rate": float(worst["over_period"]) if pd.notna(worst["over_period"]) and worst["timed"] else None,
        "cause": worst["cause"] if isinstance(worst["cause"], str) else None,
        "last_source": worst["last_source"] if isinstance(worst["last_source"], str) else None,
    }
