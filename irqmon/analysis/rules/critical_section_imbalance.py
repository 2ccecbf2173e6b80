"""critical-section-imbalance: interrupts re-enabled too early, or left masked, by unbalanced sections.

Why it is bad:
    A section that disables interrupts and then enables them unconditionally breaks any outer
    section: the caller believes interrupts are still masked and its shared data is exposed.
    An ISR that returns with PRIMASK set or BASEPRI changed leaves thread mode running with
    interrupts masked (PRIMASK is not restored by exception return) or unmasked too far.
    Enter/exit calls that do not pair up leave the RTOS's nesting count wrong.

Example:
    puts() does `cpsid i … cpsie i`; main calls it inside its own `cpsid i` section, and the
    cpsie ends main's section early (seed 002). An ISR that runs `__disable_irq()` on an error
    path and returns.

Instead:
    Save and restore instead of enable: `s = __get_PRIMASK(); __disable_irq(); … __set_PRIMASK(s);`
    (BSD spl style), or the RTOS's nesting-counted sections (taskENTER_CRITICAL /
    taskENTER_CRITICAL_FROM_ISR with its saved mask); make every ISR path restore what it changed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np
import pandas as pd

from irqmon.analysis.common import at, open_isr_call_rows, outer_calls_only, running_counts, where
from irqmon.analysis.context import ACT, EXC_NAME, IN_ISR, NO_CONTEXT, Context, among_sorted, own_paths
from irqmon.analysis.findings import HIT_COLUMNS, Finding, SiteGroups, numbered
from irqmon.analysis.registry import Rule
from irqmon.schema import Event, Kind, Role

RULE = Rule(
    id="critical-section-imbalance", severity="error", summary="interrupt masking not restored as an outer section or the ISR expects",
    needs=(Kind.CRITICAL_SECTION.value,),
)
MASK_REGISTERS = ("primask", "basepri", "faultmask")
# What the checks of mask rows read (mask rows are many: the findings' rows are taken whole, later).
MASK_COLUMNS = ["seq", "symbol", "old_value", "value"]
# What the findings of early unmaskings read of every hit (a site's first hit is taken whole).
EARLY_ENABLE_COLUMNS = [*HIT_COLUMNS, "source", "callpath", "old_value", "value"]
SECTION_COLUMNS = ["seq", "event", "role", "symbol", IN_ISR, ACT]


def stream() -> SectionStream:
    return SectionStream()


class SectionStream:
    """The rule batch by batch.

    Carried rows: per running context and register, the last section opened and the row that
    closed it, the first entries of the current section (call paths missing), an unmasking whose
    judgement needs the next row; per ISR activation not judged yet (still running, or thread
    mode not seen resuming after it; judged at the trace's end at the latest), its first and
    last rows, the thread-mode rows around it, its first and last mask rows per register and its
    last enter/exit call; per running context its last enter/exit call or return (nesting
    without call paths), and the last row of thread mode.
    Kept between batches: per (context, turn) the open RTOS sections and the enters (only
    carried rows are re-judged: counts are not), the activations not judged yet."""

    def __init__(self) -> None:
        self.inner_enable = SiteGroups(
            RULE, site=(EXC_NAME, "symbol", "source", "frames"),
            title=lambda f, g: f"inner section re-enabled {f['symbol']} in {where(f)} while an outer section still needed it",
            message=lambda f, g: (
                f"{f['context']} unmasked {f['symbol']} ({_hex(f['old_value'])} -> {_hex(f['value'])}){at(f)} inside the section "
                f"entered{' at ' + f['outer_source'] if isinstance(f['outer_source'], str) else ''} by a caller, which still relied on it ({g.count} time(s))."
            ),
            evidence=lambda f, g: {
                "case": "inner-enable", "register": f["symbol"], "frames": f["frames"] if isinstance(f["frames"], str) else None,
                "outer_source": f["outer_source"] if isinstance(f["outer_source"], str) else None,
            },
        )  # fmt: skip
        self.isr_changed = SiteGroups(
            RULE, site=(EXC_NAME, "symbol", "source"),
            title=lambda f, g: f"{where(f)} returned with {f['symbol']} {_hex(f['value'])}, entered with {_hex(f['entered_with'])}",
            message=lambda f, g: f"{f['context']} left {f['symbol']} at {_hex(f['value'])}{at(f)}; the interrupted code had {_hex(f['entered_with'])} ({g.count} time(s)).",
            evidence=lambda f, g: {"case": "isr-changed-mask", "register": f["symbol"], "entered_with": _hex(f["entered_with"]), "returned_with": _hex(f["value"])},
        )  # fmt: skip
        self.unpaired = SiteGroups(
            RULE, site=(EXC_NAME, "symbol", "source", "case"),
            title=lambda f, g: f"{f['symbol']} in {where(f)} " + ("without a matching enter" if f["case"] == "exit-without-enter" else "and the ISR returned inside the section"),
            message=lambda f, g: f"{f['context']} called {f['symbol']}{at(f)}: the enter/exit calls of this context do not pair up ({g.count} time(s)).",
            evidence=lambda f, g: {"case": f["case"]},
        )  # fmt: skip
        self.deferred: set[int] = set()  # `seq` of unmaskings judged once the next row of their context and register is seen
        self.pending = np.zeros(0, dtype=np.int64)  # ISR activations not judged yet, sorted
        self.depth: dict[tuple, int] = {}  # (act, turn) -> sections open
        self.entered: dict[tuple, int] = {}  # (act, turn) -> its enters (a capture armed in turns)
        self.entered_ever: dict[tuple, int] = {}  # (act,) -> its enters, per task (or thread mode)
        self.last_calls = _LastCalls.none()  # per ISR activation not judged yet, its last enter/exit call
        self.carried = np.zeros(0, dtype=np.int64)

    def add(self, ctx: Context) -> None:
        masks = _MaskRows.of(ctx)
        sections = ctx.select(event=(Event.CALL.value, Event.RETURN.value), kind=Kind.CRITICAL_SECTION.value, columns=SECTION_COLUMNS)
        carry = [self._early_enable(ctx, masks), self._sections(ctx, sections), self._activations(ctx, masks), self._last_call_rows(sections)]
        if ctx.before is not None:
            carry += [ctx.timeline.thread[-1:], open_isr_call_rows(ctx)]
        self.carried = np.unique(np.concatenate(carry)).astype(np.int64)

    def carry(self, ctx: Context) -> np.ndarray:
        return self.carried

    def findings(self) -> list[Finding]:
        return self.inner_enable.findings() + self.isr_changed.findings() + self.unpaired.findings()

    # --- an inner section's unmasking -------------------------------------------------------

    def _early_enable(self, ctx: Context, masks: _MaskRows) -> np.ndarray:
        """Add the batch's early unmaskings; the rows the next batch needs to judge its own."""
        if masks.empty:
            return np.zeros(0, dtype=np.int64)
        premature, outer_row, depth = _early_enable(ctx, masks)
        judged = masks.rows >= ctx.carried
        if self.deferred:
            judged |= np.isin(masks.seq, list(self.deferred))
        reported = premature & judged
        hits = ctx.rows_at(masks.rows[reported], EARLY_ENABLE_COLUMNS)
        hits["frames"] = own_paths(hits["callpath"])
        outer = outer_row[reported]
        known = outer >= 0
        hits["outer_source"] = pd.Series(pd.NA, index=hits.index, dtype="string")
        hits.loc[hits.index[known], "outer_source"] = ctx.rows_at(outer[known], ["source"])["source"].to_numpy()
        self.inner_enable.add(ctx, hits)
        if ctx.ends_trace:
            return np.zeros(0, dtype=np.int64)
        return self._open_sections(ctx, masks, judged, depth)

    def _open_sections(self, ctx: Context, masks: _MaskRows, judged: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Per context still running and register: the last section opened and the row that closed
        it, the current section's first two entries, and its last row where it is an unmasking
        without a call path (judged once the next row is seen). `judged`, `depth`: per mask row."""
        self.deferred = set()
        running = np.flatnonzero(masks.per_row(_running(ctx, masks.group_contexts)))  # whole (context, register) groups, in their order
        rows, seq, befores, afters = masks.rows[running], masks.seq[running], masks.before[running], masks.after[running]
        levels, judged = depth[running], judged[running]
        bounds = np.flatnonzero(np.r_[masks.first[running], True])
        carry = []
        for begin, end in zip(bounds[:-1], bounds[1:]):
            group, before, after, level = rows[begin:end], befores[begin:end], afters[begin:end], levels[begin:end]
            starts = np.flatnonzero((before == 0) & (after > 0))
            if len(starts):  # the last section opened, and what closed it (older rows carried may not reopen it)
                last = starts[-1]
                rest = slice(last + 1, None)
                lowers = after[rest] < before[rest]
                closes = ((lowers & (after[rest] == 0)) | (before[rest] == 0)) | (lowers & (level[rest] == level[last]))
                carry += [group[last], *group[rest][closes][:1]]
            period = slice(starts[-1] if len(starts) else 0, None)
            entries = (after[period] > 0) & (after[period] >= before[period])
            carry += list(group[period][entries][:2])
            if after[-1] < before[-1] and np.isnan(level[-1]) and judged[end - 1]:
                carry.append(group[-1])
                self.deferred.add(int(seq[end - 1]))
        return np.asarray(carry, dtype=np.int64)

    # --- RTOS enter/exit calls --------------------------------------------------------------

    def _sections(self, ctx: Context, rows: pd.DataFrame) -> np.ndarray:
        """Add the batch's exits without an enter; keep each ISR activation's last call (`rows`:
        the enter/exit calls and returns). The rows to carry: each running context's last enter/exit
        call or return."""
        # A kernel call's own sections in an ISR: its evidence.
        calls = outer_calls_only(ctx, ctx.outermost_calls(rows, [Kind.CRITICAL_SECTION.value]))
        enter_exit = calls["role"].isin([Role.ENTER.value, Role.EXIT.value]).to_numpy(dtype=bool, na_value=False)
        calls = calls[enter_exit & (calls.index.to_numpy() >= ctx.carried)]  # not the carried rows: judged before
        if not calls.empty:
            self._count(ctx, calls)
        if ctx.ends_trace:
            return np.zeros(0, dtype=np.int64)
        act = rows[ACT].to_numpy()
        running = np.flatnonzero(_running(ctx, act))
        _, from_end = np.unique(act[running][::-1], return_index=True)  # each context's last row
        return rows.index.to_numpy()[running[len(running) - 1 - from_end]]

    def _last_call_rows(self, sections: pd.DataFrame) -> np.ndarray:
        """The rows of the last calls of the activations not judged yet (among `sections`, the
        enter/exit calls and returns)."""
        last = np.flatnonzero(np.isin(sections["seq"].to_numpy(), self.last_calls.seq))
        calls = (sections["event"].iloc[last] == Event.CALL.value).to_numpy(dtype=bool)
        return sections.index.to_numpy()[last[calls]]

    def _count(self, ctx: Context, calls: pd.DataFrame) -> None:
        """Nesting per context and turn, counted on from the batches before."""
        # A rotated capture armed the enter/exit site in turns: calls pair up within one turn only
        # (a turn may begin inside a section: exits before its first enter close what it missed),
        # and only an activation seen whole in one turn can be said to return inside a section.
        positions, seq, act = calls.index.to_numpy(), calls["seq"].to_numpy(dtype=np.int64), calls[ACT].to_numpy(dtype=np.int64)
        in_isr, rows = calls[IN_ISR].to_numpy(dtype=bool), np.arange(len(calls))
        turn = ctx.coverage.turn(calls["symbol"], seq) if ctx.coverage else np.zeros(len(calls), dtype=np.int64)
        enters = (calls["role"] == Role.ENTER.value).to_numpy(dtype=bool)
        if ctx.coverage is not None:
            kept = running_counts(enters, [act, turn], self.entered) > 0
            if not kept.any():
                return
            positions, seq, act, in_isr, rows, turn, enters = (column[kept] for column in (positions, seq, act, in_isr, rows, turn, enters))
        # A task's exits before its first enter close sections entered before the capture began.
        thread = np.flatnonzero(~in_isr)
        entered_ever = running_counts(enters[thread], [act[thread]], self.entered_ever)
        step = np.where(enters, 1, -1)
        step[thread[entered_ever == 0]] = 0
        depth = running_counts(step, [act, turn], self.depth)
        stray_exit = ~enters & (depth < 0)
        if stray_exit.any():
            self.unpaired.add(ctx, ctx.rows_at(positions[stray_exit]).assign(case="exit-without-enter"))
        isr = np.flatnonzero(in_isr)
        if len(isr):
            symbol = calls["symbol"].iloc[rows[isr]].to_numpy(dtype=object)
            self.last_calls = self.last_calls.updated(act[isr], seq[isr], symbol, turn[isr], depth[isr])
        self._forget_past_turns(ctx)

    def _forget_past_turns(self, ctx: Context) -> None:
        """Drop the counts of turns no later call can be in."""
        if ctx.coverage is None or ctx.before is None:
            return
        symbols = pd.Series(sorted(ctx.before.facts.symbols(Event.CALL.value, [Kind.CRITICAL_SECTION.value])), dtype=object)
        seq = int(ctx.rows_at(np.array([len(ctx.timeline.time) - 1]), ["seq"])["seq"].iloc[0])
        oldest = int(ctx.coverage.turn(symbols, np.full(len(symbols), seq)).min(initial=0))
        self.depth = {key: value for key, value in self.depth.items() if key[1] >= oldest}
        self.entered = {key: value for key, value in self.entered.items() if key[1] >= oldest}

    # --- ISR activations: judged once it is known how they return ---------------------------

    def _activations(self, ctx: Context, masks: _MaskRows) -> np.ndarray:
        """Judge the ISR activations whose end is known (or the trace's); the rows to carry of
        the others."""
        t, activations = ctx.timeline, ctx.activations
        ids = activations.index.to_numpy()  # sorted
        first_row, last_row = activations["first_row"].to_numpy(), activations["last_row"].to_numpy()
        selected = (last_row >= ctx.carried) | among_sorted(ids, self.pending)
        ids, first_row, last_row = ids[selected], first_row[selected], last_row[selected]
        if ctx.ends_trace:  # what is still open stays open
            self._judge(ctx, ids, masks)
            return np.zeros(0, dtype=np.int64)
        thread = t.thread
        running = ctx.is_latest_activation(ids)  # an exception's latest activation may go on
        # Thread mode seen after it, or none before it (then none will be).
        first_thread, last_thread = (thread[0], thread[-1]) if len(thread) else (np.iinfo(np.int64).max, -1)
        settled = ~running & ((last_row < last_thread) | (first_row < first_thread))
        self._judge(ctx, ids[settled], masks)
        waiting = np.flatnonzero(~settled)
        has_masks = among_sorted(ids[waiting], masks.act[masks.first & masks.in_isr])  # sorted (with repeats)
        waiting = waiting[running[waiting] | has_masks | among_sorted(ids[waiting], self.last_calls.act)]
        self.pending = ids[waiting]
        if not len(waiting):
            return np.zeros(0, dtype=np.int64)
        ends = masks.in_isr & masks.of_contexts(self.pending)
        before = np.searchsorted(thread, first_row[waiting], side="right") - 1  # the thread row before each (-1: none)
        after = np.searchsorted(thread, last_row[waiting], side="right")  # the thread row after each (len(thread): none)
        around = np.r_[before, after]
        return np.concatenate([
            first_row[waiting], last_row[waiting], thread[around[(around >= 0) & (around < len(thread))]],
            masks.rows[ends & masks.first], masks.rows[ends & masks.last],
        ]).astype(np.int64)  # fmt: skip

    def _judge(self, ctx: Context, judged: np.ndarray, masks: _MaskRows) -> None:
        """Judge the activations `judged` (sorted ids) and forget them."""
        self._isr_changed_mask(ctx, masks, masks.in_isr & masks.of_contexts(judged))
        self._returned_inside(ctx, judged)
        if ctx.ends_trace:  # nothing comes after
            return
        self.last_calls = self.last_calls.where(~among_sorted(self.last_calls.act, judged))
        for counts in (self.depth, self.entered):  # (entered_ever counts thread mode only)
            keys = list(counts)
            for key, done in zip(keys, among_sorted(np.array([key[0] for key in keys], dtype=np.int64), judged), strict=True):
                if done:
                    del counts[key]

    def _isr_changed_mask(self, ctx: Context, masks: _MaskRows, judged: np.ndarray) -> None:
        """An ISR activation whose last mask change leaves a register different from its first's
        (`judged`: per mask row, whether it is one of an activation judged now)."""
        if not judged.any():
            return
        judged = np.flatnonzero(judged)  # whole (activation, register) groups
        starts = np.flatnonzero(masks.first[judged])
        ends = np.flatnonzero(masks.last[judged])
        # What the register held on entry: the first old value the group has.
        present = np.where(masks.old_missing[judged], len(judged), np.arange(len(judged)))
        first_present = np.minimum.reduceat(present, starts)
        known = first_present < len(judged)
        entered_with = masks.old_value[judged][np.minimum(first_present, len(judged) - 1)]
        last = judged[ends]
        hit = known & ~masks.value_missing[last] & (masks.value[last] != entered_with)
        hit[hit] = ctx.is_closed(pd.Series(masks.act[last[hit]])).to_numpy()
        hit[hit] = ~ctx.is_switch(pd.Series(masks.act[last[hit]])).to_numpy()  # a context switch returns to another context's mask
        in_order = np.argsort(masks.seq[last[hit]], kind="stable")
        hits, entered_with = last[hit][in_order], entered_with[hit][in_order]
        if ctx.coverage is not None and len(hits):  # a site armed or disarmed inside it: its first or last change may be unseen
            first, last_seq = self._span_seqs(ctx, pd.Series(masks.act[hits]))
            seen = ~ctx.coverage.changed_between(first, last_seq)
            hits, entered_with = hits[seen], entered_with[seen]
        if len(hits):
            self.isr_changed.add(ctx, ctx.rows_at(masks.rows[hits]).assign(entered_with=entered_with))

    def _returned_inside(self, ctx: Context, judged: np.ndarray) -> None:
        """The last enter/exit call of each judged ISR activation (`judged`: sorted ids) that
        returned inside a section."""
        left = self.last_calls.where(among_sorted(self.last_calls.act, judged))
        left = left.where(left.one_turn & (left.depth > 0))
        if not len(left.act):
            return
        acts = pd.Series(left.act)
        returned = ctx.is_closed(acts).to_numpy(copy=True)
        if ctx.coverage is not None:  # nor did the site's turn end before the activation did
            _, ends = self._span_seqs(ctx, acts)
            returned &= ctx.coverage.turn(pd.Series(left.symbol), ends) == left.turn
        rows = ctx.select(event=Event.CALL.value, kind=Kind.CRITICAL_SECTION.value, columns=["seq"])
        hits = ctx.rows_at(rows.index.to_numpy()[np.isin(rows["seq"].to_numpy(), left.seq[returned])])
        self.unpaired.add(ctx, hits.assign(case="isr-returned-inside"))

    @staticmethod
    def _span_seqs(ctx: Context, acts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """The `seq` of each activation's first and last rows."""
        span = ctx.activations.loc[acts.to_numpy(), ["first_row", "last_row"]]
        return tuple(ctx.rows_at(span[end].to_numpy(), ["seq"])["seq"].to_numpy() for end in ("first_row", "last_row"))  # type: ignore[return-value]


def _running(ctx: Context, acts: np.ndarray) -> np.ndarray:
    """Per act, whether that context may have rows after this batch: thread mode (a task, or
    main), or an exception's latest activation in the batch."""
    acts = np.asarray(acts, dtype=np.int64)
    return ((acts < 0) & (acts != NO_CONTEXT)) | ctx.is_latest_activation(acts)


@dataclass
class _MaskRows:
    """A batch's rows that change a mask register, in (context, register, time) order: the rows
    of each (context, register) together (`first`, `last`: a group's first and last row), in
    time order within it; per row, as arrays."""

    rows: np.ndarray  # positions
    act: np.ndarray
    in_isr: np.ndarray
    seq: np.ndarray
    before: np.ndarray  # how much the register masked before the row (`_strength`), NaN unknown
    after: np.ndarray  # and after it
    old_value: np.ndarray  # the register before the row (0 where `old_missing`)
    old_missing: np.ndarray
    value: np.ndarray  # the register after it (0 where `value_missing`)
    value_missing: np.ndarray
    first: np.ndarray
    last: np.ndarray

    @classmethod
    def of(cls, ctx: Context) -> _MaskRows:
        rows = ctx.rows_at(ctx.positions_of(event=Event.MASK.value), MASK_COLUMNS)
        seq = rows["seq"].to_numpy(dtype=np.int64)
        if len(seq) > 1 and not (seq[1:] > seq[:-1]).all():
            rows = rows.iloc[np.argsort(seq, kind="stable")]
            seq = rows["seq"].to_numpy(dtype=np.int64)
        # Registers numbered in order of first appearance; the registers' rows only.
        register, names = pd.factorize(rows["symbol"])
        names = np.asarray(names, dtype=object)
        kept = np.flatnonzero(np.r_[np.isin(names, MASK_REGISTERS), False][register])
        positions = rows.index.to_numpy()
        act = ctx.timeline.act[positions]
        order = kept[np.lexsort((seq[kept], register[kept], act[kept]))]
        register, act, positions = register[order], act[order], positions[order]
        first = np.r_[True, (act[1:] != act[:-1]) | (register[1:] != register[:-1])] if len(order) else np.zeros(0, dtype=bool)
        basepri = np.r_[names == "basepri", False][register]
        old_value, old_missing = (column[order] for column in _integers(rows["old_value"]))
        value, value_missing = (column[order] for column in _integers(rows["value"]))
        return cls(
            rows=positions, act=act, in_isr=ctx.timeline.in_isr[positions], seq=seq[order],
            before=_strength(old_value, old_missing, basepri), after=_strength(value, value_missing, basepri),
            old_value=old_value, old_missing=old_missing, value=value, value_missing=value_missing,
            first=first, last=np.r_[first[1:], True] if len(order) else first,
        )  # fmt: skip

    @property
    def empty(self) -> bool:
        return len(self.rows) == 0

    @cached_property
    def group_start(self) -> np.ndarray:
        """Per row, its group's first row."""
        return np.maximum.accumulate(np.where(self.first, np.arange(len(self.first)), 0))

    @cached_property
    def group_contexts(self) -> np.ndarray:
        """Per group, its context."""
        return self.act[self.first]

    @cached_property
    def group_sizes(self) -> np.ndarray:
        """Per group, how many rows it has."""
        return np.diff(np.r_[np.flatnonzero(self.first), len(self.first)])

    def per_row(self, per_group: np.ndarray) -> np.ndarray:
        """A value per group, repeated over the group's rows."""
        return np.repeat(per_group, self.group_sizes)

    def of_contexts(self, acts: np.ndarray) -> np.ndarray:
        """Per row, whether its context is one of `acts` (sorted ids); looked up once per group."""
        return self.per_row(among_sorted(self.group_contexts, acts))


@dataclass
class _LastCalls:
    """Per ISR activation not judged yet (`act`, sorted), its last enter/exit call (`seq`,
    `symbol`, `turn`), the sections open after it (`depth`), and whether all its calls were in
    one turn of their site (`one_turn`)."""

    act: np.ndarray
    seq: np.ndarray
    symbol: np.ndarray
    turn: np.ndarray
    depth: np.ndarray
    one_turn: np.ndarray

    @classmethod
    def none(cls) -> _LastCalls:
        empty = np.zeros(0, dtype=np.int64)
        return cls(empty, empty, np.zeros(0, dtype=object), empty, empty, np.zeros(0, dtype=bool))

    def _columns(self) -> list[np.ndarray]:
        return [getattr(self, f.name) for f in fields(self)]

    def where(self, kept: np.ndarray) -> _LastCalls:
        return _LastCalls(*(column[kept] for column in self._columns()))

    def updated(self, act: np.ndarray, seq: np.ndarray, symbol: np.ndarray, turn: np.ndarray, depth: np.ndarray) -> _LastCalls:
        """With a batch's calls (in time order): each activation's last one instead of what it had."""
        order = np.argsort(act, kind="stable")  # each activation's calls together, in time order
        starts = np.flatnonzero(np.r_[True, act[order][1:] != act[order][:-1]])
        last = order[np.r_[starts[1:], len(order)] - 1]
        turns = turn[order]
        one_turn = np.minimum.reduceat(turns, starts) == np.maximum.reduceat(turns, starts)
        acts = act[last]  # sorted
        # An activation with calls in the batches before: in one turn if those were, and in the same.
        went_on = among_sorted(acts, self.act)
        before = np.searchsorted(self.act, acts[went_on])
        one_turn[went_on] &= self.one_turn[before] & (self.turn[before] == turns[starts][went_on])
        latest = _LastCalls(acts, seq[last], symbol[last], turn[last], depth[last], one_turn)
        kept = self.where(~among_sorted(self.act, acts))
        order = np.argsort(np.r_[kept.act, acts], kind="stable")
        return _LastCalls(*(np.concatenate([old, new])[order] for old, new in zip(kept._columns(), latest._columns(), strict=True)))


def _integers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """An integer column's values (0 where missing), and where they are missing."""
    return column.to_numpy(dtype=np.int64, na_value=0), column.isna().to_numpy()


def _strength(values: np.ndarray, missing: np.ndarray, basepri: np.ndarray) -> np.ndarray:
    """How much a mask register masks: 0 nothing; PRIMASK/FAULTMASK 1; BASEPRI 256 - value;
    NaN where the value is missing."""
    raw = values.astype(float)
    strength = np.where(basepri, 256.0 - raw, 1.0)
    strength[raw == 0] = 0.0
    strength[missing] = np.nan
    return strength


def _early_enable(ctx: Context, masks: _MaskRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An unmasking while a section entered by a caller is still open: per mask row, whether it
    unmasks early, the row that opened the section it ends early (-1: none known), and its call
    depth.

    A section opens where a frame masks from nothing (`before` 0) and closes where that frame
    unmasks, where anything unmasks completely, or where the register is found unmasked. An
    unmasking in a deeper frame while a shallower frame's section is open (and masks more than
    what is left) ends the caller's section early.
    Rows without a call path fall back on: a nested entry, an unmasking, and then an exit that
    finds nothing to unmask (the caller's own exit, come too late).
    """
    rows, before, after = masks.rows, masks.before, masks.after
    depth = ctx.frame_depth(rows)
    starts = (before == 0) & (after > 0)
    lowers = after < before
    # Found unmasked (by this context or one that ran meanwhile): no section is open any more.
    reset = (lowers & (after == 0)) | (before == 0)
    premature = np.zeros(len(rows), dtype=bool)
    outer_row = np.full(len(rows), -1, dtype=np.int64)
    unmaskings = np.flatnonzero(lowers & ~np.isnan(depth))
    opens_or_lowers = starts | lowers
    for level in np.unique(depth[starts & ~np.isnan(depth)]):  # one pass per call depth that opens sections, outermost first
        # Per deeper unmasking not judged yet, the last mark of its group before it: an open of
        # this depth (what the section masks, and its row), or a close (nothing, no row).
        marks = np.r_[-1, np.flatnonzero(reset | (opens_or_lowers & (depth == level)))]
        deeper = unmaskings[(depth[unmaskings] > level) & ~premature[unmaskings]]
        mark = marks[np.searchsorted(marks, deeper) - 1]
        open_before = (mark >= masks.group_start[deeper]) & starts[mark] & (depth[mark] == level)
        hit = np.where(open_before, after[mark], 0.0) > after[deeper]
        outer_row[deeper[hit]] = np.where(open_before, rows[mark], -1)[hit]
        premature[deeper[hit]] = True
    if np.isnan(depth).any():
        premature |= _early_enable_without_frames(ctx, masks, lowers) & np.isnan(depth)
    return premature, outer_row, depth


def _early_enable_without_frames(ctx: Context, masks: _MaskRows, lowers: np.ndarray) -> np.ndarray:
    before, after = masks.before, masks.after
    starts = (before == 0) & (after > 0)
    entries = (after > 0) & (after >= before)
    # Entries counted per period: from a group's first row, or from a section's opening, on.
    period_start = np.flatnonzero(masks.first | starts)
    counted = np.cumsum(entries)
    entries_in_period = counted - np.repeat(counted[period_start] - entries[period_start], np.diff(np.r_[period_start, len(entries)]))
    exits = ctx.rows_at(masks.rows, ["role"])["role"].isin([Role.ENABLE.value, Role.WRITE.value]).fillna(False).to_numpy(dtype=bool)
    redundant_exit = exits & (before == 0) & (after == 0)
    next_redundant = np.r_[redundant_exit[1:], False] & ~masks.last
    return lowers & (entries_in_period >= 2) & next_redundant


def _hex(value: object) -> str:
    return "?" if value is None or value is pd.NA or value != value else f"{int(value):#x}"
