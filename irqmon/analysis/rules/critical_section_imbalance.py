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

from irqmon.analysis.common import at, outer_calls_only, where
from irqmon.analysis.context import ACT, EXC_NAME, IN_ISR, Context, own_paths
from irqmon.analysis.findings import Finding, group_hits
from irqmon.analysis.registry import Rule
from irqmon.schema import Event, Kind, Role

RULE = Rule(
    id="critical-section-imbalance", severity="error", summary="interrupt masking not restored as an outer section or the ISR expects",
    needs=(Kind.CRITICAL_SECTION.value,),
)
MASK_REGISTERS = ("primask", "basepri", "faultmask")
# What the checks of mask rows read (mask rows are many: the findings' rows are taken whole, later).
MASK_COLUMNS = ["seq", "symbol", "role", "old_value", "value", IN_ISR, ACT]


def check(ctx: Context) -> list[Finding]:
    masks = ctx.select(event=Event.MASK.value, columns=MASK_COLUMNS)
    masks = masks[masks["symbol"].isin(MASK_REGISTERS).fillna(False).astype(bool)].sort_values("seq")
    findings = []
    if not masks.empty:
        masks = masks.assign(before=_strength(masks, "old_value"), after=_strength(masks, "value"))
        findings += _early_enable(ctx, masks) + _isr_changed_mask(ctx, masks)
    return findings + _unpaired_sections(ctx)


def _strength(masks: pd.DataFrame, column: str) -> pd.Series:
    """How much a mask register masks: 0 nothing; PRIMASK/FAULTMASK 1; BASEPRI 256 - value."""
    raw = masks[column].astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    basepri = (masks["symbol"] == "basepri").to_numpy(dtype=bool)
    strength = np.where(basepri, np.where(raw == 0, 0.0, 256.0 - raw), (raw != 0).astype(float))
    return pd.Series(np.where(np.isnan(raw), np.nan, strength), index=masks.index)


def _early_enable(ctx: Context, masks: pd.DataFrame) -> list[Finding]:
    """An unmasking while a section entered by a caller is still open.

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
    hits = ctx.rows_at(rows[premature])
    hits["frames"] = own_paths(hits["callpath"])
    outer = outer_row[premature]
    known = ~np.isnan(outer) & (outer >= 0)
    hits["outer_source"] = pd.Series(pd.NA, index=hits.index, dtype="string")
    hits.loc[hits.index[known], "outer_source"] = ctx.rows_at(outer[known].astype(np.int64), ["source"])["source"].to_numpy()
    return group_hits(
        RULE, ctx, hits, site=(EXC_NAME, "symbol", "source", "frames"),
        title=lambda f, g: f"inner section re-enabled {f['symbol']} in {where(f)} while an outer section still needed it",
        message=lambda f, g: (
            f"{f['context']} unmasked {f['symbol']} ({_hex(f['old_value'])} -> {_hex(f['value'])}){at(f)} inside the section "
            f"entered{' at ' + f['outer_source'] if isinstance(f['outer_source'], str) else ''} by a caller, which still relied on it ({len(g)} time(s))."
        ),
        evidence=lambda f, g: {
            "case": "inner-enable", "register": f["symbol"], "frames": f["frames"] if isinstance(f["frames"], str) else None,
            "outer_source": f["outer_source"] if isinstance(f["outer_source"], str) else None,
        },
    )  # fmt: skip


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


def _isr_changed_mask(ctx: Context, masks: pd.DataFrame) -> list[Finding]:
    """An ISR activation whose last mask change leaves a register different from its first's."""
    isr = masks[masks[IN_ISR]]
    isr = isr.assign(entered_with=isr.groupby([ACT, "symbol"], sort=False)["old_value"].transform("first"))
    last = isr.groupby([ACT, "symbol"], sort=False).tail(1)
    changed = (last["value"] != last["entered_with"]).fillna(False).astype(bool)
    closed = ctx.is_closed(last[ACT])
    switched = ctx.is_switch(last[ACT])
    hits = last[changed & closed & ~switched]  # a context switch returns to another context's mask
    if ctx.coverage is not None and not hits.empty:  # a site armed or disarmed inside it: its first or last change may be unseen
        span = ctx.activations.loc[hits[ACT].to_numpy(), ["first_row", "last_row"]]
        first, last = (ctx.rows_at(span[end].to_numpy(), ["seq"])["seq"].to_numpy() for end in ("first_row", "last_row"))
        hits = hits[~ctx.coverage.changed_between(first, last)]
    hits = ctx.rows_at(hits.index.to_numpy()).assign(entered_with=hits["entered_with"])
    return group_hits(
        RULE, ctx, hits, site=(EXC_NAME, "symbol", "source"),
        title=lambda f, g: f"{where(f)} returned with {f['symbol']} {_hex(f['value'])}, entered with {_hex(f['entered_with'])}",
        message=lambda f, g: f"{f['context']} left {f['symbol']} at {_hex(f['value'])}{at(f)}; the interrupted code had {_hex(f['entered_with'])} ({len(g)} time(s)).",
        evidence=lambda f, g: {"case": "isr-changed-mask", "register": f["symbol"], "entered_with": _hex(f["entered_with"]), "returned_with": _hex(f["value"])},
    )  # fmt: skip


def _unpaired_sections(ctx: Context) -> list[Finding]:
    """RTOS enter/exit calls: an exit with no enter open, or an ISR returning inside a section.

    Nesting is counted per context: per task (the RTOS saves each task's count on a switch), per
    ISR activation, and for main before the scheduler starts."""
    rows = ctx.select(event=(Event.CALL.value, Event.RETURN.value), kind=Kind.CRITICAL_SECTION.value, columns=["seq", "event", "role", "symbol", IN_ISR, ACT])
    calls = outer_calls_only(ctx, ctx.outermost_calls(rows))  # a kernel call's own sections in an ISR: its evidence
    calls = calls[calls["role"].isin([Role.ENTER.value, Role.EXIT.value]).fillna(False).astype(bool)]
    if calls.empty:
        return []
    # A rotated capture armed the enter/exit site in turns: calls pair up within one turn only
    # (a turn may begin inside a section: exits before its first enter close what it missed),
    # and only an activation seen whole in one turn can be said to return inside a section.
    turn = pd.Series(ctx.coverage.turn(calls["symbol"], calls["seq"].to_numpy()) if ctx.coverage else 0, index=calls.index)
    if ctx.coverage is not None:
        entered = (calls["role"] == Role.ENTER.value).groupby([calls[ACT], turn]).cummax().astype(bool)
        calls, turn = calls[entered], turn[entered]
        if calls.empty:
            return []
    enters = calls["role"] == Role.ENTER.value
    # A task's exits before its first enter close sections entered before the capture began.
    opened_before = ~calls[IN_ISR] & (enters.astype(np.int64).groupby(calls[ACT]).cumsum() == 0)
    step = np.where(enters, 1, np.where(opened_before, 0, -1))
    depth = pd.Series(step, index=calls.index).groupby([calls[ACT], turn]).cumsum()
    stray_exit = ~enters & (depth < 0)
    last = depth.groupby(calls[ACT]).transform("last")
    is_last = ~calls[ACT].duplicated(keep="last")
    whole = turn.groupby(calls[ACT]).transform("nunique") == 1
    if ctx.coverage is not None:  # nor did the site's turn end before the activation did
        last_rows = ctx.activations["last_row"].reindex(calls[ACT].to_numpy()).to_numpy()
        known = ~np.isnan(last_rows)
        ends = np.where(known, last_rows, calls.index.to_numpy()).astype(np.int64)
        whole &= ctx.coverage.turn(calls["symbol"], ctx.rows_at(ends, ["seq"])["seq"].to_numpy()) == turn.to_numpy()
    closed = ctx.is_closed(calls[ACT])
    left_open = calls[IN_ISR] & is_last & whole & closed & (last > 0)
    hit = (stray_exit | left_open).astype(bool)
    hits = ctx.rows_at(calls.index[hit].to_numpy()).assign(case=np.where(stray_exit[hit], "exit-without-enter", "isr-returned-inside"))
    return group_hits(
        RULE, ctx, hits, site=(EXC_NAME, "symbol", "source", "case"),
        title=lambda f, g: f"{f['symbol']} in {where(f)} " + ("without a matching enter" if f["case"] == "exit-without-enter" else "and the ISR returned inside the section"),
        message=lambda f, g: f"{f['context']} called {f['symbol']}{at(f)}: the enter/exit calls of this context do not pair up ({len(g)} time(s)).",
        evidence=lambda f, g: {"case": f["case"]},
    )  # fmt: skip


def _hex(value: object) -> str:
    return "?" if value is None or value is pd.NA or value != value else f"{int(value):#x}"
