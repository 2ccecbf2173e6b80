"""Pieces several rules share: calls made from an ISR, and the wording of where a thing happened."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from irqmon.analysis.context import ACT, Context
from irqmon.analysis.findings import frame_list
from irqmon.schema import Event, Kind

CALL_COLUMNS = ["event", "symbol", "role", ACT]  # what `outermost_calls` and the role filter read


def isr_calls(ctx: Context, kind: str | Iterable[str], role: str | Iterable[str] | None = None) -> pd.DataFrame:
    """Outermost `call` rows of `kind` (and `role`) made in handler mode, whole.

    Nesting is judged among the ISR's calls of the kind, so `_malloc_r` under `malloc` counts once.
    Only the columns that judging reads are converted for every call; whole rows for the calls kept.
    """
    rows = ctx.select(event=(Event.CALL.value, Event.RETURN.value), kind=kind, isr=True, columns=CALL_COLUMNS)
    calls = ctx.outermost_calls(rows)
    if role is not None:
        roles = [role] if isinstance(role, str) else list(role)
        calls = calls[calls["role"].isin(roles).fillna(False).astype(bool)]
    return ctx.rows_at(calls.index.to_numpy())


def calls_inside_other_calls(ctx: Context) -> pd.DataFrame:
    """`call` rows in handler mode made inside another probed call of the same activation (its
    function among the context's own frames): what a kernel or library does inside a call, such
    as the critical section inside xQueueSemaphoreTake. They are the outer call's evidence, not
    findings of their own; computed once per analysis (columns `symbol`, `kind`, `callpath`, `act`)."""
    if "inner_calls" not in ctx.shared:
        rows = ctx.select(event=(Event.CALL.value, Event.RETURN.value), isr=True, columns=CALL_COLUMNS + ["kind"])
        outer = ctx.outermost_calls(rows).index
        calls = rows[(rows["event"] == Event.CALL.value).to_numpy(dtype=bool) & ~rows.index.isin(outer)]
        paths = ctx.rows_at(calls.index.to_numpy(), ["callpath"])["callpath"]
        ctx.shared["inner_calls"] = calls.assign(callpath=paths.where(paths.notna(), None).astype(object))
    return ctx.shared["inner_calls"]  # type: ignore[return-value]


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
    if calls.empty or len(ctx.positions_of(event=Event.CALL.value, kind=Kind.HEAP.value, isr=True)) == 0:
        return inside
    heap = set(ctx.select(event=Event.CALL.value, kind=Kind.HEAP.value, columns=["symbol"])["symbol"].dropna())
    if ctx.coverage is not None:  # the heap functions planned, seen or not
        heap.update(name for site in ctx.coverage.of_kinds((Kind.HEAP.value,)) for name in site.functions)
    positions, symbols = calls.index.to_numpy(), calls["symbol"].to_numpy(dtype=object, na_value=None)
    for name in heap:
        inside |= (symbols != name) & ctx.has_own_frame(positions, str(name))
    return inside


def calls_inside(ctx: Context, group: pd.DataFrame) -> list[str]:
    """The probed calls a finding's calls made inside themselves, `symbol (kind)`, once each."""
    inner = calls_inside_other_calls(ctx)
    inner = inner[inner[ACT].isin(group[ACT])]
    outer = set(group["symbol"].dropna())
    found = {f"{row.symbol} ({row.kind})" for row in inner.itertuples() if outer & set(frame_list(row.callpath, own=True)[1:])}
    return sorted(found)


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
