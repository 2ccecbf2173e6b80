"""Pieces several rules share: calls made from an ISR, and the wording of where a thing happened."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from irqmon.analysis.context import ACT, Context
from irqmon.analysis.findings import Finding, SiteGroups, frame_list, numbered
from irqmon.schema import Event, Kind

CALL_COLUMNS = ["event", "symbol", "role", ACT]  # what `outermost_calls` and the role filter read


def isr_calls(
    ctx: Context, kind: str | Iterable[str], role: str | Iterable[str] | None = None, columns: list[str] | None = None
) -> pd.DataFrame:
    """Outermost `call` rows of `kind` (and `role`) made in handler mode: whole, or only `columns`.

    Nesting is judged among the ISR's calls of the kind, so `_malloc_r` under `malloc` counts once.
    Only the columns that judging reads are converted for every call (`isr_call_rows`, shared by
    the rules); the other columns for the calls kept.
    """
    every = isr_call_rows(ctx)
    kinds = [kind] if isinstance(kind, str) else list(kind)
    positions = ctx.positions_of(event=(Event.CALL.value, Event.RETURN.value), kind=kinds, isr=True)
    rows = every.iloc[np.searchsorted(every.index.to_numpy(), positions)]
    calls = ctx.outermost_calls(rows, kinds, isr=True)
    if role is not None:
        roles = [role] if isinstance(role, str) else list(role)
        calls = calls[calls["role"].isin(roles).fillna(False).astype(bool)]
    return ctx.rows_at(calls.index.to_numpy(), columns)


def isr_call_rows(ctx: Context) -> pd.DataFrame:
    """Every `call` and `return` row in handler mode, with the columns judging their nesting reads,
    `kind` and `ipsr` (worked out once per context)."""
    return ctx.once(
        "isr_call_rows",
        lambda ctx: ctx.select(event=(Event.CALL.value, Event.RETURN.value), isr=True, columns=[*CALL_COLUMNS, "kind", "ipsr"]),
    )


def calls_inside_other_calls(ctx: Context) -> pd.DataFrame:
    """`call` rows in handler mode made inside another probed call of the same activation (its
    function among the context's own frames): what a kernel or library does inside a call, such
    as the critical section inside xQueueSemaphoreTake. They are the outer call's evidence, not
    findings of their own; computed once per analysis (columns `symbol`, `kind`, `callpath`, `act`)."""
    return ctx.once("inner_calls", _calls_inside_other_calls)


def _calls_inside_other_calls(ctx: Context) -> pd.DataFrame:
    rows = isr_call_rows(ctx)
    outer = ctx.outermost_calls(rows, isr=True).index
    calls = rows[(rows["event"] == Event.CALL.value).to_numpy(dtype=bool) & ~rows.index.isin(outer)]
    paths = ctx.rows_at(calls.index.to_numpy(), ["callpath"])["callpath"]
    return calls.assign(callpath=paths.where(paths.notna(), None).astype(object))


def outer_calls_only(ctx: Context, calls: pd.DataFrame) -> pd.DataFrame:
    """`calls` without those made inside another probed call (`calls_inside_other_calls`)."""
    return calls[~calls.index.isin(calls_inside_other_calls(ctx).index)]


def inside_isr_heap_calls(ctx: Context, calls: pd.DataFrame) -> np.ndarray:
    """Per row of `calls` (an ISR's call rows, with `symbol`): whether it was made inside a heap
    function (that function among its own frames) while the trace has a heap call from an ISR.
    Every heap call of an ISR is a malloc-in-isr finding, and what malloc does inside itself (its
    heap lock, a mutex) is listed there as evidence. The frames decide, not the heap call's row:
    a rotated capture may have had the heap function's site disarmed at that moment."""
    inside = np.zeros(len(calls), dtype=bool)
    facts = ctx.before.facts if ctx.before else None
    has_isr_heap_call = facts.has(Event.CALL.value, [Kind.HEAP.value], isr=True) if facts else (
        len(ctx.positions_of(event=Event.CALL.value, kind=Kind.HEAP.value, isr=True)) > 0
    )  # fmt: skip
    if calls.empty or not has_isr_heap_call:
        return inside
    heap = facts.symbols(Event.CALL.value, [Kind.HEAP.value]) if facts else set(
        ctx.select(event=Event.CALL.value, kind=Kind.HEAP.value, columns=["symbol"])["symbol"].dropna()
    )  # fmt: skip
    if ctx.coverage is not None:  # the heap functions planned, seen or not
        heap.update(name for site in ctx.coverage.of_kinds((Kind.HEAP.value,)) for name in site.functions)
    positions, symbols = calls.index.to_numpy(), calls["symbol"].to_numpy(dtype=object, na_value=None)
    for name in heap:
        inside |= (symbols != name) & ctx.has_own_frame(positions, str(name))
    return inside


def calls_inside(ctx: Context, acts: Iterable[int], outer: set[str]) -> set[str]:
    """The probed calls that calls of `outer` made inside themselves in the activations `acts`,
    `symbol (kind)`."""
    inner = ctx.once("distinct_inner_calls", _distinct_inner_calls)
    made = np.unique(inner.distinct[np.isin(inner.act, np.fromiter(acts, dtype=np.int64))])
    return {inner.texts[number] for number in made.tolist() if outer & inner.outer_frames[number]}


@dataclass
class _DistinctInnerCalls:
    """The calls made inside other probed calls (`calls_inside_other_calls`) on arrays: per call,
    its activation and the number of its distinct (symbol, kind, call path); per such number,
    `symbol (kind)` and the frames outside the call within its context (where its outer call is)."""

    act: np.ndarray
    distinct: np.ndarray
    texts: list[str]
    outer_frames: list[set[str]]


def _distinct_inner_calls(ctx: Context) -> _DistinctInnerCalls:
    inner = calls_inside_other_calls(ctx)
    distinct = numbered([inner["symbol"], inner["kind"], inner["callpath"]])
    firsts = inner.iloc[np.unique(distinct, return_index=True)[1]]  # each distinct call once
    texts = [f"{symbol} ({kind})" for symbol, kind in zip(firsts["symbol"].tolist(), firsts["kind"].tolist(), strict=True)]
    outer_frames = [set(frame_list(path, own=True)[1:]) for path in firsts["callpath"].tolist()]
    return _DistinctInnerCalls(inner[ACT].to_numpy(dtype=np.int64), distinct, texts, outer_frames)


def fresh(ctx: Context, rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` without those carried over from the batch before (judged there already)."""
    return rows[rows.index >= ctx.carried] if ctx.carried else rows


def open_isr_call_rows(ctx: Context) -> np.ndarray:
    """Positions of what the next batch needs to tell an ISR's outermost calls without a call
    path: per kind, the last call or return row of each exception's last activation (worked
    out once per context: every rule of ISR calls carries them)."""
    return ctx.once("open_isr_call_rows", _open_isr_call_rows)


def _open_isr_call_rows(ctx: Context) -> np.ndarray:
    rows = isr_call_rows(ctx)
    if rows.empty:
        return np.zeros(0, dtype=np.int64)
    last_act = rows.groupby("ipsr")[ACT].transform("last")
    rows = rows[rows[ACT] == last_act]
    return np.sort(rows.groupby([ACT, rows["kind"].fillna("")], sort=False).tail(1).index.to_numpy())


class IsrCallStream:
    """A rule whose hits are calls made in handler mode (`hits` picks them from a batch's
    context), judged batch by batch."""

    def __init__(self, hits: Callable[[Context], pd.DataFrame], groups: SiteGroups) -> None:
        self.hits, self.groups = hits, groups

    def add(self, ctx: Context) -> None:
        self.groups.add(ctx, fresh(ctx, self.hits(ctx)))

    def carry(self, ctx: Context) -> np.ndarray:
        return open_isr_call_rows(ctx)

    def findings(self) -> list[Finding]:
        return self.groups.findings()


def smallest(values: dict, key: str, new: Iterable[int], keep: int = 16) -> None:
    """Merge `new` into the `keep` smallest distinct values kept under `key`."""
    values[key] = sorted(set(values.get(key, [])) | {int(v) for v in new})[:keep]


def where(first: pd.Series) -> str:
    """`OTG_FS_IRQHandler (IRQ 67, priority 6)`: the handler and the numbers of its exception."""
    context = str(first["context"])
    if not first["in_isr"]:
        return context
    numbers = context[context.find("(") :] if "(" in context else ""
    return f"{first['handler']} {numbers}".strip()


def at(first: pd.Series) -> str:
    """` at file.c:12` where the row has a source line."""
    source = first.get("source")
    return f" at {source}" if isinstance(source, str) and source else ""


def frames_text(first: pd.Series) -> str:
    path = first.get("callpath")
    return " <- ".join(path.split(";")) if isinstance(path, str) and path else ""


def grouped(group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The elements in order of `group` (numbered 0, 1, …; in order within each group), where
    each group starts in that order, and each group's size."""
    order = np.argsort(group, kind="stable")
    counts = np.bincount(group)
    return order, np.cumsum(counts) - counts, counts


def running_counts(steps: np.ndarray, keys: list[np.ndarray], counts: dict[tuple, int]) -> np.ndarray:
    """Per row, the running sum of `steps` within its group (the rows alike in every array of
    `keys`, none missing), counted on from the group's count in `counts` (by key tuple);
    `counts` then holds each group's last sum (none at 0)."""
    order, starts, sizes = grouped(numbered(keys))
    ordered = np.asarray(steps, dtype=np.int64)[order]
    sums = np.cumsum(ordered)
    group_keys = list(zip(*(np.asarray(column)[order[starts]].tolist() for column in keys), strict=True))
    counted_before = np.array([counts.get(key, 0) for key in group_keys], dtype=np.int64)
    sums += np.repeat(counted_before - (sums[starts] - ordered[starts]), sizes)  # each group from its count
    for key, last in zip(group_keys, sums[starts + sizes - 1].tolist(), strict=True):
        if last:
            counts[key] = last
        else:
            counts.pop(key, None)
    running = np.empty_like(sums)
    running[order] = sums
    return running


def last_marked(group: np.ndarray, marked: np.ndarray, before: bool = False) -> np.ndarray:
    """Per element (in order), the index of the last `marked` element of its `group` up to it
    (only before it with `before`); -1 where there is none."""
    order = np.argsort(group, kind="stable")  # each group's elements together, in order
    number = np.arange(len(order))
    if not len(order):
        return number
    latest = np.maximum.accumulate(np.where(marked[order], number, -1))
    if before:
        latest = np.r_[-1, latest[:-1]]
    sorted_group = group[order]
    group_start = np.maximum.accumulate(np.where(np.r_[True, sorted_group[1:] != sorted_group[:-1]], number, 0))
    found = np.empty(len(order), dtype=np.int64)
    found[order] = np.where(latest >= group_start, order[latest], -1)
    return found
