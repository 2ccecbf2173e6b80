"""isr-lock-contention: an ISR tests or takes a lock that a context it preempted is holding.

Why it is bad:
    The preempted holder cannot run until the ISR returns, so the lock will not be released
    while the ISR waits or retries. A HAL handler that finds its handle locked returns HAL_BUSY
    without clearing the interrupt flag, so a level-triggered interrupt re-enters at once and
    starves the holder for good: a storm or a deadlock. A mutex taken in an ISR under the same
    circumstances blocks (or fails) in handler mode.

Example:
    A task holds `hi2c1.Lock` while it polls a flag with a 25 ms timeout; I2C1_EV fires, its
    XferISR runs `__HAL_LOCK`, reads Lock = 1 and returns HAL_BUSY; the flag stays set (seed 004).

Instead:
    Do not share a lock between a task and an ISR: start the transfer, release the handle
    before enabling the peripheral's interrupts, and let the ISR work lock-free (or mask the IRQ
    around the task's section). A task waiting for the hardware should block on a semaphore
    given by the ISR, not poll while holding the handle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from irqmon.analysis.common import at, where
from irqmon.analysis.context import ACT, EXC_NAME, Context
from irqmon.analysis.findings import Finding, group_hits
from irqmon.analysis.locks import LOCK, LOCK_NAME, contended, holder_labels, lock_events, watched_while_held
from irqmon.analysis.registry import Rule
from irqmon.schema import Kind, Role

RULE = Rule(
    id="isr-lock-contention", severity="error", summary="ISR tests or takes a lock held by the context it preempted",
    needs=(Kind.LOCK.value, Kind.MUTEX.value),
)


def check(ctx: Context) -> list[Finding]:
    events = lock_events(ctx)
    if events.empty:
        return []
    hits = events[contended(events)].copy()
    hits["other_context"] = holder_labels(ctx, hits)
    held = hits["held_row"].notna().to_numpy()
    holder = ctx.rows_at(hits["held_row"][held].astype(np.int64).to_numpy(), ["time", "source", "symbol"])
    holder = holder.set_axis(hits.index[held]).reindex(hits.index)
    hits["holder_time"], hits["holder_source"] = holder["time"], holder["source"]
    # A holder whose site a rotated capture disarmed before this try may have released it unseen.
    seen_held = watched_while_held(ctx, holder["symbol"][held], holder["time"][held], hits["time"][held])
    hits = hits.drop(hits.index[held][~seen_held])
    return group_hits(RULE, ctx, hits, site=(EXC_NAME, LOCK), title=_title, message=_message, evidence=_evidence)


def _holder(first: pd.Series) -> str:
    holder = first["other_context"]
    return str(holder) if isinstance(holder, str) else "a context not in the trace"


def _title(first: pd.Series, group: pd.DataFrame) -> str:
    return f"{where(first)} found {first[LOCK_NAME]} held by {_holder(first)}"


def _message(first: pd.Series, group: pd.DataFrame) -> str:
    taken = f" (taken at {first['holder_source']})" if isinstance(first["holder_source"], str) else ""
    busy = int((group["role"] == Role.TEST.value).sum())
    return (
        f"{first['context']} tried {first[LOCK_NAME]}{at(first)} while {_holder(first)} held it{taken}; "
        f"{len(group)} attempt(s), {busy} of them reads of the locked value. The holder cannot run until the ISR returns."
    )


def _evidence(first: pd.Series, group: pd.DataFrame) -> dict:
    return {
        "lock": first[LOCK_NAME],
        "holder": _holder(first),
        "holder_source": first["holder_source"],
        "holder_acquired_time": first["holder_time"],
        "attempts": len(group),
        "activations": int(group[ACT].nunique()),
    }
