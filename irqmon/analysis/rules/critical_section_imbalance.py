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

import numpy as np
import pandas as pd

from irqmon.analysis.common import at, fresh, keep_last, open_isr_call_rows, outer_calls_only, running_sums, where
from irqmon.analysis.context import ACT, EXC_NAME, IN_ISR, NO_CONTEXT, Context, among_sorted, own_paths
from irqmon.analysis.findings import Finding, SiteGroups
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
        self.entered_ever: dict[tuple, int] = {}  # (act,) -> its enters
        # Per ISR activation not judged yet, its last enter/exit call (`seq`, `symbol`, `turn`), the
        # sections open after it (`depth`), and whether all its calls were in one turn of their site.
        self.last_calls = pd.DataFrame(
            {"seq": pd.Series(dtype=np.int64), "symbol": pd.Series(dtype=object), "turn": pd.Series(dtype=np.int64),
             "depth": pd.Series(dtype=np.int64), "one_turn": pd.Series(dtype=bool)},
        ).rename_axis(ACT)  # fmt: skip
        self.carried = np.zeros(0, dtype=np.int64)

    def add(self, ctx: Context) -> None:
        masks = ctx.select(event=Event.MASK.value, columns=MASK_COLUMNS)
        masks = masks[masks["symbol"].isin(MASK_REGISTERS).fillna(False).astype(bool)].sort_values("seq")
        masks = masks.assign(before=_strength(masks, "old_value"), after=_strength(masks, "value"))
        carry = [self._early_enable(ctx, masks), self._sections(ctx), self._activations(ctx, masks), self._last_call_rows(ctx)]
        if ctx.before is not None:
            carry += [ctx.timeline.thread[-1:], open_isr_call_rows(ctx)]
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
        if ctx.ends_trace:
            return np.zeros(0, dtype=np.int64)
        return self._open_sections(ctx, masks, judged_rows=rows[judged], depth=pd.Series(depth, index=rows))

    def _open_sections(self, ctx: Context, masks: pd.DataFrame, judged_rows: np.ndarray, depth: pd.Series) -> np.ndarray:
        """Per context still running and register: the last section opened and the row that closed
        it, the current section's first two entries, and its last row where it is an unmasking
        without a call path (judged once the next row is seen)."""
        self.deferred = set()
        running = masks[_running(ctx, masks[ACT].to_numpy())]
        register = pd.factorize(running["symbol"])[0]
        seq = running["seq"].to_numpy()
        order = np.lexsort((seq, register, running[ACT].to_numpy()))  # (context, register) groups, each in time order
        act, register, seq = running[ACT].to_numpy()[order], register[order], seq[order]
        rows = running.index.to_numpy()[order]
        befores, afters = running["before"].to_numpy()[order], running["after"].to_numpy()[order]
        levels = depth.reindex(rows).to_numpy()
        judged = np.isin(rows, judged_rows)
        bounds = np.flatnonzero(np.r_[True, (act[1:] != act[:-1]) | (register[1:] != register[:-1]), True]) if len(rows) else []
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

    def _sections(self, ctx: Context) -> np.ndarray:
        """Add the batch's exits without an enter; keep each ISR activation's last call. The rows
        to carry: each running context's last enter/exit call or return."""
        rows = ctx.select(event=(Event.CALL.value, Event.RETURN.value), kind=Kind.CRITICAL_SECTION.value, columns=SECTION_COLUMNS)
        # A kernel call's own sections in an ISR: its evidence.
        calls = outer_calls_only(ctx, ctx.outermost_calls(rows, [Kind.CRITICAL_SECTION.value]))
        calls = fresh(ctx, calls[calls["role"].isin([Role.ENTER.value, Role.EXIT.value]).fillna(False).astype(bool)])
        if not calls.empty:
            self._count(ctx, calls)
        if ctx.ends_trace:
            return np.zeros(0, dtype=np.int64)
        last_rows = rows.groupby(ACT, sort=False).tail(1)
        return last_rows.index.to_numpy()[_running(ctx, last_rows[ACT].to_numpy())]

    def _last_call_rows(self, ctx: Context) -> np.ndarray:
        """The rows of the last calls of the activations not judged yet."""
        rows = ctx.select(event=Event.CALL.value, kind=Kind.CRITICAL_SECTION.value, columns=["seq"])
        return rows.index.to_numpy()[rows["seq"].isin(self.last_calls["seq"]).to_numpy(dtype=bool)]

    def _count(self, ctx: Context, calls: pd.DataFrame) -> None:
        """Nesting per context and turn, counted on from the batches before."""
        # A rotated capture armed the enter/exit site in turns: calls pair up within one turn only
        # (a turn may begin inside a section: exits before its first enter close what it missed),
        # and only an activation seen whole in one turn can be said to return inside a section.
        turn = ctx.coverage.turn(calls["symbol"], calls["seq"].to_numpy()) if ctx.coverage else np.zeros(len(calls), dtype=np.int64)
        keys = pd.DataFrame({ACT: calls[ACT].to_numpy(), "turn": turn})
        enters = (calls["role"] == Role.ENTER.value).to_numpy(dtype=bool)
        if ctx.coverage is not None:
            entered = running_sums(enters, keys, self.entered)
            keep_last(entered, keys, self.entered)
            calls, keys, enters = calls[entered > 0], keys[entered > 0], enters[entered > 0]
            if calls.empty:
                return
        in_isr = calls[IN_ISR].to_numpy(dtype=bool)
        # A task's exits before its first enter close sections entered before the capture began.
        entered_ever = running_sums(enters, keys[[ACT]], self.entered_ever)
        keep_last(entered_ever, keys[[ACT]], self.entered_ever)
        step = np.where(enters, 1, np.where(~in_isr & (entered_ever == 0), 0, -1))
        depth = running_sums(step, keys, self.depth)
        keep_last(depth, keys, self.depth)
        stray_exit = ~enters & (depth < 0)
        self.unpaired.add(ctx, ctx.rows_at(calls.index[stray_exit].to_numpy()).assign(case="exit-without-enter"))
        isr = pd.DataFrame({"seq": calls["seq"].to_numpy(), "symbol": calls["symbol"].to_numpy(dtype=object), "turn": keys["turn"].to_numpy(),
                            "depth": depth, ACT: keys[ACT].to_numpy()})[in_isr]  # fmt: skip
        if not isr.empty:
            by_act = isr.groupby(ACT, sort=False)
            last = by_act.tail(1).set_index(ACT)
            last["one_turn"] = by_act["turn"].nunique() == 1
            before = self.last_calls.reindex(last.index)
            went_on = before["turn"].notna().to_numpy()  # activations with calls in the batches before
            last.loc[went_on, "one_turn"] &= (before["one_turn"].astype(bool) & (before["turn"] == by_act["turn"].first()))[went_on]
            kept = self.last_calls[~self.last_calls.index.isin(last.index)]
            self.last_calls = pd.concat([kept, last]) if len(kept) else last
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

    def _activations(self, ctx: Context, masks: pd.DataFrame) -> np.ndarray:
        """Judge the ISR activations whose end is known (or the trace's); the rows to carry of
        the others."""
        t, activations = ctx.timeline, ctx.activations
        ids = activations.index.to_numpy()  # sorted
        acts = activations[(activations["last_row"] >= ctx.carried).to_numpy() | among_sorted(ids, self.pending)]
        isr_masks = masks[masks[IN_ISR].to_numpy(dtype=bool)]
        if ctx.ends_trace:  # what is still open stays open
            self._judge(ctx, acts.index.to_numpy(), isr_masks)
            return np.zeros(0, dtype=np.int64)
        thread = t.thread
        before = t.thread_rows[acts["first_row"].to_numpy()] - 1  # the thread row before each (-1: none)
        after = t.thread_rows[acts["last_row"].to_numpy()]  # the thread row after each (len(thread): none)
        running = _running(ctx, acts.index.to_numpy())
        settled = ~running & ((after < len(thread)) | (before < 0))
        acts_ids = acts.index.to_numpy()  # sorted
        self._judge(ctx, acts_ids[settled], isr_masks)
        has_masks = among_sorted(acts_ids, np.unique(isr_masks[ACT].to_numpy()))
        waiting = ~settled & (running | has_masks | among_sorted(acts_ids, np.sort(self.last_calls.index.to_numpy())))
        self.pending = acts_ids[waiting]
        if not waiting.any():
            return np.zeros(0, dtype=np.int64)
        kept = acts[waiting]
        ends = isr_masks[among_sorted(isr_masks[ACT].to_numpy(), self.pending)].groupby([ACT, "symbol"], sort=False)
        around = np.r_[before[waiting], after[waiting]]
        return np.concatenate([
            kept["first_row"].to_numpy(), kept["last_row"].to_numpy(), thread[around[(around >= 0) & (around < len(thread))]],
            ends.head(1).index.to_numpy(), ends.tail(1).index.to_numpy(),
        ]).astype(np.int64)  # fmt: skip

    def _judge(self, ctx: Context, judged: np.ndarray, isr_masks: pd.DataFrame) -> None:
        """Judge the activations `judged` (sorted ids) and forget them."""
        self._isr_changed_mask(ctx, isr_masks[among_sorted(isr_masks[ACT].to_numpy(), judged)])
        self._returned_inside(ctx, judged)
        if ctx.ends_trace:  # nothing comes after
            return
        self.last_calls = self.last_calls[~among_sorted(self.last_calls.index.to_numpy(), judged)]
        for counts in (self.depth, self.entered, self.entered_ever):
            keys = list(counts)
            for key, done in zip(keys, among_sorted(np.array([key[0] for key in keys], dtype=np.int64), judged), strict=True):
                if done:
                    del counts[key]

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

    def _returned_inside(self, ctx: Context, judged: np.ndarray) -> None:
        """The last enter/exit call of each judged ISR activation (`judged`: sorted ids) that
        returned inside a section."""
        left = self.last_calls[among_sorted(self.last_calls.index.to_numpy(), judged)]
        left = left[left["one_turn"].astype(bool).to_numpy() & (left["depth"] > 0).to_numpy()]
        if left.empty:
            return
        acts = pd.Series(left.index.to_numpy(dtype=np.int64))
        returned = ctx.is_closed(acts).to_numpy(copy=True)
        if ctx.coverage is not None:  # nor did the site's turn end before the activation did
            _, ends = self._span_seqs(ctx, acts)
            returned &= ctx.coverage.turn(left["symbol"], ends) == left["turn"].to_numpy()
        rows = ctx.select(event=Event.CALL.value, kind=Kind.CRITICAL_SECTION.value, columns=["seq"])
        hits = ctx.rows_at(rows.index.to_numpy()[rows["seq"].isin(left["seq"][returned]).to_numpy(dtype=bool)])
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
    marked = np.where(np.isnan(marks), 0, np.arange(len(marks)))  # every group's first row is marked
    carried = marks[np.maximum.accumulate(marked)] if len(marks) else marks
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
