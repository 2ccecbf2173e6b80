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

import numpy as np
import pandas as pd

from irqmon.analysis.common import at, where
from irqmon.analysis.context import ACT, Context
from irqmon.analysis.findings import Finding, group_hits
from irqmon.analysis.registry import Rule
from irqmon.schema import Event, Kind

RULE = Rule(
    id="non-reentrant-reentry", severity="error", summary="non-reentrant function entered while another context is inside it",
    needs=(Kind.NON_REENTRANT.value,),
)
# What the pairing of calls and returns reads (the calls are many: the hits' rows are taken whole, later).
CALL_COLUMNS = ["seq", "event", "symbol", "sp", ACT]


def check(ctx: Context) -> list[Finding]:
    rows = ctx.select(event=(Event.CALL.value, Event.RETURN.value), kind=Kind.NON_REENTRANT.value, columns=CALL_COLUMNS)
    rows = rows[rows["symbol"].notna()].sort_values("seq")
    is_call = (rows["event"] == Event.CALL.value).astype(bool)
    # Without return rows the end of a call is unknown: those functions are left out.
    with_returns = rows.groupby("symbol")["event"].transform(lambda e: (e == Event.RETURN.value).any()).astype(bool)
    rows, is_call = rows[with_returns], is_call[with_returns]
    if rows.empty:
        return []
    # A rotated capture may have missed a return while the function's site was disarmed: calls
    # and returns pair up only within one turn of the site.
    turn = pd.Series(ctx.coverage.turn(rows["symbol"], rows["seq"].to_numpy()) if ctx.coverage else 0, index=rows.index)
    key = [rows["symbol"], turn, rows[ACT], rows["sp"].fillna(-1)]
    calls_so_far = is_call.astype(np.int64).groupby(key).cumsum()
    returns_so_far = (~is_call).astype(np.int64).groupby(key).cumsum()
    paired_return = ~is_call & (returns_so_far <= calls_so_far)  # a return whose call is in the trace
    delta = is_call.astype(np.int64) - paired_return.astype(np.int64)
    inside = delta.groupby([rows["symbol"], turn]).cumsum() - delta
    inside_own = delta.groupby([rows["symbol"], turn, rows[ACT]]).cumsum() - delta
    hits = rows[is_call & (inside - inside_own > 0)].copy()
    if hits.empty:
        return []
    hits = ctx.rows_at(ctx.outermost_calls(hits).index.to_numpy())  # whole rows only for the hits
    calls = rows[is_call].assign(row=rows.index[is_call.to_numpy()])
    last_of_run = calls["row"].where(calls[ACT] != calls.groupby("symbol")[ACT].shift(-1))
    previous_other = last_of_run.groupby(calls["symbol"]).shift().groupby(calls["symbol"]).ffill()
    other_rows = previous_other.reindex(hits.index)
    known = other_rows.notna().to_numpy()
    labels = pd.Series(pd.NA, index=hits.index, dtype="string")
    labels[known] = ctx.labels_at(other_rows[known].astype(np.int64).to_numpy()).to_numpy()
    hits["other_context"] = labels
    return group_hits(RULE, ctx, hits, site=("symbol", "ipsr"), title=_title, message=_message, evidence=_evidence)


def _other(first: pd.Series) -> str:
    return str(first["other_context"]) if isinstance(first["other_context"], str) else "another context"


def _title(first: pd.Series, group: pd.DataFrame) -> str:
    return f"{first['symbol']} entered by {where(first)} while {_other(first)} was inside it"


def _message(first: pd.Series, group: pd.DataFrame) -> str:
    return f"{first['context']} called {first['symbol']}{at(first)} while {_other(first)} had not returned from it; {len(group)} time(s)."


def _evidence(first: pd.Series, group: pd.DataFrame) -> dict:
    return {"function": first["symbol"], "inside": _other(first), "entries": len(group)}
