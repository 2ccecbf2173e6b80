"""The report of a trace read in batches (issue 16): memory follows the batch size and the drawn
window, not the trace's length.

The trace is cut into pieces just after a row of thread mode, where no handler runs, so every
activation begins and ends inside one piece. Each piece gets the analyzer's context, numbered on
from the pieces before it (`Before`), and its own `build_model`; its tables are summed into
`TraceTotals` (per exception and per thread lane, exact: the execution times and periods are
kept per activation for the medians and p99, in temporary files past a bound, `KeptValues`).
The panels that draw single activations, masks, locks and heap calls draw the pieces of one
window, at most `DRAWN_ROWS` rows: the `--from/--to` window, else the whole trace when it is that
small, else the pieces around the first finding. The rows around each finding are collected on
the way.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from irqmon import schema
from irqmon.analysis.context import AnalysisConfig, Before, Context
from irqmon.analysis.facts import TraceFacts
from irqmon.analysis.findings import Finding
from irqmon.report.kept_values import KeptValues
from irqmon.report.model import (
    EVENT_COLUMNS, HALTING_BACKENDS, P99, STATS_COLUMNS, THREAD, Halting, ReportModel, _halt_cost, build_model, busy_per_bin,
    event_rows_at, lanes_of, load_edges, load_window,
)  # fmt: skip

DRAWN_ROWS = 1_000_000  # the most rows the detail panels draw (the whole trace when it has no more)
# Rows read at a time by default: a piece's model holds more per row than the analysis (a
# quarter of its batch: about 1 GB at most for a 10M-row trace, the drawn window included).
REPORT_BATCH_ROWS = 1 << 18
# A piece without a row of thread mode ends anyway after this many batches (its edges then cut
# the activations running there: a trace that never returns to thread mode).
MOST_BATCHES_PER_PIECE = 4
MOST_PIECE_ROWS = 1 << 18  # and never before this many rows


@dataclass
class _ExceptionTotals:
    """One exception's activations, summed over the pieces."""

    exception: str
    priority: object
    count: int = 0
    total: float = 0.0
    self_time: float = 0.0
    max_time: float = -np.inf
    max_depth: int = 0
    preempted: int = 0
    halts: int = 0  # inside its complete activations
    last_entry: float | None = None


@dataclass
class TraceTotals:
    """The whole trace's tables (`ReportModel.summary`, `isr_stats`, `halting`), summed piece by piece."""

    start: float
    end: float
    rows: int
    exceptions: dict[int, _ExceptionTotals] = field(default_factory=dict)
    thread_time: dict[str, float] = field(default_factory=dict)  # per thread lane (task)
    halts: int = 0
    keep_halted: bool = False  # a halting capture: keep its complete activations for the halt cost
    halted_activations: list[pd.DataFrame] = field(default_factory=list)
    # Per exception, the self time of each complete activation ("execution") and the time between
    # successive entries ("period"): exact (float64), in temporary files past a bound.
    kept: KeptValues = field(default_factory=KeptValues)
    busy: dict[str, np.ndarray] = field(default_factory=dict)  # per exception, seconds it ran itself per load window

    def __post_init__(self) -> None:
        self.load_window = load_window(self.duration)
        self.load_edges = load_edges(self.start, self.end, self.load_window)
        self._isr_stats: pd.DataFrame | None = None

    @property
    def duration(self) -> float:
        return max(self.end - self.start, 0.0)

    @property
    def activations(self) -> int:
        return sum(e.count for e in self.exceptions.values())

    @property
    def complete(self) -> int:
        return sum(self.kept.count((ipsr, "execution")) for ipsr in self.exceptions)

    def add(self, model: ReportModel) -> None:
        """Count in one piece's model."""
        acts = model.activations
        for ipsr, mine in acts.groupby("ipsr", sort=False):
            totals = self.exceptions.setdefault(int(ipsr), _ExceptionTotals(str(mine["exception"].iloc[0]), mine["priority"].iloc[0]))
            totals.count += len(mine)
            totals.total += float(mine["duration"].sum())
            totals.self_time += float(mine["self_time"].sum())
            totals.max_time = max(totals.max_time, float(mine["duration"].max()))
            totals.max_depth = max(totals.max_depth, int(mine["depth"].max()))
            totals.preempted += int(mine["preempted"].sum())
            done = mine[mine["complete"].to_numpy(dtype=bool)]
            self.kept.add((int(ipsr), "execution"), done["self_time"].to_numpy(dtype=np.float64))
            totals.halts += int(done["halts"].sum())
            entries = np.sort(mine.loc[mine["entered"].to_numpy(dtype=bool), "start"].to_numpy(dtype=float))
            if len(entries):
                previous = [] if totals.last_entry is None else [totals.last_entry]
                self.kept.add((int(ipsr), "period"), np.diff(np.r_[previous, entries]))
                totals.last_entry = float(entries[-1])
        ran = model.segments[(model.segments["running"] != THREAD).to_numpy()]
        for lane, mine in ran.groupby("lane", sort=False):
            seconds = busy_per_bin(mine["start"].to_numpy(), mine["end"].to_numpy(), self.load_edges)
            self.busy[str(lane)] = self.busy.get(str(lane), 0.0) + seconds
        thread = model.segments[(model.segments["running"] == THREAD).to_numpy()]
        for lane, seconds in (thread["end"] - thread["start"]).groupby(thread["lane"].to_numpy(dtype=object), sort=False).sum().items():
            self.thread_time[lane] = self.thread_time.get(lane, 0.0) + float(seconds)
        self.halts += len(model.halts)
        if self.keep_halted:
            self.halted_activations.append(acts.loc[acts["complete"].to_numpy(dtype=bool), ["ipsr", "duration", "halts", "complete"]])

    def summary(self) -> pd.DataFrame:
        """As `ReportModel.summary` gives it for the whole trace."""
        numbers = sorted(self.exceptions)
        per_exc = pd.DataFrame(
            {
                "ipsr": pd.Series(numbers, dtype=np.int64),
                "exception": pd.Series([self.exceptions[n].exception for n in numbers], dtype="string"),
                "priority": pd.array([self.exceptions[n].priority for n in numbers], dtype="Int64"),
                **{
                    column: [getattr(self.exceptions[n], column) for n in numbers]
                    for column in ("count", "total", "self_time", "max_time", "max_depth", "preempted")
                },
                "kind": "exception",
            }
        )  # fmt: skip
        tasks = pd.DataFrame({"exception": list(self.thread_time), "self_time": list(self.thread_time.values()),
                              "total": list(self.thread_time.values()), "kind": "thread"})  # fmt: skip
        table = pd.concat([per_exc, tasks], ignore_index=True)
        table["share"] = table["self_time"] / (self.duration or 1.0)
        return table.sort_values(["self_time", "exception"], ascending=[False, True], ignore_index=True)

    def isr_stats(self) -> pd.DataFrame:
        """As `ReportModel.isr_stats` gives it for the whole trace; taken from the kept values the
        first time (so while they are kept), the same table after."""
        if self._isr_stats is None:
            self._isr_stats = self._timing_table()
        return self._isr_stats.copy()

    def _timing_table(self) -> pd.DataFrame:
        if not self.exceptions:
            return pd.DataFrame(columns=[*STATS_COLUMNS])
        rows = []
        for ipsr, e in self.exceptions.items():
            ran, between = self.kept.count((ipsr, "execution")), self.kept.count((ipsr, "period"))
            row = {"exception": e.exception, "ipsr": ipsr, "priority": e.priority, "count": ran, "periods": between, "halts": e.halts}
            if ran:
                executions = self.kept.series((ipsr, "execution"))
                median, p99 = executions.median_and_quantile(P99)
                row |= {"exec_min": executions.minimum, "exec_median": median, "exec_p99": p99, "exec_max": executions.maximum}
            if between:
                periods = self.kept.series((ipsr, "period"))
                row |= {"period_median": periods.median(), "period_min": periods.minimum, "period_max": periods.maximum,
                        "jitter": periods.std()}  # fmt: skip
            rows.append(row)
        table = pd.DataFrame(rows).reindex(columns=[*STATS_COLUMNS])  # NaN where no activation completed, or no period
        table["priority"] = pd.array(table["priority"].tolist(), dtype="Int64")
        table["rank"] = table["priority"].astype("Float64").fillna(np.inf).astype(float)
        return table.sort_values(["rank", "ipsr"], ignore_index=True)[[*STATS_COLUMNS]]

    def cpu_load(self) -> pd.DataFrame:
        """As `ReportModel.cpu_load` gives it for the whole trace, in windows of `load_window`."""
        lengths = np.diff(self.load_edges)
        lengths[lengths <= 0] = np.nan
        shares = {lane: np.clip(seconds / lengths, 0.0, 1.0) for lane, seconds in self.busy.items()}
        return pd.DataFrame(shares, index=pd.Index(self.load_edges[:-1], name="start"))

    def lanes(self) -> pd.DataFrame:
        """The exceptions' lanes (`ReportModel.lanes`), most urgent on top."""
        numbers = list(self.exceptions)
        acts = pd.DataFrame({"ipsr": numbers, "exception": [self.exceptions[n].exception for n in numbers],
                             "priority": pd.array([self.exceptions[n].priority for n in numbers], dtype="Int64")})  # fmt: skip
        return lanes_of(acts, pd.DataFrame({"running": pd.Series(dtype=np.int64), "lane": pd.Series(dtype="string")}))

    def halting(self, backend: str) -> Halting:
        halted = pd.concat(self.halted_activations, ignore_index=True) if self.halted_activations else pd.DataFrame(columns=["ipsr", "duration", "halts", "complete"])
        return Halting(backend, self.halts, _halt_cost(halted))


def quiet_pieces(tables: Iterable[pa.Table], most_rows: int) -> Iterator[pa.Table]:
    """The trace's rows in order, in pieces that each end with a row of thread mode (the last
    piece aside, and a piece that reached `most_rows` rows without one)."""
    held: list[pa.Table] = []
    held_rows = 0
    given = False
    for table in tables:
        thread = np.flatnonzero(pc.fill_null(pc.equal(table["ipsr"], 0), False).to_numpy(zero_copy_only=False))
        if len(thread):
            cut = int(thread[-1]) + 1
            yield pa.concat_tables([*held, table.slice(0, cut)])
            given = True
            held, held_rows = [table.slice(cut)], table.num_rows - cut
            continue
        held.append(table)
        held_rows += table.num_rows
        if held_rows >= most_rows:
            yield pa.concat_tables(held)
            given = True
            held, held_rows = [], 0
    if held and (held_rows or not given):
        yield pa.concat_tables(held)


def _copied(before: Before) -> Before:
    """`before` as it is now (a context built on it counts on in its dictionaries)."""
    return Before(before.facts, None, enters=dict(before.enters), activations=dict(before.activations), tasks=dict(before.tasks),
                  halted=before.halted, halts=before.halts)  # fmt: skip


@dataclass
class _Piece:
    table: pa.Table
    before: Before
    start: float
    end: float
    thread_lane: str | None  # the lane thread mode ran in last before it


class DrawnWindow:
    """The pieces the detail panels draw: those of the `requested` window (from, to; None: open),
    else every piece when the trace has at most `most_rows` rows, else the pieces around `focus`
    (a quarter of the rows before it), at most `most_rows` rows in all."""

    def __init__(self, requested: tuple[float | None, float | None], focus: float, trace_rows: int, most_rows: int) -> None:
        self.requested = requested if requested != (None, None) else None
        self.focus, self.most_rows = focus, most_rows
        self.everything = self.requested is None and trace_rows <= most_rows
        self.pieces: deque[_Piece] = deque()
        self.rows = 0
        self.full = False
        self.cut_short = False  # pieces of the requested window were left out

    def offer(self, piece: _Piece) -> None:
        if self.requested is not None:
            lo = -np.inf if self.requested[0] is None else self.requested[0]
            hi = np.inf if self.requested[1] is None else self.requested[1]
            if piece.end < lo or piece.start > hi:
                return
            if self.full:
                self.cut_short = True
                return
        elif self.full:
            return
        self.pieces.append(piece)
        self.rows += piece.table.num_rows
        if self.requested is None and not self.everything and piece.end < self.focus:
            while self.rows > self.most_rows // 4 and len(self.pieces) > 1:
                self.rows -= self.pieces.popleft().table.num_rows
            return
        self.full = not self.everything and self.rows >= self.most_rows

    def model(self, metadata: dict[str, str], config: AnalysisConfig, totals: TraceTotals) -> ReportModel:
        """The model of the kept pieces (cut to the requested window); ValueError when the
        requested window holds none of the trace."""
        if not self.pieces:
            lo, hi = self.requested or (None, None)
            lo, hi = totals.start if lo is None else max(lo, totals.start), totals.end if hi is None else min(hi, totals.end)
            raise ValueError(f"empty time window {lo:g}..{hi:g} s (trace: {totals.start:g}..{totals.end:g} s)")
        first, last = self.pieces[0], self.pieces[-1]
        ctx = Context([pa.concat_tables([p.table for p in self.pieces])], metadata, config, first.before)
        model = build_model(ctx, (first.start, last.end), first.thread_lane)
        if self.requested is not None:
            lo, hi = self.requested
            model = model.clipped(lo, hi if hi is None or not self.cut_short else min(hi, last.end))
        return model

    def note(self, trace_rows: int, found: bool) -> str | None:
        """The sentence saying which window the panels draw, when it is not the one asked for."""
        if self.everything or not self.pieces or (self.requested is not None and not self.cut_short):
            return None
        start, end = self.pieces[0].start, self.pieces[-1].end
        if self.requested is not None:
            return (f"The panels and tables cover {start:.6f}–{end:.6f} s only: the window asked for holds more than "
                    f"the {self.most_rows:,} rows the panels draw. Choose a shorter one with --from and --to.")  # fmt: skip
        where = "around the first finding" if found else "from the start of the trace"
        return (f"The trace has {trace_rows:,} rows, more than the {self.most_rows:,} the panels draw: the tables and the CPU "
                f"load cover the whole trace, the other figures {start:.6f}–{end:.6f} s ({where}). Choose another window with "
                "--from and --to.")  # fmt: skip


class NearbyRows:
    """The rows around each of some rows (by seq), collected piece by piece (`rows_around`)."""

    def __init__(self, seqs: Iterable[int], before: int, after: int) -> None:
        self.wanted = set(seqs)
        self.before, self.after = before, after
        self.found: dict[int, pd.DataFrame] = {}
        self._missing: dict[int, int] = {}  # seq -> rows after it still to come
        self._tail: pd.DataFrame | None = None  # the last rows of the pieces so far

    def add(self, ctx: Context) -> None:
        count = len(ctx.timeline.time)
        if count == 0:
            return
        seqs = ctx.rows_at(np.arange(count), ["seq"])["seq"].to_numpy(dtype=np.int64)
        hits = np.flatnonzero(np.isin(seqs, list(self.wanted - set(self.found))))
        needed = [np.arange(min(max(self._missing.values(), default=0), count)), np.arange(max(count - self.before, 0), count)]
        needed += [np.arange(max(at - self.before, 0), min(at + self.after + 1, count)) for at in hits]
        rows = event_rows_at(ctx, np.unique(np.concatenate(needed)))
        for seq, missing in list(self._missing.items()):
            self.found[seq] = pd.concat([self.found[seq], rows.loc[: missing - 1].assign(marked=False)])
            self._missing[seq] = missing - min(missing, count)
            if not self._missing[seq]:
                del self._missing[seq]
        for at in hits:
            seq = int(seqs[at])
            mine = rows.loc[max(at - self.before, 0) : at + self.after]
            earlier = self._tail.tail(self.before - at) if at < self.before and self._tail is not None else None
            near = pd.concat([earlier, mine]) if earlier is not None and len(earlier) else mine
            self.found[seq] = near.assign(marked=(near["seq"] == seq).to_numpy(dtype=bool))
            if at + self.after >= count:
                self._missing[seq] = at + self.after + 1 - count
        tail = rows.loc[max(count - self.before, 0) :]
        self._tail = pd.concat([self._tail, tail]).tail(self.before) if self._tail is not None and len(tail) < self.before else tail

    def rows_around(self, seq: int) -> pd.DataFrame:
        if seq in self.found:
            return self.found[seq]
        return pd.DataFrame(columns=[*EVENT_COLUMNS, "context", "marked"])


@dataclass
class StreamedView:
    """What the report of a trace read in batches draws and shows."""

    model: ReportModel
    nearby: NearbyRows
    note: str | None  # which window the panels draw, when not the one asked for


def view_in_batches(
    tables: Iterable[pa.Table], metadata: dict[str, str], config: AnalysisConfig, facts: TraceFacts,
    findings: Sequence[Finding], window: tuple[float | None, float | None], batch_rows: int,
    drawn_rows: int = DRAWN_ROWS, around: tuple[int, int] = (5, 5),
) -> StreamedView:  # fmt: skip
    """The report's model of the trace `tables` gives in order (its `facts` learned before), its
    tables over the whole trace and its panels over a bounded window, and the rows around each
    finding's first occurrence. Raises ValueError for an empty `window`."""
    focus = min((f.first_time for f in findings), default=-np.inf)
    drawn = DrawnWindow(window, focus, facts.rows, drawn_rows)
    nearby = NearbyRows((f.first_seq for f in findings), *around)
    before = Before(facts)
    pieces = quiet_pieces(tables, max(MOST_BATCHES_PER_PIECE * batch_rows, MOST_PIECE_ROWS))
    piece = next(pieces)
    times = piece["time"]
    start = float(pc.min(times).as_py()) if piece.num_rows else 0.0
    totals = TraceTotals(start, facts.end_time if facts.rows else start, facts.rows,
                         keep_halted=metadata.get(schema.META_BACKEND) in HALTING_BACKENDS)  # fmt: skip
    thread_lane: str | None = None
    with totals.kept:  # its temporary files are removed at the end, also on an error or Ctrl-C
        for following in _then_none(pieces):
            end = float(following["time"][0].as_py()) if following is not None else totals.end
            kept = _Piece(piece, _copied(before), start, end, thread_lane)
            ctx = Context([piece], metadata, config, before)
            model = build_model(ctx, (start, end), thread_lane)
            totals.add(model)
            thread = model.segments.loc[(model.segments["running"] == THREAD).to_numpy(), "lane"]
            thread_lane = str(thread.iloc[-1]) if len(thread) else thread_lane
            nearby.add(ctx)
            drawn.offer(kept)
            before = ctx.leaving(np.zeros(0, dtype=np.int64))
            del ctx, kept, model
            if following is None:
                break
            piece, start = following, end
        totals.isr_stats()  # the timing table, taken while the values it needs are kept
    model = drawn.model(metadata, config, totals)
    model = replace(model, rows=facts.rows, whole=totals if drawn.requested is None else None)
    return StreamedView(model, nearby, drawn.note(facts.rows, bool(findings)))


def _then_none(pieces: Iterator[pa.Table]) -> Iterator[pa.Table | None]:
    yield from pieces
    yield None
