"""rmw-race: a read-modify-write of a shared location that a more urgent context can interrupt.

Why it is bad:
    `REG |= bit` is a load, a change and a store. If a more urgent context writes the location
    between the load and the store, the store puts back the stale copy and that write is lost:
    a mask bit comes back, a counter misses a step, a flag disappears. It happens only when the
    interrupt lands in a window of a few instructions, so it passes every bench test.
    Observed interleavings are errors; a location read-modify-written from two preemption
    levels with nothing masking the more urgent one is a warning (it has not happened yet).

Example:
    EXTI0 (priority 10) runs `EXTI->IMR &= ~LINE0`; EXTI1 (priority 5) preempts after the load
    and masks LINE1; EXTI0's store writes the old value back and LINE1 is unmasked (seed 001).

Instead:
    Mask interrupts around the read-modify-write (save PRIMASK, cpsid i, restore; or raise
    BASEPRI above the other writer), use a set/clear register or bit-banding where the
    peripheral has one, or LDREX/STREX (atomic builtins) for variables; keep each location
    written from one context.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from irqmon.analysis.common import at, where
from irqmon.analysis.context import ACT, IN_ISR, LABEL_COLUMNS, PRIO, Context
from irqmon.analysis.findings import Finding, group_hits
from irqmon.analysis.registry import Rule
from irqmon.schema import Event, Kind

RULE = Rule(
    id="rmw-race", severity="error", summary="read-modify-write of a shared location interrupted by (or open to) a more urgent writer",
    needs=(Kind.SHARED_REGISTER.value, Kind.WATCH.value),
)
THREAD_LEVEL = np.inf


def rmw_pairs(ctx: Context) -> pd.DataFrame:
    """Every write preceded, in the same context, by a read of the same address with no own
    write between: a read-modify-write. Columns added: `read_row`, `foreign_row` (the last
    write by another context between the read and the write, NA if none)."""
    acc = ctx.select(event=Event.ACCESS.value, kind=(Kind.SHARED_REGISTER.value, Kind.WATCH.value))
    acc = acc[acc["address"].notna() & acc["access"].isin(["r", "w"]).fillna(False).astype(bool)].sort_values("seq")
    if acc.empty:
        return acc
    acc = acc.assign(row=acc.index)
    is_read = (acc["access"] == "r").astype(bool)
    is_write = ~is_read
    own = [acc["address"], acc[ACT]]
    acc["read_row"] = acc["row"].where(is_read).groupby(own).ffill()
    acc["own_write_row"] = acc["row"].where(is_write).groupby(own).shift().groupby(own).ffill()
    writes_so_far = is_write.astype(np.int64).groupby(acc["address"]).cumsum()
    acc["prev_write_row"] = acc["row"].where(is_write).groupby(acc["address"]).shift().groupby(acc["address"]).ffill()
    pairs = acc[is_write & acc["read_row"].notna()]
    pairs = pairs[pairs["own_write_row"].isna() | (pairs["own_write_row"] < pairs["read_row"])].copy()
    read_rows = pairs["read_row"].astype(np.int64)
    writes_between = (writes_so_far[pairs.index] - 1) - writes_so_far.reindex(read_rows.to_numpy()).to_numpy()
    pairs["foreign_row"] = pairs["prev_write_row"].where(writes_between > 0).astype("Int64")
    pairs["read_row"] = read_rows
    return pairs


def check(ctx: Context) -> list[Finding]:
    pairs = rmw_pairs(ctx)
    if pairs.empty:
        return []
    observed = _lost_updates(ctx, pairs)
    raced = set(observed["address"].dropna().tolist())
    findings = group_hits(RULE, ctx, observed, site=("address",), title=_lost_title, message=_lost_message, evidence=_lost_evidence)
    open_pairs = _unprotected(ctx, pairs[~pairs["address"].isin(raced)])
    return findings + group_hits(
        RULE, ctx, open_pairs, site=("address",), title=_open_title, message=_open_message, evidence=_open_evidence, severity="warning"
    )


def _lost_updates(ctx: Context, pairs: pd.DataFrame) -> pd.DataFrame:
    hits = pairs[pairs["foreign_row"].notna()].copy()
    foreign = ctx.rows_at(hits["foreign_row"].astype(np.int64).to_numpy(), ["value", "old_value"])
    read = ctx.rows_at(hits["read_row"].to_numpy(), ["value"])
    hits["read_value"] = read["value"].to_numpy()
    hits["foreign_value"] = foreign["value"].to_numpy()
    before = pd.Series(foreign["old_value"].to_numpy(), index=hits.index).astype("Int64").fillna(hits["read_value"])
    changed = before ^ hits["foreign_value"]
    lost = (hits["value"] ^ hits["foreign_value"]) & changed
    hits["lost_bits"] = lost
    hits = hits[lost.isna() | (lost != 0)].copy()  # a stale store that happens to agree loses nothing
    foreign = ctx.rows_at(hits["foreign_row"].astype(np.int64).to_numpy(), [*LABEL_COLUMNS, "source"])
    hits["other_context"] = ctx.labels(foreign).to_numpy()
    hits["foreign_source"] = foreign["source"].to_numpy()
    return hits


def _name(first: pd.Series) -> str:
    return str(first["symbol"]) if isinstance(first["symbol"], str) else f"{int(first['address']):#x}"


def _hex(value: object) -> str | None:
    """A value as hex; None where the trace has none (a watched range wider than a word)."""
    return None if value is None or value is pd.NA or value != value else f"{int(value):#x}"


def _lost_title(first: pd.Series, group: pd.DataFrame) -> str:
    return f"{_name(first)}: {first['other_context']} wrote between the read and the write of {where(first)}"


def _lost_message(first: pd.Series, group: pd.DataFrame) -> str:
    values = (
        f" It read {_hex(first['read_value'])}, {first['other_context']} wrote {_hex(first['foreign_value'])}, "
        f"then the stale store wrote {_hex(first['value'])}: bits {_hex(first['lost_bits'])} of the other write are lost."
        if first["lost_bits"] is not pd.NA else ""
    )  # fmt: skip
    return f"Lost update of {_name(first)} in {first['context']}{at(first)}, {len(group)} time(s).{values}"


def _lost_evidence(first: pd.Series, group: pd.DataFrame) -> dict:
    return {
        "case": "lost-update",
        "read_value": _hex(first["read_value"]),
        "other_write_value": _hex(first["foreign_value"]),
        "final_value": _hex(first["value"]),
        "lost_bits": _hex(first["lost_bits"]),
        "other_context": first["other_context"],
        "other_source": first["foreign_source"] if isinstance(first["foreign_source"], str) else None,
    }


def _unprotected(ctx: Context, pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs of a context that a more urgent context, also read-modify-writing the address, can
    preempt: nothing masked it during the pair (PRIMASK/FAULTMASK clear, BASEPRI above it)."""
    if pairs.empty:
        return pairs
    read = ctx.rows_at(pairs["read_row"].to_numpy(), ["primask", "faultmask", "basepri"])
    level = pd.Series(np.where(pairs[IN_ISR], pairs[PRIO].astype("Float64").to_numpy(dtype=float, na_value=np.nan), THREAD_LEVEL), index=pairs.index)
    pairs = pairs.assign(level=level, threshold=np.maximum(_mask_threshold(ctx, pairs).to_numpy(), _mask_threshold(ctx, read).to_numpy()))
    per_context = pairs.groupby(["address", ACT], sort=False).agg(
        level=("level", "first"), threshold=("threshold", "max"), row=("row", "first"), isr=(IN_ISR, "first"),
        ipsr=("ipsr", "first"),
    ).reset_index()  # fmt: skip
    # Contexts are compared per exception (all activations of one ISR are one level) or task.
    per_level = per_context.groupby(["address", "ipsr", "level"], dropna=False, sort=False).agg(
        threshold=("threshold", "max"), row=("row", "first"), isr=("isr", "first")
    ).reset_index()  # fmt: skip
    pairs_of = per_level.merge(per_level, on="address", suffixes=("", "_hi"))
    preempts = (pairs_of["level_hi"] < pairs_of["level"]) | (pairs_of["isr_hi"] & ~pairs_of["isr"])
    masked = (pairs_of["level_hi"] >= pairs_of["threshold"]) | (pairs_of["threshold"] == 0)
    unmasked = ~masked.fillna(False).astype(bool)
    exposed = pairs_of[preempts.fillna(False).astype(bool) & unmasked & (pairs_of["ipsr"] != pairs_of["ipsr_hi"])]
    if exposed.empty:
        return pairs.iloc[0:0]
    hits = ctx.rows_at(exposed["row"].astype(np.int64).to_numpy())
    other = ctx.rows_at(exposed["row_hi"].astype(np.int64).to_numpy(), [*LABEL_COLUMNS, "source"])
    hits["other_context"] = ctx.labels(other).to_numpy()
    hits["other_source"] = other["source"].to_numpy()
    return hits


def _mask_threshold(ctx: Context, rows: pd.DataFrame) -> pd.Series:
    """Per row, the least urgent priority that is still masked: 0 with PRIMASK/FAULTMASK set
    (everything masked, levels >= 0), BASEPRI's level when set, infinity when nothing is."""
    everything = (rows["primask"].fillna(0) != 0) | (rows["faultmask"].fillna(0) != 0)
    basepri = rows["basepri"].fillna(0).astype(np.int64).to_numpy()
    shift = 8 - (ctx.priority_bits or 8)
    base_level = np.where(basepri != 0, basepri >> shift, np.inf).astype(float)
    return pd.Series(np.where(everything.to_numpy(dtype=bool), 0.0, base_level), index=rows.index)


def _open_title(first: pd.Series, group: pd.DataFrame) -> str:
    return f"{_name(first)} read-modify-written by {first['context']} and {first['other_context']} with nothing masking the latter"


def _open_message(first: pd.Series, group: pd.DataFrame) -> str:
    return (
        f"{first['context']} reads and writes {_name(first)}{at(first)} while {first['other_context']}, which can preempt it, "
        f"also read-modify-writes it; no interleaving was observed, but nothing prevents one."
    )


def _open_evidence(first: pd.Series, group: pd.DataFrame) -> dict:
    return {"case": "unprotected", "other_context": first["other_context"],
            "other_source": first["other_source"] if isinstance(first["other_source"], str) else None}  # fmt: skip
