"""non-reentrant-reentry: a non-reentrant function entered by one context while another is inside it.

Why it is bad:
    Functions such as printf, strtok, newlib's stdio or a driver's transmit routine keep state
    in static or shared buffers. A second context entering while the first is part-way through
    interleaves the two calls' state: garbled output, a corrupted FILE buffer, or a heap
    corrupted through the allocation printf makes underneath.

Example:
    Two tasks of equal priority call printf with time slicing on; the tick switches tasks in the
    middle of one printf and the other starts its own (seed 003). An ISR logging with printf
    while thread mode is printing.

Instead:
    Serialise the function with a mutex (tasks only), a critical section, or a single owner
    task fed by a queue; do not call it from ISRs; use the reentrant variants (_printf_r with
    per-task reent structures, newlib's retargetable locks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from irqmon.analysis.common import at, fresh, running_counts, where
from irqmon.analysis.context import ACT, EXC_NAME, IN_ISR, PRIO, Context
from irqmon.analysis.findings import Finding, distinct_per_site, fingerprint, frame_list, labelled, numbered, plain
from irqmon.analysis.registry import Rule
from irqmon.schema import Event, Kind

RULE = Rule(
    id="non-reentrant-reentry", severity="error", summary="non-reentrant function entered while another context is inside it",
    needs=(Kind.NON_REENTRANT.value,),
)
# What the pairing of calls and returns reads (the calls are many: the hits' rows are taken whole, later).
CALL_COLUMNS = ["seq", "event", "symbol", "sp", ACT]
SITE = ["symbol", "ipsr"]


def stream() -> ReentryStream:
    return ReentryStream()


@dataclass
class _Site:
    """A site's hits so far, among those made inside the same other functions (`nesting`)."""

    first: pd.Series
    count: int
    first_time: float
    last_time: float
    contexts: dict[str, int]  # label -> seq of its first hit
    others: dict[str, int]  # the other contexts' labels -> seq of their first hit


class ReentryStream:
    """The rule batch by batch. Kept between batches: per (symbol, turn, act, sp) the calls
    less the returns and the calls still open (where either is not 0); per symbol its last call
    and the last call that ended a run of one context (carried rows: the "other context" of the
    next batch's first calls); per site, what its finding needs."""

    def __init__(self) -> None:
        # Per (symbol, turn, act, sp) not at 0: its calls less its returns, and its calls still open.
        self.balance: dict[tuple, int] = {}
        self.open: dict[tuple, int] = {}
        self.sites: dict[tuple, _Site] = {}  # (symbol, ipsr, nesting) -> its hits so far

    def add(self, ctx: Context) -> None:
        rows = ctx.select(event=(Event.CALL.value, Event.RETURN.value), kind=Kind.NON_REENTRANT.value, columns=CALL_COLUMNS)
        rows = rows[rows["symbol"].notna()].sort_values("seq")
        # Without return rows the end of a call is unknown: those functions are left out.
        functions = _with_returns(ctx, rows)
        rows = rows[rows["symbol"].isin(functions).to_numpy(dtype=bool)]
        hits = self._entered_while_inside(ctx, fresh(ctx, rows))
        if hits.empty:
            return
        hits = ctx.rows_at(hits.index.to_numpy())  # whole rows only for the hits
        hits["other_context"] = _other_contexts(ctx, rows, hits)
        self._group(ctx, hits, _nesting(ctx, hits, functions))

    def _entered_while_inside(self, ctx: Context, rows: pd.DataFrame) -> pd.DataFrame:
        """The calls of `rows` (this batch's own) made while another context was inside the
        same function: calls and returns pair up per (symbol, turn, act, sp) as counted so far."""
        if rows.empty:
            return rows
        is_call = (rows["event"] == Event.CALL.value).to_numpy(dtype=bool)
        # A rotated capture may have missed a return while the function's site was disarmed: calls
        # and returns pair up only within one turn of the site.
        turn = ctx.coverage.turn(rows["symbol"], rows["seq"].to_numpy()) if ctx.coverage else np.zeros(len(rows), dtype=np.int64)
        keys = [rows["symbol"].to_numpy(dtype=object), turn, rows[ACT].to_numpy(), rows["sp"].fillna(-1).astype(np.int64).to_numpy()]
        balance = running_counts(np.where(is_call, 1, -1), keys, self.balance)
        paired_return = ~is_call & (balance >= 0)  # a return whose call is in the trace
        delta = is_call.astype(np.int64) - paired_return
        # Open calls before each row: of the function in this turn, and of its own context.
        inside = running_counts(delta, keys[:2], self._open_per(2)) - delta
        inside_own = running_counts(delta, keys[:3], self._open_per(3)) - delta
        running_counts(delta, keys, self.open)
        self._forget_past_turns(ctx, int(rows["seq"].iloc[-1]))
        return rows[is_call & (inside - inside_own > 0)]

    def _open_per(self, width: int) -> dict[tuple, int]:
        """The calls still open, per the first `width` columns of the pairing key."""
        counted: dict[tuple, int] = {}
        for key, opened in self.open.items():
            counted[key[:width]] = counted.get(key[:width], 0) + opened
        return counted

    def _forget_past_turns(self, ctx: Context, seq: int) -> None:
        """Drop the counts of turns that ended (rows of later turns never pair with them)."""
        if ctx.coverage is None or not (self.balance or self.open):
            return
        symbols = pd.Series(sorted({key[0] for key in [*self.balance, *self.open]}), dtype=object)
        now = dict(zip(symbols, ctx.coverage.turn(symbols, np.full(len(symbols), seq)), strict=True))
        self.balance = {key: count for key, count in self.balance.items() if key[1] >= now[key[0]]}
        self.open = {key: count for key, count in self.open.items() if key[1] >= now[key[0]]}

    def _group(self, ctx: Context, hits: pd.DataFrame, nesting: pd.Series) -> None:
        """Fold a batch's hits into their sites, on arrays: the hits grouped per site once, a
        frame only for a site's new first hit."""
        hits = labelled(ctx, hits.sort_values("seq").assign(nesting=nesting))
        columns = [*SITE, "nesting"]
        site_of = numbered([hits[column] for column in columns])
        sites = int(site_of.max()) + 1
        order = np.argsort(site_of, kind="stable")  # each site's hits together, in order of seq
        counts = np.bincount(site_of, minlength=sites)
        starts = np.cumsum(counts) - counts
        first_hits = order[starts]
        time = hits["time"].to_numpy(dtype=float, na_value=np.nan)[order]
        first_times, last_times = np.fmin.reduceat(time, starts).tolist(), np.fmax.reduceat(time, starts).tolist()
        seq = hits["seq"].to_numpy(dtype=np.int64)
        contexts = distinct_per_site(site_of, sites, hits["context"], seq)
        others = distinct_per_site(site_of, sites, hits["other_context"], seq)
        for number, key in enumerate(zip(*(hits[column].iloc[first_hits].tolist() for column in columns))):
            site_key = tuple(plain(v) for v in key)
            site = self.sites.get(site_key)
            if site is None:
                first = hits.iloc[[first_hits[number]]]
                site = self.sites[site_key] = _Site(first.assign(handler=ctx.handlers(first)).iloc[0], 0, np.inf, -np.inf, {}, {})
            site.count += int(counts[number])
            site.first_time = min(site.first_time, first_times[number])
            site.last_time = max(site.last_time, last_times[number])
            for labels, distinct in ((site.contexts, contexts), (site.others, others)):
                for label, first_seq in zip(distinct.values[number], distinct.seqs[number], strict=True):
                    labels.setdefault(str(label), first_seq)

    def carry(self, ctx: Context) -> np.ndarray:
        """Per function, its last call and the last call that ended a run of one context."""
        rows = ctx.select(event=Event.CALL.value, kind=Kind.NON_REENTRANT.value, columns=["seq", "symbol", ACT])
        rows = rows[rows["symbol"].notna()].sort_values("seq")
        runs = _Runs(rows)
        last = ~runs.same_function_next
        run_ends = np.flatnonzero(runs.ends_run & ~last)
        last_run_ends = run_ends[~_with_next(runs.function[run_ends])]
        return rows.index.to_numpy()[runs.order[np.r_[np.flatnonzero(last), last_run_ends]]]

    def findings(self) -> list[Finding]:
        """One finding per (function, exception): the hits made inside another function that
        has hits of its own are that call's (a function's calls inside printf are printf's)."""
        functions = {key[0] for key in self.sites}
        kept: dict[tuple, list[_Site]] = {}
        for (symbol, ipsr, nesting), site in self.sites.items():
            if not functions.intersection(nesting.split(",") if nesting else []):
                kept.setdefault((symbol, ipsr), []).append(site)
        return [_finding(sites) for sites in kept.values()]


def _with_returns(ctx: Context, rows: pd.DataFrame) -> set[str]:
    """The functions whose returns the trace has."""
    if ctx.before is not None:
        return ctx.before.facts.symbols(Event.RETURN.value, [Kind.NON_REENTRANT.value])
    return set(rows.loc[(rows["event"] == Event.RETURN.value).to_numpy(dtype=bool), "symbol"].unique())


class _Runs:
    """Calls (in order of seq, each with a symbol) grouped per function, in order within each:
    `order` (the calls so grouped), and per call in that order its `function` (a number),
    whether the next is of the same function, and whether it ends a run of one context's calls."""

    def __init__(self, calls: pd.DataFrame) -> None:
        function = pd.factorize(calls["symbol"])[0]
        self.order = np.argsort(function, kind="stable")
        self.function, act = function[self.order], calls[ACT].to_numpy(dtype=np.int64)[self.order]
        self.same_function_next = _with_next(self.function)
        self.ends_run = ~(self.same_function_next & _with_next(act))  # the next is another context's

    def previous_run_end(self) -> np.ndarray:
        """Per call (in `order`), the last call of its function before it that ended a run (its
        number in `order`; -1 for none)."""
        number = np.arange(len(self.order))
        if not len(number):
            return number
        previous_end = np.maximum.accumulate(np.r_[-1, np.where(self.ends_run, number, -1)[:-1]])
        function_start = np.maximum.accumulate(np.where(np.r_[True, ~self.same_function_next[:-1]], number, 0))
        return np.where(previous_end >= function_start, previous_end, -1)


def _with_next(values: np.ndarray) -> np.ndarray:
    """Per element, whether the next one is equal to it (False for the last)."""
    same = np.zeros(len(values), dtype=bool)
    same[:-1] = values[1:] == values[:-1]
    return same


def _other_contexts(ctx: Context, rows: pd.DataFrame, hits: pd.DataFrame) -> pd.Series:
    """Per hit, the label of the context whose run of calls of the function came last before it."""
    calls = rows[(rows["event"] == Event.CALL.value).to_numpy(dtype=bool)]
    runs = _Runs(calls)
    previous_end = runs.previous_run_end()
    other_rows = np.empty(len(calls), dtype=np.int64)
    other_rows[runs.order] = np.where(previous_end >= 0, calls.index.to_numpy()[runs.order][previous_end], -1)
    other_rows = pd.Series(other_rows, index=calls.index).reindex(hits.index).to_numpy()
    known = other_rows >= 0
    labels = pd.Series(pd.NA, index=hits.index, dtype="string")
    labels[known] = ctx.labels_at(other_rows[known]).to_numpy()
    return labels


def _nesting(ctx: Context, hits: pd.DataFrame, functions: set[str]) -> pd.Series:
    """Per hit, the other functions of the rule among its own frames (`a,b`): a hit inside one
    that has hits of its own is that call's, known only at the trace's end."""
    positions, symbols = hits.index.to_numpy(), hits["symbol"].to_numpy(dtype=object)
    inside = [(name, (symbols != name) & ctx.has_own_frame(positions, name)) for name in sorted(functions)]
    return pd.Series([",".join(name for name, found in inside if found[i]) for i in range(len(hits))], index=hits.index)


def _finding(sites: list[_Site]) -> Finding:
    """The finding of one (function, exception) from its sites' hits (those of every nesting kept)."""
    site = min(sites, key=lambda s: s.first["seq"])
    first, count = site.first, sum(s.count for s in sites)
    contexts = _in_order(s.contexts for s in sites)
    contexts += [label for label in _in_order(s.others for s in sites) if label not in contexts]
    return Finding(
        rule=RULE.id, severity=RULE.severity, title=f"{RULE.id}: {_title(first)}", message=_message(first, count),
        fingerprint=fingerprint(RULE.id, [first[c] for c in SITE]), count=count,
        first_time=min(s.first_time for s in sites), last_time=max(s.last_time for s in sites), first_seq=int(first["seq"]),
        contexts=contexts, exception=plain(first[EXC_NAME]) if first[IN_ISR] else None,
        priority=plain(first[PRIO]) if first[IN_ISR] else None, task=plain(first["task"]), symbol=plain(first["symbol"]),
        address=plain(first["address"]), callpath=frame_list(plain(first["callpath"])), source=plain(first["source"]),
        evidence={"function": plain(first["symbol"]), "inside": _other(first), "entries": count},
    )  # fmt: skip


def _in_order(labels: object) -> list[str]:
    """The labels of several `label -> first seq` maps, in the order they first appear."""
    first: dict[str, int] = {}
    for seen in labels:  # type: ignore[attr-defined]
        for label, seq in seen.items():
            first[label] = min(seq, first.get(label, seq))
    return sorted(first, key=first.__getitem__)


def _other(first: pd.Series) -> str:
    return str(first["other_context"]) if isinstance(first["other_context"], str) else "another context"


def _title(first: pd.Series) -> str:
    return f"{first['symbol']} entered by {where(first)} while {_other(first)} was inside it"


def _message(first: pd.Series, count: int) -> str:
    return f"{first['context']} called {first['symbol']}{at(first)} while {_other(first)} had not returned from it; {count} time(s)."
