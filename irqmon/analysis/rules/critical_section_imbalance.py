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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from irqmon.analysis.common import at, fresh, open_isr_call_rows, outer_calls_only, where
from irqmon.analysis.context import ACT, EXC_NAME, IN_ISR, NO_CONTEXT, Context, own_paths
from irqmon.analysis.findings import Finding, Group, SiteGroups
from irqmon.analysis.registry import Rule
from irqmon.schema import Event, Kind, Role

RULE = Rule(
    id="critical-section-imbalance", severity="error", summary="interrupt masking not restored as an outer section or the ISR expects",
    needs=(Kind.CRITICAL_SECTION.value,),
)
MASK_REGISTERS = ("primask", "basepri", "faultmask")
# What the checks of mask rows read (mask rows are many: the findings' rows are taken whole, later).
MASK_COLUMNS = ["seq", "symbol", "role", "old_value", "value", IN_ISR, ACT]
SECTION_COLUMNS = ["seq", "event", "role", "symbol", IN_ISR, ACT]


def stream() -> SectionStream:
    return SectionStream()


@dataclass
class _LastCall:
    """An ISR activation's last enter/exit call so far: where, in which turn, and the nesting after it."""

    seq: int
    symbol: str
    turn: int
    depth: int
    one_turn: bool  # all the activation's calls so far in one turn of their site


class SectionStream:
    """The rule batch by batch.

    Carried rows: per context and register still running, the section a caller opened and the
    first entries of the current section (call paths missing), an unmasking whose judgement
    needs the next row; per activation not judged yet (still running, or thread mode not seen
    resuming after it), its first and last rows, the thread-mode rows around it, its first and
    last mask rows per register and its last enter/exit call; per context its last enter/exit
    call or return (nesting without call paths), and the last row of thread mode.
    Kept between batches: per (context, turn) the open RTOS sections, the tasks that entered one,
    the activations not judged yet."""

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
        self.pending: set[int] = set()  # ISR activations not judged yet
        self.depth: dict[tuple[int, int], int] = {}  # (act, turn) -> sections open
        self.entered: set[tuple[int, int]] = set()  # (act, turn) with an enter (a capture armed in turns)
        self.tasks_entered: set[int] = set()  # thread-mode contexts that entered a section
        self.last_calls: dict[int, _LastCall] = {}  # per ISR activation not judged yet
        self.carried = np.zeros(0, dtype=np.int64)

    def add(self, ctx: Context) -> None:
        masks = ctx.select(event=Event.MASK.value, columns=MASK_COLUMNS)
        masks = masks[masks["symbol"].isin(MASK_REGISTERS).fillna(False).astype(bool)].sort_values("seq")
        masks = masks.assign(before=_strength(masks, "old_value"), after=_strength(masks, "value"))
        carry = [self._early_enable(ctx, masks), self._sections(ctx), self._activations(ctx, masks), self._last_call_rows(ctx)]
        if ctx.before is not None:
            thread = np.flatnonzero(ctx.timeline.ipsr == 0)
            carry += [thread[-1:], open_isr_call_rows(ctx)]
        self.carried = np.unique(np.concatenate(carry)).astype(np.int64)

    def carry(self, ctx: Context) -> np.ndarray:
        return self.carried

    def findings(self) -> list[Finding]:
        return self.inner_enable.findings() + self.isr_changed.findings() + self.unpaired.findings()

    # --- an inner section's unmasking -------------------------------------------------------

    def _early_enable(self, ctx: Context, masks: pd.DataFrame) -> np.ndarray:
        """Add the batch's early unmaskings; the rows the next batch needs to judge its own."""
        if masks.empty:
            return np.zeros(0, dtype=np.int64)
        rows, premature, outer_row, depth = _early_enable(ctx, masks)
        seq = ctx.rows_at(rows, ["seq"])["seq"].to_numpy()
        judged = (rows >= ctx.carried) | np.isin(seq, list(self.deferred))
        hits = ctx.rows_at(rows[premature & judged])
        hits["frames"] = own_paths(hits["callpath"])
        outer = outer_row[premature & judged]
        known = ~np.isnan(outer) & (outer >= 0)
        hits["outer_source"] = pd.Series(pd.NA, index=hits.index, dtype="string")
        hits.loc[hits.index[known], "outer_source"] = ctx.rows_at(outer[known].astype(np.int64), ["source"])["source"].to_numpy()
        self.inner_enable.add(ctx, hits)
        return self._open_sections(ctx, masks, judged_rows=rows[judged], depth=pd.Series(depth, index=rows))

    def _open_sections(self, ctx: Context, masks: pd.DataFrame, judged_rows: np.ndarray, depth: pd.Series) -> np.ndarray:
        """Per context still running and register: the last section opened where it is still open,
        the current section's first two entries, and its last row where it is an unmasking
        without a call path (judged once the next row is seen)."""
        self.deferred = set()
        running = masks[_running(ctx, masks[ACT].to_numpy())]
        carry = []
        for _, group in running.groupby([ACT, "symbol"], sort=False):
            before, after = group["before"].to_numpy(), group["after"].to_numpy()
            level = depth.reindex(group.index).to_numpy()
            starts = np.flatnonzero((before == 0) & (after > 0))
            if len(starts):
                last = starts[-1]
                rest = slice(last + 1, None)
                lowers = after[rest] < before[rest]
                closes = ((lowers & (after[rest] == 0)) | (before[rest] == 0)) | (lowers & (level[rest] == level[last]))
                if not np.isnan(level[last]) and not closes.any():
                    carry.append(group.index[last])
            period = slice(starts[-1] if len(starts) else 0, None)
            entries = (after[period] > 0) & (after[period] >= before[period])
            carry += list(group.index[period][entries][:2])
            end = group.index[-1]
            if after[-1] < before[-1] and np.isnan(level[-1]) and end in judged_rows:
                carry.append(end)
                self.deferred.add(int(group["seq"].iloc[-1]))
        return np.asarray(carry, dtype=np.int64)

    # --- RTOS enter/exit calls --------------------------------------------------------------

    def _sections(self, ctx: Context) -> np.ndarray:
        """Add the batch's exits without an enter; keep each ISR activation's last call. The rows
        to carry: each running context's last enter/exit call or return."""
        rows = ctx.select(event=(Event.CALL.value, Event.RETURN.value), kind=Kind.CRITICAL_SECTION.value, columns=SECTION_COLUMNS)
        last_rows = rows.groupby(ACT, sort=False).tail(1)
        last_rows = last_rows.index.to_numpy()[_running(ctx, last_rows[ACT].to_numpy())]
        # A kernel call's own sections in an ISR: its evidence.
        calls = outer_calls_only(ctx, ctx.outermost_calls(rows, [Kind.CRITICAL_SECTION.value]))
        calls = fresh(ctx, calls[calls["role"].isin([Role.ENTER.value, Role.EXIT.value]).fillna(False).astype(bool)])
        if not calls.empty:
            self._count(ctx, calls)
        return last_rows

    def _last_call_rows(self, ctx: Context) -> np.ndarray:
        """The rows of the last calls of the activations not judged yet."""
        rows = ctx.select(event=Event.CALL.value, kind=Kind.CRITICAL_SECTION.value, columns=["seq"])
        return rows.index.to_numpy()[rows["seq"].isin([call.seq for call in self.last_calls.values()]).to_numpy(dtype=bool)]

    def _count(self, ctx: Context, calls: pd.DataFrame) -> None:
        """Nesting per context and turn, counted on from the batches before."""
        # A rotated capture armed the enter/exit site in turns: calls pair up within one turn only
        # (a turn may begin inside a section: exits before its first enter close what it missed),
        # and only an activation seen whole in one turn can be said to return inside a section.
        turn = ctx.coverage.turn(calls["symbol"], calls["seq"].to_numpy()) if ctx.coverage else np.zeros(len(calls), dtype=np.int64)
        act = calls[ACT].to_numpy()
        enters = (calls["role"] == Role.ENTER.value).to_numpy(dtype=bool)
        if ctx.coverage is not None:
            entered = _cumulative(enters, [act, turn], lambda key: int(key in self.entered)) > 0
            self.entered.update(zip(act[enters].tolist(), turn[enters].tolist()))
            calls, act, turn, enters = calls[entered], act[entered], turn[entered], enters[entered]
            if calls.empty:
                return
        in_isr = calls[IN_ISR].to_numpy(dtype=bool)
        # A task's exits before its first enter close sections entered before the capture began.
        opened_before = ~in_isr & (_cumulative(enters, [act], lambda key: int(key[0] in self.tasks_entered)) == 0)
        self.tasks_entered.update(act[enters & ~in_isr].tolist())
        step = np.where(enters, 1, np.where(opened_before, 0, -1))
        depth = _cumulative(step, [act, turn], lambda key: self.depth.get(key, 0))
        for key, value in zip(zip(act.tolist(), turn.tolist()), depth.tolist()):  # the last value per key stays
            self.depth[key] = value
        stray_exit = ~enters & (depth < 0)
        self.unpaired.add(ctx, ctx.rows_at(calls.index[stray_exit].to_numpy()).assign(case="exit-without-enter"))
        symbols, seqs = calls["symbol"].to_numpy(dtype=object), calls["seq"].to_numpy()
        for i in np.flatnonzero(in_isr):
            before = self.last_calls.get(int(act[i]))
            one_turn = before is None or (before.one_turn and before.turn == turn[i])
            self.last_calls[int(act[i])] = _LastCall(int(seqs[i]), str(symbols[i]), int(turn[i]), int(depth[i]), one_turn)
        self._forget_past_turns(ctx)

    def _forget_past_turns(self, ctx: Context) -> None:
        """Drop the counts of turns no later call can be in."""
        if ctx.coverage is None or ctx.before is None:
            return
        symbols = pd.Series(sorted(ctx.before.facts.symbols(Event.CALL.value, [Kind.CRITICAL_SECTION.value])), dtype=object)
        seq = int(ctx.rows_at(np.array([len(ctx.timeline.time) - 1]), ["seq"])["seq"].iloc[0])
        oldest = int(ctx.coverage.turn(symbols, np.full(len(symbols), seq)).min(initial=0))
        self.depth = {key: value for key, value in self.depth.items() if key[1] >= oldest}
        self.entered = {key for key in self.entered if key[1] >= oldest}

    # --- ISR activations: judged once it is known how they return ---------------------------

    def _activations(self, ctx: Context, masks: pd.DataFrame) -> np.ndarray:
        """Judge the ISR activations whose end is known (or the trace's); the rows to carry of
        the others."""
        t, activations = ctx.timeline, ctx.activations
        fresh_acts = np.unique(t.act[ctx.carried :][t.in_isr[ctx.carried :]])
        acts = activations.loc[activations.index.isin(np.r_[fresh_acts, list(self.pending)])]
        thread = np.flatnonzero(t.ipsr == 0)
        before = t.thread_rows[acts["first_row"].to_numpy()] - 1  # the thread row before each (-1: none)
        after = t.thread_rows[acts["last_row"].to_numpy()]  # the thread row after each (len(thread): none)
        running = _running(ctx, acts.index.to_numpy())
        settled = np.full(len(acts), ctx.ends_trace) | (~running & ((after < len(thread)) | (before < 0)))
        judged = acts.index[settled]
        isr_masks = masks[masks[IN_ISR].to_numpy(dtype=bool)]
        self._isr_changed_mask(ctx, isr_masks[isr_masks[ACT].isin(judged).to_numpy(dtype=bool)])
        self._returned_inside(ctx, judged)
        for act in judged.tolist():
            self.last_calls.pop(act, None)
        self.depth = {key: value for key, value in self.depth.items() if key[0] not in set(judged.tolist())}
        self.entered = {key for key in self.entered if key[0] not in set(judged.tolist())}
        has_masks = acts.index.isin(isr_masks[ACT].unique())
        waiting = ~settled & (running | has_masks | acts.index.isin(list(self.last_calls)))
        self.pending = set(acts.index[waiting].tolist())
        if not waiting.any():
            return np.zeros(0, dtype=np.int64)
        kept = acts[waiting]
        ends = isr_masks[isr_masks[ACT].isin(kept.index).to_numpy(dtype=bool)].groupby([ACT, "symbol"], sort=False)
        around = np.r_[before[waiting], after[waiting]]
        return np.concatenate([
            kept["first_row"].to_numpy(), kept["last_row"].to_numpy(), thread[around[(around >= 0) & (around < len(thread))]],
            ends.head(1).index.to_numpy(), ends.tail(1).index.to_numpy(),
        ]).astype(np.int64)  # fmt: skip

    def _isr_changed_mask(self, ctx: Context, isr: pd.DataFrame) -> None:
        """An ISR activation whose last mask change leaves a register different from its first's."""
        if isr.empty:
            return
        isr = isr.assign(entered_with=isr.groupby([ACT, "symbol"], sort=False)["old_value"].transform("first"))
        last = isr.groupby([ACT, "symbol"], sort=False).tail(1)
        changed = (last["value"] != last["entered_with"]).fillna(False).astype(bool)
        closed = ctx.is_closed(last[ACT])
        switched = ctx.is_switch(last[ACT])
        hits = last[changed & closed & ~switched]  # a context switch returns to another context's mask
        if ctx.coverage is not None and not hits.empty:  # a site armed or disarmed inside it: its first or last change may be unseen
            first, last_seq = self._span_seqs(ctx, hits[ACT])
            hits = hits[~ctx.coverage.changed_between(first, last_seq)]
        self.isr_changed.add(ctx, ctx.rows_at(hits.index.to_numpy()).assign(entered_with=hits["entered_with"]))

    def _returned_inside(self, ctx: Context, judged: pd.Index) -> None:
        """The last enter/exit call of each judged ISR activation that returned inside a section."""
        left = {act: call for act, call in self.last_calls.items() if act in set(judged.tolist()) and call.one_turn and call.depth > 0}
        if not left:
            return
        acts = pd.Series(list(left), dtype=np.int64)
        closed = ctx.is_closed(acts).to_numpy(copy=True)
        if ctx.coverage is not None:  # nor did the site's turn end before the activation did
            _, ends = self._span_seqs(ctx, acts)
            symbols = pd.Series([call.symbol for call in left.values()], dtype=object)
            closed &= ctx.coverage.turn(symbols, ends) == np.array([call.turn for call in left.values()])
        seqs = [call.seq for call, keep in zip(left.values(), closed, strict=True) if keep]
        rows = ctx.select(event=Event.CALL.value, kind=Kind.CRITICAL_SECTION.value, columns=["seq"])
        hits = ctx.rows_at(rows.index.to_numpy()[rows["seq"].isin(seqs).to_numpy(dtype=bool)])
        self.unpaired.add(ctx, hits.assign(case="isr-returned-inside"))

    @staticmethod
    def _span_seqs(ctx: Context, acts: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        """The `seq` of each activation's first and last rows."""
        span = ctx.activations.loc[acts.to_numpy(), ["first_row", "last_row"]]
        return tuple(ctx.rows_at(span[end].to_numpy(), ["seq"])["seq"].to_numpy() for end in ("first_row", "last_row"))  # type: ignore[return-value]


def _running(ctx: Context, acts: np.ndarray) -> np.ndarray:
    """Per act, whether that context may have rows after this batch: thread mode (a task, or
    main), or an exception's latest activation in the batch."""
    t = ctx.timeline
    latest = pd.Series(t.act[t.in_isr]).groupby(t.ipsr[t.in_isr]).max()
    acts = np.asarray(acts, dtype=np.int64)
    isr = acts > 0
    running = (acts < 0) & (acts != NO_CONTEXT)
    running[isr] = latest.reindex(acts[isr] >> 32).to_numpy() == acts[isr]
    return running


def _cumulative(values: np.ndarray, by: list[np.ndarray], start: object) -> np.ndarray:
    """Per row, the running sum of `values` within its `by` group, on from `start(key)` (a
    group's count from the batches before)."""
    keys = pd.MultiIndex.from_arrays(by) if len(by) > 1 else pd.Index(by[0])
    number, uniques = pd.factorize(keys)
    initial = np.array([start(key if isinstance(key, tuple) else (key,)) for key in uniques], dtype=np.int64)  # type: ignore[operator]
    return initial[number] + pd.Series(values).groupby(number).cumsum().to_numpy()


def _strength(masks: pd.DataFrame, column: str) -> pd.Series:
    """How much a mask register masks: 0 nothing; PRIMASK/FAULTMASK 1; BASEPRI 256 - value."""
    raw = masks[column].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    basepri = (masks["symbol"] == "basepri").to_numpy(dtype=bool)
    strength = np.where(basepri, np.where(raw == 0, 0.0, 256.0 - raw), (raw != 0).astype(float))
    return pd.Series(np.where(np.isnan(raw), np.nan, strength), index=masks.index)


def _early_enable(ctx: Context, masks: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """An unmasking while a section entered by a caller is still open: the masks' rows (in
    context, register, time order), which unmask early, the row that opened the section each
    of those ends early, and each row's call depth.

    A section opens where a frame masks from nothing (`before` 0) and closes where that frame
    unmasks, where anything unmasks completely, or where the register is found unmasked. An
    unmasking in a deeper frame while a shallower frame's section is open (and masks more than
    what is left) ends the caller's section early.
    Rows without a call path fall back on: a nested entry, an unmasking, and then an exit that
    finds nothing to unmask (the caller's own exit, come too late).
    """
    # Rows in (context, register) order, in time order within each: group-wise fills and shifts
    # become plain array operations with a reset at every group's first row.
    register = pd.factorize(masks["symbol"])[0]
    order = np.lexsort((masks["seq"].to_numpy(), register, masks[ACT].to_numpy()))
    act, register = masks[ACT].to_numpy()[order], register[order]
    first = np.r_[True, (np.diff(act) != 0) | (register[1:] != register[:-1])]
    rows = masks.index.to_numpy()[order]
    depth = ctx.frame_depth(rows)
    before = masks["before"].to_numpy()[order]
    after = masks["after"].to_numpy()[order]
    starts = (before == 0) & (after > 0)
    lowers = after < before
    # Found unmasked (by this context or one that ran meanwhile): no section is open any more.
    reset = (lowers & (after == 0)) | (before == 0)
    premature = np.zeros(len(masks), dtype=bool)
    outer_row = np.full(len(masks), np.nan)
    positions = rows.astype(float)
    for level in np.unique(depth[starts & ~np.isnan(depth)]):  # one pass per call depth that opens sections
        opens = starts & (depth == level)
        closes = reset | (lowers & (depth == level))
        held = _held_before(np.where(opens, after, np.where(closes, 0.0, np.nan)), first, 0.0)
        opener = _held_before(np.where(opens, positions, np.where(closes, -1.0, np.nan)), first, -1.0)
        hit = lowers & (depth > level) & (held > after) & np.isnan(outer_row)
        outer_row[hit] = opener[hit]
        premature |= hit
    if np.isnan(depth).any():
        # Group-wise in the masks' own order: within a (context, register) group it is time order too.
        without_frames = _early_enable_without_frames(masks, [masks[ACT], masks["symbol"]], masks["after"] < masks["before"])
        premature |= without_frames.to_numpy()[order] & np.isnan(depth)
    return rows, premature, outer_row, depth


def _held_before(marks: np.ndarray, first: np.ndarray, empty: float) -> np.ndarray:
    """Per row, the last mark before it in its group (`empty` where there is none)."""
    marks = marks.copy()
    marks[first & np.isnan(marks)] = empty
    carried = pd.Series(marks).ffill().to_numpy()
    shifted = np.r_[empty, carried[:-1]]
    shifted[first] = empty
    return shifted


def _early_enable_without_frames(masks: pd.DataFrame, key: list[pd.Series], lowers: pd.Series) -> pd.Series:
    starts = (masks["before"] == 0) & (masks["after"] > 0)
    entries = (masks["after"] > 0) & (masks["after"] >= masks["before"])
    period = starts.astype(np.int64).groupby(key).cumsum()
    entries_in_period = entries.astype(np.int64).groupby([*key, period]).cumsum()
    exits = masks["role"].isin([Role.ENABLE.value, Role.WRITE.value]).fillna(False).astype(bool)
    redundant_exit = exits & (masks["before"] == 0) & (masks["after"] == 0)
    next_redundant = redundant_exit.groupby(key).shift(-1).fillna(False).astype(bool)
    return (lowers & (entries_in_period >= 2) & next_redundant).fillna(False).astype(bool)


def _hex(value: object) -> str:
    return "?" if value is None or value is pd.NA or value != value else f"{int(value):#x}"
