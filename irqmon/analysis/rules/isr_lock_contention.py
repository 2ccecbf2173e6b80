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
from irqmon.analysis.context import ACT, EXC_NAME, IN_ISR, PRIO, Context
from irqmon.analysis.findings import Finding, Group, SiteGroups
from irqmon.analysis.locks import (
    LOCK, LOCK_NAME, contended_events, holder_events, holder_labels, lock_events, lock_rows_to_carry, watched_while_held,
)
from irqmon.analysis.registry import Rule
from irqmon.schema import Kind, Role

RULE = Rule(
    id="isr-lock-contention", severity="error", summary="ISR tests or takes a lock held by the context it preempted",
    needs=(Kind.LOCK.value, Kind.MUTEX.value),
)


# What a try's finding reads of its lock event (a site's first hit gets the trace's other columns).
HIT_COLUMNS = ["seq", "time", "ipsr", "task", "role", "symbol", IN_ISR, PRIO, ACT, LOCK, LOCK_NAME]


def stream() -> Contention:
    return Contention()


class Contention:
    """The rule judged batch by batch: each try is judged in its own batch (the lock's holder
    is carried over)."""

    def __init__(self) -> None:
        self.groups = SiteGroups(RULE, site=(EXC_NAME, LOCK), title=_title, message=_message, evidence=_evidence, collect=_collect)

    def add(self, ctx: Context) -> None:
        events = lock_events(ctx)
        if not events.empty:
            self.groups.add(ctx, _hits(ctx, events))

    def carry(self, ctx: Context) -> np.ndarray:
        return lock_rows_to_carry(ctx)

    def findings(self) -> list[Finding]:
        return self.groups.findings()


def _hits(ctx: Context, events: pd.DataFrame) -> pd.DataFrame:
    """The batch's contended tries (not the carried ones: their batch judged them), with the
    holder's label, the time it took the lock and where."""
    tries = np.flatnonzero(contended_events(ctx) & (events.index.to_numpy() >= ctx.carried))
    hits = events[HIT_COLUMNS].iloc[tries]
    hits["other_context"] = holder_labels(ctx, hits)
    held = holder_events(ctx)[tries]
    has_holder = held >= 0
    hits["holder_time"] = np.where(has_holder, events["time"].to_numpy(dtype=float)[held], np.nan)
    hits["holder_source"] = events["source"].array.take(held, allow_fill=True)
    # A holder whose site a rotated capture disarmed before this try may have released it unseen.
    held = held[has_holder]
    seen_held = watched_while_held(ctx, events["symbol"].iloc[held], events["time"].iloc[held], hits["time"][has_holder])
    return hits if seen_held.all() else hits.drop(hits.index[has_holder][~seen_held])


def _collect(values: dict, hits: pd.DataFrame) -> None:
    """Reads of the locked value, and the activations the tries came from (an exception's
    activations follow one another: its last one so far may go on in the next batch)."""
    values["busy"] = values.get("busy", 0) + int((hits["role"] == Role.TEST.value).sum())
    last_act = values.setdefault("last_act", {})
    for exception, acts in hits.groupby("ipsr", sort=False)[ACT]:
        values["activations"] = values.get("activations", 0) + acts.nunique() - int(last_act.get(exception) == acts.iloc[0])
        last_act[exception] = acts.iloc[-1]


def _holder(first: pd.Series) -> str:
    holder = first["other_context"]
    return str(holder) if isinstance(holder, str) else "a context not in the trace"


def _title(first: pd.Series, group: Group) -> str:
    return f"{where(first)} found {first[LOCK_NAME]} held by {_holder(first)}"


def _message(first: pd.Series, group: Group) -> str:
    taken = f" (taken at {first['holder_source']})" if isinstance(first["holder_source"], str) else ""
    return (
        f"{first['context']} tried {first[LOCK_NAME]}{at(first)} while {_holder(first)} held it{taken}; "
        f"{group.count} attempt(s), {group.values['busy']} of them reads of the locked value. The holder cannot run until the ISR returns."
    )


def _evidence(first: pd.Series, group: Group) -> dict:
    return {
        "lock": first[LOCK_NAME],
        "holder": _holder(first),
        "holder_source": first["holder_source"],
        "holder_acquired_time": first["holder_time"],
        "attempts": group.count,
        "activations": group.values["activations"],
    }
