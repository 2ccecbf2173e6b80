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

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd

from irqmon.analysis.common import where
from irqmon.analysis.context import ACT, EXC_NAME, IN_ISR, PRIO, AnalysisConfig, Context, Timeline, among_sorted
from irqmon.analysis.coverage import Coverage
from irqmon.analysis.findings import Finding, Group, SiteGroups
from irqmon.analysis.locks import LOCK_NAME, contended_events, holder_labels, lock_events, lock_rows_to_carry
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


def configured_tick_period(ctx: Context) -> TickPeriod | None:
    """SysTick's period from its registers (config rows) and the core clock (metadata), where
    it counts the core clock and is enabled."""
    clock_text = ctx.metadata.get(META_CORE_CLOCK, "")
    if ctx.before is not None:  # the whole trace's last reads
        facts = ctx.before.facts
        control, reload = facts.config_value(CONFIG_SYSTICK_CONTROL), facts.config_value(CONFIG_SYSTICK_RELOAD)
    else:
        rows = ctx.select(event=Event.CONFIG.value, columns=["symbol", "value"]).dropna()
        values = dict(zip(rows["symbol"], rows["value"].astype(np.int64)))  # the last read of each
        control, reload = values.get(CONFIG_SYSTICK_CONTROL), values.get(CONFIG_SYSTICK_RELOAD)
    if not clock_text.isascii() or not clock_text.isdigit() or int(clock_text) == 0 or control is None or not reload:
        return None
    if not control & SYST_CSR_ENABLE or not control & SYST_CSR_CLKSOURCE:
        return None  # stopped, or counting a reference clock the trace does not name
    clock = int(clock_text)
    return TickPeriod((int(reload) + 1) / clock, f"LOAD {int(reload)} at the {clock / 1e6:g} MHz core clock")


# What a storm's finding reads of the row that names it (with its exception's name, label and handler).
HIT_COLUMNS = ["seq", "time", "ipsr", "task", "symbol", "address", "callpath", "source", IN_ISR, PRIO, ACT]
HALT_POINT = tuple[float, float, float]  # at a row: its time, the halts before it, the seconds halted before it


def stream() -> Storms:
    return Storms()


@dataclass
class _Run:
    """An exception's activations back to back, as far as the trace has been read: what judging
    it needs, kept as numbers (its activations and rows are not kept)."""

    exception: int
    first: HALT_POINT  # at its first row
    first_position: int | None  # its first row's position in the batch it started in (None after it)
    entries: int = 0  # its activations that are over
    start: float = np.nan
    end: float = np.nan
    busy: float = 0.0
    timed: bool = True
    last: HALT_POINT = (np.nan, np.nan, np.nan)  # at its last row so far
    peak: int = 0  # the most entries in a window anchored at one of its entries
    window_busy: float = -np.inf  # the most handler time in such a window
    unwindowed: int = 0  # its activations over whose window may still gain entries
    closed: bool = False  # a later activation of its exception started another run
    # The row that names the storm (its first with a call path, else its first): row `hit_at` of
    # `hit_rows`, the frame of the rows to report taken out of the batch that had it.
    hit_rows: pd.DataFrame | None = None
    hit_at: int = 0
    hit_has_path: bool = False
    last_source: str | None = None
    cause: tuple[str, str] | None = None  # the first held lock its activations met, and its holder
    cause_acts: int = 0  # its activations that met a held lock
    cause_last_act: int | None = None


_Hit = tuple[_Run, dict[str, object]]  # a storm: its run, and the columns its hit adds to its row


@dataclass
class _Exception:
    """An exception's activations as far as the trace has been read: its latest one (it may go
    on), the run it belongs to, and the activations over whose `storm_window` may still gain entries."""

    act: int | None = None
    start: float = np.nan
    end: float = np.nan
    timed: bool = True
    last: HALT_POINT = (np.nan, np.nan, np.nan)
    run: int = -1
    thread_since: bool = False  # thread mode ran after its latest row
    window_start: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per activation in the lookahead: its start
    window_cum: np.ndarray = field(default_factory=lambda: np.zeros(0))  # the handler time of the activations before it
    window_run: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    total_busy: float = 0.0  # the handler time of all its activations over


class Storms:
    """The rule judged batch by batch. Each exception's latest activation, the run it belongs to
    and its activations whose `storm_window` lookahead reaches past the rows read so far are
    kept as numbers; a run is judged once it is over and its windows are complete (SysTick's
    runs, without a configured period, at the end: its median period needs every tick).

    State: per exception, per run that may still become a storm (its row to report kept, in the
    frame of the rows its batch had to report, kept while one of their runs is), and
    the windows still open; the one thing that grows with the trace is SysTick's gaps between
    entries (a float64 each) when its period is not configured: the exact median needs them all."""

    def __init__(self) -> None:
        self.groups = SiteGroups(RULE, site=(EXC_NAME,), title=_title, message=_message, evidence=_evidence, collect=_collect)
        self.exceptions: dict[int, _Exception] = {}
        self.runs: dict[int, _Run] = {}
        self.next_run = 0
        self.config: AnalysisConfig | None = None
        self.configured: TickPeriod | None = None
        self.coverage: Coverage | None = None
        self.thread_symbols: set[str] = set()
        self.tick_starts_seen = False
        self.last_tick_start = np.nan
        self.tick_gaps: list[np.ndarray] = []
        self.waiting_for_period: list[_Run] = []
        self.halts_known = False

    def add(self, ctx: Context) -> None:
        if self.config is None:
            self._learn(ctx)
        t = ctx.timeline
        acts, first, last, exceptions = _fresh_activations(ctx)
        mapped: list[tuple[np.ndarray, np.ndarray]] = []
        bounds = np.flatnonzero(np.r_[True, exceptions[1:] != exceptions[:-1], True]) if len(first) else np.zeros(1, dtype=np.int64)
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            mapped.append(self._activations(ctx, int(exceptions[lo]), acts[lo:hi], first[lo:hi], last[lo:hi]))
        seen = set(exceptions[bounds[:-1]].tolist()) if len(first) else set()
        thread_ran = bool(t.thread_rows[-1] > (t.thread_rows[ctx.carried - 1] if ctx.carried else 0)) if len(t.time) else False
        for number, state in self.exceptions.items():
            if number not in seen:
                state.thread_since |= thread_ran
        # In order of id, as the activations are (by exception, then in order).
        act_ids = np.concatenate([m[0] for m in mapped]) if mapped else np.zeros(0, dtype=np.int64)
        run_ids = np.concatenate([m[1] for m in mapped]) if mapped else np.zeros(0, dtype=np.int64)
        run_of = lambda act: run_ids[np.searchsorted(act_ids, act)]  # noqa: E731 (every act asked for is among them)
        self._rows(ctx, run_of)
        self._causes(ctx, run_of)
        hits: list[_Hit] = []
        for number in list(self.exceptions):
            hits += self._windows(number, final=False)
        self._add_hits(hits)

    def carry(self, ctx: Context) -> np.ndarray:
        return lock_rows_to_carry(ctx)

    def findings(self) -> list[Finding]:
        hits: list[_Hit] = []
        for number, state in self.exceptions.items():
            if state.act is not None:
                self._over(
                    number, np.array([state.start]), np.array([state.end]), np.array([state.timed]), np.array([state.run]),
                    np.array([-1]), None,
                )  # fmt: skip
                state.act = None
            hits += self._windows(number, final=True)
        period = self._tick_period()
        hits += [(run, fields) for run in self.waiting_for_period if (fields := self._judge(run, period)) is not None]
        self.waiting_for_period = []
        self._add_hits(hits)
        return self.groups.findings()

    # --- what the whole trace decides -------------------------------------------------------

    def _learn(self, ctx: Context) -> None:
        self.config, self.coverage = ctx.config, ctx.coverage
        self.halts_known = ctx.timeline.halts is not None and ctx.timeline.halted is not None
        facts = ctx.before.facts if ctx.before else None
        self.configured = configured_tick_period(ctx)
        if facts is not None:
            self.thread_symbols = set(facts.thread_symbols)
        elif self.coverage is not None and self.coverage.partial:  # only a rotated capture's storms need them
            rows = ctx.select(event=(Event.CALL.value, Event.RETURN.value, Event.ACCESS.value), columns=["symbol", "ipsr"])
            self.thread_symbols = set(rows.loc[(rows["ipsr"] == 0).fillna(False).astype(bool), "symbol"].dropna().astype(str))

    def _tick_period(self) -> TickPeriod | None:
        """SysTick's period: configured, else the median time between its entries."""
        if not self.tick_starts_seen or self.configured is not None:
            return self.configured if self.tick_starts_seen else None
        gaps = np.concatenate(self.tick_gaps) if self.tick_gaps else np.zeros(0)
        return TickPeriod(float(np.median(gaps)), "the median time between its entries") if len(gaps) else None

    # --- activations and runs ---------------------------------------------------------------

    def _activations(self, ctx: Context, number: int, acts: np.ndarray, first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One exception's activations with rows in the batch (ids, first and last fresh rows, in
        order): their runs; those over (all but its latest) counted in. Gives the ids and runs."""
        t, cfg = ctx.timeline, self.config
        assert cfg is not None
        state = self.exceptions.setdefault(number, _Exception())
        ids, runs = [], []
        prev_last: int | None = None
        if state.act is not None and acts[0] == state.act:  # its latest activation goes on
            state.end, state.last, prev_last = float(t.run_time[last[0]]), _halt_point(t, last[0]), int(last[0])
            ids.append(acts[:1]), runs.append(np.array([state.run]))
            acts, first, last = acts[1:], first[1:], last[1:]
        latest_row = int(last[-1]) if len(last) else prev_last
        thread_since_before = state.thread_since
        state.thread_since = bool(t.thread_rows[-1] > t.thread_rows[latest_row])  # type: ignore[index]
        if len(acts) == 0:
            return np.concatenate(ids), np.concatenate(runs)
        start, end, timed = t.run_time[first], t.run_time[last], t.enter[first]
        before_first = t.thread_rows[prev_last] if prev_last is not None else (t.thread_rows[ctx.carried - 1] if ctx.carried else 0)
        thread_ran = t.thread_rows[first] - _after(before_first, t.thread_rows[last[:-1]]) > 0
        if prev_last is None:
            thread_ran[0] |= thread_since_before
        follows = np.ones(len(acts), dtype=bool)
        follows[0] = state.act is not None
        prev_end = _after(state.end, end[:-1])
        back_to_back = follows & ~thread_ran & ((start - prev_end <= cfg.storm_gap) | ~timed)
        new_runs = np.cumsum(~back_to_back)
        run = np.where(new_runs == 0, state.run, self.next_run + new_runs - 1)
        self.next_run += int(new_runs[-1])
        # Runs that may still become storms get a record: the latest one, and those long enough.
        counts = np.bincount(new_runs)
        recorded = ~back_to_back & ((new_runs == new_runs[-1]) | (counts[new_runs] >= cfg.storm_min_entries))
        recorded_at = first[recorded]
        points = zip(*(values.tolist() for values in _halt_points(t, recorded_at)))
        for key, point, position in zip(run[recorded].tolist(), points, recorded_at.tolist()):
            self.runs[key] = _Run(number, point, position)
        closed = run[np.flatnonzero(np.diff(new_runs))]  # each run the batch saw end, in order
        if new_runs[0] > 0:  # and the run it was in before the batch
            closed = _after(state.run, closed)
        for key in closed[among_sorted(closed, self._run_keys())].tolist():
            self.runs[key].closed = True  # a later activation started another run
        # What was its latest activation is over, and so are all but the batch's last.
        if state.act is None:
            self._over(number, start[:-1], end[:-1], timed[:-1], run[:-1], last[:-1], t)
        else:
            self._over(
                number, _after(state.start, start[:-1]), _after(state.end, end[:-1]), _after(state.timed, timed[:-1]),
                _after(state.run, run[:-1]), _after(-1, last[:-1]), t,
            )  # fmt: skip
        state.act, state.start, state.end, state.timed = int(acts[-1]), float(start[-1]), float(end[-1]), bool(timed[-1])
        state.last, state.run = _halt_point(t, last[-1]), int(run[-1])
        ids.append(acts), runs.append(run)
        return np.concatenate(ids), np.concatenate(runs)

    def _over(
        self, number: int, start: np.ndarray, end: np.ndarray, timed: np.ndarray, run: np.ndarray, last_rows: np.ndarray,
        t: Timeline | None,
    ) -> None:  # fmt: skip
        """Activations of exception `number` that are over, in order: counted into their runs
        and their windows (and SysTick's gaps between entries). `last_rows`: the positions of
        their last rows in `t`'s rows, -1 for its latest activation before (at `state.last`)."""
        if len(start) == 0:
            return
        start, end = np.asarray(start, dtype=float), np.asarray(end, dtype=float)
        busy = end - start
        state = self.exceptions[number]
        if number == SYSTICK:
            self._tick_starts(start)
        cum = np.cumsum(_after(state.total_busy, np.nan_to_num(busy)))  # in order, as one sum over the trace
        state.window_start = np.concatenate((state.window_start, start))
        state.window_cum = np.concatenate((state.window_cum, cum[:-1]))
        state.window_run = np.concatenate((state.window_run, run))
        state.total_busy = float(cum[-1])
        tracked = among_sorted(run, self._run_keys())  # a run's activations are contiguous
        if not tracked.all():
            start, end, busy, timed = start[tracked], end[tracked], busy[tracked], timed[tracked]
            run, last_rows = run[tracked], last_rows[tracked]
        if len(run) == 0:
            return
        bounds = np.flatnonzero(np.concatenate(([True], run[1:] != run[:-1], [True])))
        starts, ends = bounds[:-1], bounds[1:]
        records = [self.runs[key] for key in run[starts].tolist()]
        # Each run's earliest start and latest end so far (NaN only where all are).
        earliest = np.fmin([record.start for record in records], np.fmin.reduceat(start, starts)).tolist()
        latest = np.fmax([record.end for record in records], np.fmax.reduceat(end, starts)).tolist()
        all_timed = np.logical_and.reduceat(timed, starts).tolist()
        busy = np.nan_to_num(busy)
        at_last = _points_at(t, last_rows[ends - 1], state.last)
        for record, lo, hi, first, latest_end, timed_all, point in zip(
            records, starts.tolist(), ends.tolist(), earliest, latest, all_timed, at_last, strict=True,
        ):  # fmt: skip
            record.entries += hi - lo
            record.start, record.end = first, latest_end
            record.busy = float(np.cumsum(np.concatenate(([record.busy], busy[lo:hi])))[-1])  # in order, as one sum
            record.timed = record.timed and timed_all
            record.last = point
            record.unwindowed += hi - lo

    def _tick_starts(self, start: np.ndarray) -> None:
        """SysTick's entries, in order: the gaps between them kept where its period is not configured."""
        self.tick_starts_seen = True
        if self.configured is None:
            gaps = np.diff(_after(self.last_tick_start, start))
            self.tick_gaps.append(gaps[gaps > 0])
        self.last_tick_start = float(start[-1])

    def _windows(self, number: int, final: bool) -> list[_Hit]:
        """Complete the windows of exception `number`'s activations that no later activation can
        reach into any more (every one, `final`ly); judge the runs that are over and complete.
        The storms' hits."""
        cfg, state = self.config, self.exceptions[number]
        assert cfg is not None
        start = state.window_start
        reach = start + cfg.storm_window
        done = _complete_windows(start, reach, state.start if state.act is not None else None, final)
        if done:
            cum = np.append(state.window_cum, state.total_busy)
            # Only the windows of runs with a record count (a run's activations are contiguous).
            anchors = np.flatnonzero(among_sorted(state.window_run[:done], self._run_keys()))
            last = np.searchsorted(start, reach[anchors], side="left")
            entries, busy, run = last - anchors, cum[last] - cum[anchors], state.window_run[anchors]
            if len(run):
                starts = np.flatnonzero(_after(True, run[1:] != run[:-1]))
                sizes = np.diff(np.append(starts, len(run)))
                peaks, busiest = np.maximum.reduceat(entries, starts), np.maximum.reduceat(busy, starts)
                for key, peak, most, size in zip(run[starts].tolist(), peaks.tolist(), busiest.tolist(), sizes.tolist()):
                    record = self.runs[key]
                    record.peak = max(record.peak, int(peak))
                    record.window_busy = max(record.window_busy, float(most))
                    record.unwindowed -= size
            state.window_start, state.window_cum, state.window_run = start[done:], state.window_cum[done:], state.window_run[done:]
        hits = []
        for key in [key for key, record in self.runs.items() if record.exception == number and (record.closed or final)]:
            record = self.runs[key]
            if record.entries < cfg.storm_min_entries:
                del self.runs[key]
            elif record.unwindowed == 0:
                del self.runs[key]
                if record.exception == SYSTICK and self.configured is None:
                    self.waiting_for_period.append(record)  # its median period needs every tick
                elif (fields := self._judge(record, self.configured if record.exception == SYSTICK else None)) is not None:
                    hits.append((record, fields))
        return hits

    def _judge(self, run: _Run, period: TickPeriod | None) -> dict[str, object] | None:
        """A run that is over: if it is a storm, the columns its hit adds to its row."""
        cfg = self.config
        assert cfg is not None and run.hit_rows is not None
        duration = run.end - run.start
        clipped = np.maximum(duration, 1e-9)
        rate = run.entries / clipped
        share = np.minimum(run.busy / clipped, 1.0)
        window_share = np.minimum(run.window_busy / cfg.storm_window, 1.0)
        loud = bool(window_share >= cfg.storm_share) or not run.timed
        if cfg.storm_rate is not None:
            loud |= bool(run.peak / cfg.storm_window >= cfg.storm_rate)
        seconds = period.seconds if period is not None else np.nan
        over_period = rate * seconds
        if not loud or (bool(over_period <= cfg.storm_tick_margin) and run.timed):
            return None
        if self.coverage is not None and self.coverage.partial and not self.coverage.armed_throughout(self.thread_symbols, run.first[0], run.last[0]):
            return None  # no site that saw thread mode was armed all through it: its absence proves nothing
        halts = (run.last[1] - run.first[1], run.last[2] - run.first[2]) if self.halts_known else (np.nan, np.nan)
        fields = {
            "entries": run.entries, "duration": duration, "rate": rate, "share": share, "peak": run.peak, "timed": run.timed,
            "window_share": window_share, "period": seconds, "period_from": period.source if period is not None else None,
            "over_period": over_period, "halts": halts[0], "halted": halts[1], "last_source": run.last_source,
            "cause": None if run.cause is None else
            f"its handler found {run.cause[0]} held by {run.cause[1]} in {run.cause_acts} of {run.entries} entries",
        }  # fmt: skip
        return fields

    def _add_hits(self, hits: list[_Hit]) -> None:
        """The storms' rows, taken out of each frame they are kept in at once, with their columns."""
        if not hits:
            return
        by_frame: dict[int, list[_Hit]] = {}
        for hit in hits:
            by_frame.setdefault(id(hit[0].hit_rows), []).append(hit)
        pieces = [same[0][0].hit_rows.iloc[[run.hit_at for run, _ in same]] for same in by_frame.values()]  # type: ignore[union-attr]
        ordered = [fields for same in by_frame.values() for _, fields in same]
        self.groups.add(None, pd.concat(pieces).assign(**{name: [fields[name] for fields in ordered] for name in ordered[0]}))

    def _run_keys(self) -> np.ndarray:
        """The runs with a record, sorted (numbered in order, recorded as they start)."""
        return np.fromiter(self.runs, dtype=np.int64, count=len(self.runs))

    # --- rows ---------------------------------------------------------------------------------

    def _rows(self, ctx: Context, run_of: Callable[[np.ndarray], np.ndarray]) -> None:
        """The batch's rows in the activations of runs that may become storms: each run's first
        row with a call path (the row to report; else its first row) and its last source line."""
        t = ctx.timeline
        # IRQ rows have neither a call path nor a source line.
        halting = np.flatnonzero(t.in_isr[ctx.carried :] & ~t.irq[ctx.carried :]) + ctx.carried
        run = run_of(t.act[halting]) if len(halting) else np.zeros(0, dtype=np.int64)
        keys = self._run_keys()
        kept = among_sorted(run, keys)
        halting, run = halting[kept], run[kept]
        pathless = keys[[not self.runs[key].hit_has_path for key in keys.tolist()]]  # no row with a call path yet
        in_pathless = among_sorted(run, pathless)
        path_runs, path_rows = _first_with_value(ctx, "callpath", halting[in_pathless], run[in_pathless])
        # run -> the row to report, and whether it has a call path
        wanted: dict[int, tuple[int, bool]] = {key: (position, True) for key, position in zip(path_runs.tolist(), path_rows.tolist())}
        for key, record in self.runs.items():
            if record.hit_rows is None and key not in wanted and record.first_position is not None:
                wanted[key] = (record.first_position, False)
        if wanted:
            rows = ctx.rows_at(np.array([position for position, _ in wanted.values()], dtype=np.int64), HIT_COLUMNS)
            rows = rows.assign(**{EXC_NAME: ctx.names(rows)})
            rows["context"], rows["handler"] = ctx.labels(rows), ctx.handlers(rows)
            for number, (key, (_, has_path)) in enumerate(wanted.items()):
                record = self.runs[key]
                record.hit_rows, record.hit_at, record.hit_has_path = rows, number, has_path
        for record in self.runs.values():
            record.first_position = None
        source_runs, positions = _first_with_value(ctx, "source", halting[::-1], run[::-1])  # each run's last
        if len(source_runs):
            sources = ctx.rows_at(positions, ["source"])["source"].tolist()
            for key, source in zip(source_runs.tolist(), sources):
                self.runs[key].last_source = source

    def _causes(self, ctx: Context, run_of: Callable[[np.ndarray], np.ndarray]) -> None:
        """The held locks the batch's activations met, counted into their runs."""
        events = lock_events(ctx)
        if events.empty:
            return
        blocked = np.flatnonzero(contended_events(ctx) & (events.index.to_numpy() >= ctx.carried))
        act = events[ACT].to_numpy(dtype=np.int64)[blocked]
        run = run_of(act)
        kept = among_sorted(run, self._run_keys())
        if not kept.any():
            return
        blocked, act, run = blocked[kept], act[kept], run[kept]
        # A run's activations are consecutive ones of its exception, and each one's events come
        # after the one before's: in order of id, its activations that met a held lock, lined up.
        met = np.unique(act)
        met_run = run_of(met)
        starts = np.flatnonzero(_after(True, met_run[1:] != met_run[:-1]))
        ends = np.append(starts[1:], len(met))
        keys, first = np.unique(run, return_index=True)  # each run's first event
        first_event = dict(zip(keys.tolist(), blocked[first].tolist()))
        new_causes = [key for key in met_run[starts].tolist() if self.runs[key].cause is None]
        if new_causes:
            found = events[[LOCK_NAME]].iloc[[first_event[key] for key in new_causes]]
            holders = holder_labels(ctx, found).fillna("a context not in the trace").tolist()
            for key, name, holder in zip(new_causes, found[LOCK_NAME].tolist(), holders):
                self.runs[key].cause = (str(name), str(holder))
        for key, lo, hi in zip(met_run[starts].tolist(), starts.tolist(), ends.tolist()):
            record = self.runs[key]
            record.cause_acts += hi - lo - int(record.cause_last_act == met[lo])
            record.cause_last_act = int(met[hi - 1])


def _first_with_value(ctx: Context, column: str, positions: np.ndarray, runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per run of `runs` (one per row at `positions`), its first row with a value in `column`:
    the runs that have one (sorted) and those rows' positions. A run's first row mostly has
    one: the rows after it are looked at only for the runs whose first row has none."""
    keys, first = np.unique(runs, return_index=True)
    found = ctx.has_value(column, positions[first])
    if found.all():
        return keys, positions[first]
    rest = among_sorted(runs, keys[~found])
    with_value = ctx.has_value(column, positions[rest])
    later_keys, later = np.unique(runs[rest][with_value], return_index=True)
    keys = np.concatenate((keys[found], later_keys))
    rows = np.concatenate((positions[first[found]], positions[rest][with_value][later]))
    order = np.argsort(keys)
    return keys[order], rows[order]


def _fresh_activations(ctx: Context) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ISR activations with rows in the batch beyond the carried ones, by exception, then id:
    their ids, first and last rows, and exception numbers. An activation begun in a batch before
    (its exception's latest there, which goes on) has a carried row first: its first row is not used."""
    activations = ctx.activations
    last = activations["last_row"].to_numpy()
    fresh = last >= ctx.carried
    ids, first, exceptions = activations.index.to_numpy(), activations["first_row"].to_numpy(), activations["ipsr"].to_numpy()
    return ids[fresh], first[fresh], last[fresh], exceptions[fresh]


def _complete_windows(start: np.ndarray, reach: np.ndarray, going_on: float | None, final: bool) -> int:
    """How many of the windows anchored at `start` (in order; each ends at its `reach`) are
    complete: up to the first that no entry so far (one at `going_on`, the start of an
    activation that goes on, included) starts at or past the end of; every one, `final`ly."""
    if final:
        return len(start)
    if bool((start[1:] >= start[:-1]).all()):  # in order: the latest start decides, one search
        latest = start[-1] if len(start) else -np.inf
        return int(np.searchsorted(reach, latest if going_on is None else max(latest, going_on), side="right"))
    complete = np.searchsorted(start, reach, side="left") < len(start)
    if going_on is not None:
        complete |= going_on >= reach
    return int(np.argmin(complete)) if not complete.all() else len(start)


def _after(value: object, values: np.ndarray) -> np.ndarray:
    """`values` with `value` before them."""
    return np.concatenate((np.array([value], dtype=values.dtype), values))


def _points_at(t: Timeline | None, positions: np.ndarray, before: HALT_POINT) -> list[HALT_POINT]:
    """The halt points at `positions` of `t`'s rows, `before` where a position is -1."""
    if t is None:
        return [before] * len(positions)
    points = list(zip(*(values.tolist() for values in _halt_points(t, positions))))
    return [before if position < 0 else point for position, point in zip(positions.tolist(), points)]


def _halt_point(t: Timeline, position: int) -> HALT_POINT:
    time, halts, halted = _halt_points(t, np.array([position]))
    return float(time[0]), float(halts[0]), float(halted[0])


def _halt_points(t: Timeline, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At each of `positions`: its time, the halts before it and the seconds halted before it (NaN
    on a trace that records no halts)."""
    none = np.full(len(positions), np.nan)
    if t.halted is None or t.halts is None:
        return t.time[positions], none, none
    return t.time[positions], t.halts[positions].astype(float), t.halted[positions]


WORST = ("entries", "duration", "rate", "share", "timed", "halts", "halted", "period", "period_from", "over_period", "cause", "last_source")


def _collect(values: dict, hits: pd.DataFrame) -> None:
    """The longest storm (the first of the longest, by seq), and the sums and maxima the evidence gives."""
    entries = hits["entries"].astype(np.int64)
    longest = int(entries.to_numpy().argmax())
    candidate = hits.iloc[longest]
    worst = values.get("worst")
    if worst is None or (entries.iloc[longest], -int(candidate["seq"])) > (worst["entries"], -worst["seq"]):
        values["worst"] = {"seq": int(candidate["seq"]), **{name: candidate[name] for name in WORST}}
    values["entries"] = values.get("entries", 0) + int(entries.sum())
    values["peak"] = max(values.get("peak", 0), int(hits["peak"].max()))
    shares = hits["window_share"].astype(float).dropna()
    if len(shares):
        values["window_share"] = max(values.get("window_share", -np.inf), float(shares.max()))
    halts, halted = hits["halts"].astype(float), hits["halted"].astype(float)
    values["halts_known"] = values.get("halts_known", True) and bool(halts.notna().all())
    if values["halts_known"]:  # summed exactly: the same whichever batch a storm is judged in
        values["halts"] = values.get("halts", 0) + int(halts.sum())
        values["halted"] = values.get("halted", Fraction(0)) + sum((Fraction(h) for h in halted), Fraction(0))


def _title(first: pd.Series, group: Group) -> str:
    return f"{where(first)} re-entered {int(group.values['worst']['entries'])} times back to back"


def _message(first: pd.Series, group: Group) -> str:
    worst = group.values["worst"]
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
    return f"{group.count} storm(s); the longest: {int(worst['entries'])} entries{timing}, thread mode did not run.{tick} Likely cause: {cause}."


def _evidence(first: pd.Series, group: Group) -> dict:
    worst, values = group.values["worst"], group.values
    return {
        "storms": group.count,
        "entries": values["entries"],
        "longest_run": int(worst["entries"]),
        "duration_s": float(worst["duration"]) if worst["timed"] else None,
        "rate_per_s": float(worst["rate"]) if worst["timed"] else None,
        "share_of_time": float(worst["share"]) if worst["timed"] else None,
        "peak_entries_in_window": values["peak"],
        "peak_share_of_window": values.get("window_share") if worst["timed"] else None,
        "halts": values["halts"] if values["halts_known"] else None,
        "halted_s": float(values["halted"]) if values["halts_known"] else None,
        "tick_period_s": float(worst["period"]) if pd.notna(worst["period"]) else None,
        "tick_period_from": worst["period_from"] if isinstance(worst["period_from"], str) else None,
        "rate_over_tick_rate": float(worst["over_period"]) if pd.notna(worst["over_period"]) and worst["timed"] else None,
        "cause": worst["cause"] if isinstance(worst["cause"], str) else None,
        "last_source": worst["last_source"] if isinstance(worst["last_source"], str) else None,
    }
