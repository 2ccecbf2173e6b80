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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from irqmon.analysis.common import at, fresh, grouped, last_marked, where
from irqmon.analysis.context import ACT, EXC_NAME, IN_ISR, LABEL_COLUMNS, PRIO, Context
from irqmon.analysis.findings import Finding, Group, SiteGroups, numbered
from irqmon.analysis.registry import Rule
from irqmon.schema import Event, Kind

RULE = Rule(
    id="rmw-race", severity="error", summary="read-modify-write of a shared location interrupted by (or open to) a more urgent writer",
    needs=(Kind.SHARED_REGISTER.value, Kind.WATCH.value),
)
THREAD_LEVEL = np.inf
ACCESS_KINDS = (Kind.SHARED_REGISTER.value, Kind.WATCH.value)


def accesses(ctx: Context, columns: list[str] | None = None) -> pd.DataFrame:
    """The reads and writes of an address, in order (all columns, or only `columns`)."""
    wanted = None if columns is None else [*columns, "address", "access", "seq"]
    acc = ctx.select(event=Event.ACCESS.value, kind=ACCESS_KINDS, columns=wanted)
    return acc[acc["address"].notna() & acc["access"].isin(["r", "w"]).fillna(False).astype(bool)].sort_values("seq")


def rmw_pairs(ctx: Context) -> pd.DataFrame:
    """Every write preceded, in the same context, by a read of the same address with no own
    write between: a read-modify-write. Columns added: `row` (its position), `read_row`,
    `foreign_row` (the last write by another context between the read and the write, NA if none)."""
    acc = accesses(ctx)
    if acc.empty:
        return acc
    row = acc.index.to_numpy()
    is_read = (acc["access"] == "r").to_numpy(dtype=bool)
    is_write = ~is_read
    address, own = pd.factorize(acc["address"])[0], numbered([acc["address"], acc[ACT]])
    read = last_marked(own, is_read)  # in order of seq: the context's last read up to each access
    own_write, other_write = last_marked(own, is_write, before=True), last_marked(address, is_write, before=True)
    paired = is_write & (read >= 0)
    paired &= (own_write < 0) | (row[own_write] < row[read])  # no own write since the read
    read, other_write = read[paired], other_write[paired]
    foreign = other_write > read  # a write of the address came between (the last one: another context's)
    foreign_row = pd.arrays.IntegerArray(np.where(foreign, row[other_write], 0), ~foreign)
    return acc[paired].assign(row=row[paired], read_row=row[read], foreign_row=foreign_row)


def stream() -> RmwStream:
    return RmwStream()


@dataclass
class _Level:
    """The read-modify-writes of an address by one exception (or thread mode) at one priority
    level, over the trace so far: their highest mask threshold, and their first write's row,
    whole (with its exception name, label and handler)."""

    ipsr: int | None
    level: float
    isr: bool
    threshold: float
    first: pd.DataFrame


class RmwStream:
    """rmw-race judged batch by batch. Each batch's read-modify-writes are judged on the rows
    the batches before carried (`carry`): per address and context still going on its last read
    and last write, per address its last write; lost updates are grouped as they come. Whether
    a location is open to a more urgent writer is decided at the end, on what was kept per
    address, exception and level (`_Level`), for the addresses no lost update was seen on."""

    def __init__(self) -> None:
        self.lost = SiteGroups(RULE, site=("address",), title=_lost_title, message=_lost_message, evidence=_lost_evidence)
        self.raced: set[int] = set()  # addresses with a lost update
        self.levels: dict[tuple[int, int | None, float | None], _Level] = {}  # per (address, exception, level)
        self.context_levels: dict[tuple[int, int], float] = {}  # per (address, context going on): its first pair's level

    def add(self, ctx: Context) -> None:
        pairs = fresh(ctx, rmw_pairs(ctx))
        if pairs.empty:
            return
        observed = _lost_updates(ctx, pairs)
        self.raced.update(int(a) for a in observed["address"].dropna())
        self.lost.add(ctx, observed)
        self._add_levels(ctx, pairs)

    def carry(self, ctx: Context) -> np.ndarray:
        """Per address and context still going on, its last read and last write (the read a
        later write of the context pairs with, and whether the context wrote since); per
        address, its last write (the foreign write a later pair may have interleaved)."""
        acc = accesses(ctx, [ACT])
        going_on = _going_on(ctx, acc[ACT].to_numpy(dtype=np.int64))
        acts = np.array([act for _, act in self.context_levels], dtype=np.int64)
        levels = zip(self.context_levels.items(), _going_on(ctx, acts), strict=True)
        self.context_levels = {key: level for (key, level), keep in levels if keep}
        own = acc[going_on].groupby(["address", ACT, "access"], sort=False).tail(1).index.to_numpy()
        writes = acc[(acc["access"] == "w").to_numpy(dtype=bool)].groupby("address", sort=False).tail(1).index.to_numpy()
        return np.union1d(own, writes).astype(np.int64)

    def findings(self) -> list[Finding]:
        opened = SiteGroups(RULE, site=("address",), title=_open_title, message=_open_message, evidence=_open_evidence, severity="warning")
        opened.add(None, self._unprotected())
        return self.lost.findings() + opened.findings()

    def _add_levels(self, ctx: Context, pairs: pd.DataFrame) -> None:
        """Fold a batch's pairs into the per (address, exception, level) summaries: each context
        at the level of its first pair, the highest mask threshold of any of its pairs."""
        read = ctx.rows_at(pairs["read_row"].to_numpy(), ["primask", "faultmask", "basepri"])
        level = np.where(pairs[IN_ISR], pairs[PRIO].astype("Float64").to_numpy(dtype=float, na_value=np.nan), THREAD_LEVEL)
        threshold = np.maximum(_mask_threshold(ctx, pairs).to_numpy(), _mask_threshold(ctx, read).to_numpy())
        # Per context (address, activation or task), in order of its first pair.
        order, starts, _ = grouped(numbered([pairs["address"], pairs[ACT]]))
        first_pairs = order[starts]
        address, act = (pairs[column].iloc[first_pairs].tolist() for column in ("address", ACT))
        # A context going on from a batch before keeps the level of its first pair there.
        levels = zip(zip(address, act, strict=True), _first_known(level[order], starts).tolist(), strict=True)
        context_level = np.array([self.context_levels.setdefault(key, first) for key, first in levels], dtype=float)
        context_threshold = np.maximum.reduceat(threshold[order], starts)
        row, isr = pairs["row"].to_numpy(dtype=np.int64)[first_pairs], pairs[IN_ISR].to_numpy(dtype=bool)[first_pairs]
        ipsr = pairs["ipsr"].iloc[first_pairs]
        # Contexts are compared per exception (all activations of one ISR are one level) or task.
        order, starts, _ = grouped(numbered([pd.Series(address), ipsr, pd.Series(context_level)]))
        per_level = pd.DataFrame({
            "address": np.asarray(address, dtype=object)[order[starts]], "ipsr": ipsr.iloc[order[starts]].to_numpy(),
            "level": context_level[order[starts]], "threshold": np.maximum.reduceat(context_threshold[order], starts),
            "row": row[order[starts]], "isr": isr[order[starts]],
        })  # fmt: skip
        keys = [(int(a), _known(i), _known(v)) for a, i, v in zip(per_level["address"], per_level["ipsr"], per_level["level"], strict=True)]
        seen = np.array([key in self.levels for key in keys], dtype=bool)
        firsts = _whole_rows(ctx, per_level["row"].to_numpy(dtype=np.int64)[~seen])
        new = iter(range(len(firsts)))
        rows = zip(keys, seen, per_level["threshold"], per_level["level"], per_level["isr"], strict=True)
        for key, known, threshold, level, isr in rows:  # the new ones in order of their first pair
            if known:
                self.levels[key].threshold = max(self.levels[key].threshold, float(threshold))
            else:
                self.levels[key] = _Level(key[1], float(level), bool(isr), float(threshold), firsts.iloc[[next(new)]])

    def _unprotected(self) -> pd.DataFrame:
        """The first pair of each exception (or thread mode) and level that a more urgent
        context, also read-modify-writing the address, can preempt: nothing masked it during the
        pair (PRIMASK/FAULTMASK clear, BASEPRI above it); none on an address that lost an update."""
        kept = [(key, level) for key, level in self.levels.items() if key[0] not in self.raced]
        if not kept:
            return pd.DataFrame()
        per_level = pd.DataFrame({
            "address": [key[0] for key, _ in kept], "ipsr": [level.ipsr for _, level in kept],
            "level": np.array([level.level for _, level in kept], dtype=float),
            "threshold": np.array([level.threshold for _, level in kept], dtype=float),
            "row": np.arange(len(kept)), "isr": np.array([level.isr for _, level in kept], dtype=bool),
        })  # fmt: skip
        pairs_of = per_level.merge(per_level, on="address", suffixes=("", "_hi"))
        preempts = (pairs_of["level_hi"] < pairs_of["level"]) | (pairs_of["isr_hi"] & ~pairs_of["isr"])
        masked = (pairs_of["level_hi"] >= pairs_of["threshold"]) | (pairs_of["threshold"] == 0)
        unmasked = ~masked.fillna(False).astype(bool)
        exposed = pairs_of[preempts.fillna(False).astype(bool) & unmasked & (pairs_of["ipsr"] != pairs_of["ipsr_hi"])]
        if exposed.empty:
            return pd.DataFrame()
        firsts = [level.first for _, level in kept]
        hits = pd.concat([firsts[row] for row in exposed["row"]])
        other = pd.concat([firsts[row] for row in exposed["row_hi"]])
        return hits.assign(other_context=other["context"].to_numpy(), other_source=other["source"].to_numpy())


def _first_known(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per group of `values` (grouped, each from `starts`), its first value that is not NaN
    (NaN where none is)."""
    number = np.arange(len(values))
    first = np.minimum.reduceat(np.where(np.isnan(values), len(values), number), starts)
    return np.where(first < len(values), values[np.minimum(first, len(values) - 1)], np.nan)


def _going_on(ctx: Context, acts: np.ndarray) -> np.ndarray:
    """Whether each context may still run after this batch: a task (or thread mode), or its
    exception's latest activation (an activation over never comes back)."""
    return (acts < 0) | ctx.is_latest_activation(acts)


def _whole_rows(ctx: Context, positions: np.ndarray) -> pd.DataFrame:
    """The rows at `positions` as a finding's first hit needs them: every column, the exception's
    name, the context's label and the handler."""
    rows = ctx.rows_at(positions)
    rows = rows.assign(**{EXC_NAME: ctx.names(rows)})
    rows["context"] = ctx.labels(rows)
    return rows.assign(handler=ctx.handlers(rows))


def _known(value: object) -> object:
    """A key's value with None for a missing one (NaN and NA are not equal to themselves)."""
    return None if pd.isna(value) else value.item() if hasattr(value, "item") else value


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


def _lost_title(first: pd.Series, group: Group) -> str:
    return f"{_name(first)}: {first['other_context']} wrote between the read and the write of {where(first)}"


def _lost_message(first: pd.Series, group: Group) -> str:
    values = (
        f" It read {_hex(first['read_value'])}, {first['other_context']} wrote {_hex(first['foreign_value'])}, "
        f"then the stale store wrote {_hex(first['value'])}: bits {_hex(first['lost_bits'])} of the other write are lost."
        if first["lost_bits"] is not pd.NA else ""
    )  # fmt: skip
    return f"Lost update of {_name(first)} in {first['context']}{at(first)}, {group.count} time(s).{values}"


def _lost_evidence(first: pd.Series, group: Group) -> dict:
    return {
        "case": "lost-update",
        "read_value": _hex(first["read_value"]),
        "other_write_value": _hex(first["foreign_value"]),
        "final_value": _hex(first["value"]),
        "lost_bits": _hex(first["lost_bits"]),
        "other_context": first["other_context"],
        "other_source": first["foreign_source"] if isinstance(first["foreign_source"], str) else None,
    }


def _mask_threshold(ctx: Context, rows: pd.DataFrame) -> pd.Series:
    """Per row, the least urgent priority that is still masked: 0 with PRIMASK/FAULTMASK set
    (everything masked, levels >= 0), BASEPRI's level when set, infinity when nothing is."""
    everything = (rows["primask"].fillna(0) != 0) | (rows["faultmask"].fillna(0) != 0)
    basepri = rows["basepri"].fillna(0).astype(np.int64).to_numpy()
    shift = 8 - (ctx.priority_bits or 8)
    base_level = np.where(basepri != 0, basepri >> shift, np.inf).astype(float)
    return pd.Series(np.where(everything.to_numpy(dtype=bool), 0.0, base_level), index=rows.index)


def _open_title(first: pd.Series, group: Group) -> str:
    return f"{_name(first)} read-modify-written by {first['context']} and {first['other_context']} with nothing masking the latter"


def _open_message(first: pd.Series, group: Group) -> str:
    return (
        f"{first['context']} reads and writes {_name(first)}{at(first)} while {first['other_context']}, which can preempt it, "
        f"also read-modify-writes it; no interleaving was observed, but nothing prevents one."
    )


def _open_evidence(first: pd.Series, group: Group) -> dict:
    return {"case": "unprotected", "other_context": first["other_context"],
            "other_source": first["other_source"] if isinstance(first["other_source"], str) else None}  # fmt: skip
