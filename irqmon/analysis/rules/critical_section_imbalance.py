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

from irqmon.analysis.common import at, where
from irqmon.analysis.context import ACT, IN_ISR, Context
from irqmon.analysis.findings import Finding, group_hits
from irqmon.analysis.registry import Rule
from irqmon.schema import Event, Kind, Role

RULE = Rule(id="critical-section-imbalance", severity="error", summary="interrupt masking not restored as an outer section or the ISR expects")
MASK_REGISTERS = ("primask", "basepri", "faultmask")


def check(ctx: Context) -> list[Finding]:
    masks = ctx.select(event=Event.MASK.value)
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
    """An unmasking that a later exit of the same context shows was not the outermost one: the
    masked period had nested entries, and after the unmasking another exit finds nothing left
    to unmask (that exit belonged to the outer section)."""
    key = [masks[ACT], masks["symbol"]]
    starts = (masks["before"] == 0) & (masks["after"] > 0)
    entries = (masks["after"] > 0) & (masks["after"] >= masks["before"])
    period = starts.astype(np.int64).groupby(key).cumsum()
    entries_in_period = entries.astype(np.int64).groupby([masks[ACT], masks["symbol"], period]).cumsum()
    lowers = (masks["after"] < masks["before"]).fillna(False).astype(bool)
    exits = masks["role"].isin([Role.ENABLE.value, Role.WRITE.value]).fillna(False).astype(bool)
    redundant_exit = exits & (masks["before"] == 0) & (masks["after"] == 0)
    next_redundant = redundant_exit.groupby(key).shift(-1).fillna(False).astype(bool)
    next_row = pd.Series(masks.index, index=masks.index).groupby(key).shift(-1)
    hits = masks[lowers & (entries_in_period >= 2) & next_redundant].copy()
    hits["outer_exit"] = ctx.frame.loc[next_row[hits.index].astype(np.int64).to_numpy(), "source"].to_numpy() if len(hits) else []
    return group_hits(
        RULE, ctx, hits, site=("ipsr", "symbol", "source"),
        title=lambda f, g: f"inner section re-enabled {f['symbol']} in {where(f)} while an outer section still needed it",
        message=lambda f, g: (
            f"{f['context']} unmasked {f['symbol']} ({_hex(f['old_value'])} -> {_hex(f['value'])}){at(f)} inside a nested section; "
            f"the outer section's own exit{' at ' + f['outer_exit'] if isinstance(f['outer_exit'], str) else ''} came later ({len(g)} time(s))."
        ),
        evidence=lambda f, g: {"case": "inner-enable", "register": f["symbol"], "outer_exit": f["outer_exit"] if isinstance(f["outer_exit"], str) else None},
    )  # fmt: skip


def _isr_changed_mask(ctx: Context, masks: pd.DataFrame) -> list[Finding]:
    """An ISR activation whose last mask change leaves a register different from its first's."""
    isr = masks[masks[IN_ISR]]
    isr = isr.assign(entered_with=isr.groupby([ACT, "symbol"], sort=False)["old_value"].transform("first"))
    last = isr.groupby([ACT, "symbol"], sort=False).tail(1)
    changed = (last["value"] != last["entered_with"]).fillna(False).astype(bool)
    closed = ctx.is_closed(last[ACT])
    hits = last[changed & closed]
    return group_hits(
        RULE, ctx, hits, site=("ipsr", "symbol", "source"),
        title=lambda f, g: f"{where(f)} returned with {f['symbol']} {_hex(f['value'])}, entered with {_hex(f['entered_with'])}",
        message=lambda f, g: f"{f['context']} left {f['symbol']} at {_hex(f['value'])}{at(f)}; the interrupted code had {_hex(f['entered_with'])} ({len(g)} time(s)).",
        evidence=lambda f, g: {"case": "isr-changed-mask", "register": f["symbol"], "entered_with": _hex(f["entered_with"]), "returned_with": _hex(f["value"])},
    )  # fmt: skip


def _unpaired_sections(ctx: Context) -> list[Finding]:
    """RTOS enter/exit calls: an exit with no enter open, or an ISR returning inside a section."""
    rows = ctx.select(event=(Event.CALL.value, Event.RETURN.value), kind=Kind.CRITICAL_SECTION.value)
    calls = ctx.outermost_calls(rows)
    calls = calls[calls["role"].isin([Role.ENTER.value, Role.EXIT.value]).fillna(False).astype(bool)]
    if calls.empty:
        return []
    step = np.where(calls["role"] == Role.ENTER.value, 1, -1)
    depth = pd.Series(step, index=calls.index).groupby(calls[ACT]).cumsum()
    stray_exit = (calls["role"] == Role.EXIT.value) & (depth < 0)
    last = depth.groupby(calls[ACT]).transform("last")
    is_last = ~calls[ACT].duplicated(keep="last")
    closed = ctx.is_closed(calls[ACT])
    left_open = calls[IN_ISR] & is_last & closed & (last > 0)
    hits = calls[(stray_exit | left_open).astype(bool)].assign(case=np.where(stray_exit[stray_exit | left_open], "exit-without-enter", "isr-returned-inside"))
    return group_hits(
        RULE, ctx, hits, site=("ipsr", "symbol", "source", "case"),
        title=lambda f, g: f"{f['symbol']} in {where(f)} " + ("without a matching enter" if f["case"] == "exit-without-enter" else "and the ISR returned inside the section"),
        message=lambda f, g: f"{f['context']} called {f['symbol']}{at(f)}: the enter/exit calls of this context do not pair up ({len(g)} time(s)).",
        evidence=lambda f, g: {"case": f["case"]},
    )  # fmt: skip


def _hex(value: object) -> str:
    return "?" if value is None or value is pd.NA or value != value else f"{int(value):#x}"
