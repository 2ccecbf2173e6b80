"""unbalanced-lock: a lock released by another context than took it, left taken when an ISR returns, or never released.

Why it is bad:
    A lock protects a sequence of operations of its holder. An ISR that force-unlocks what a
    task holds lets a third party in while the task is still mid-transfer; an ISR that returns
    with a lock taken blocks every later user (nothing will run its release); a lock that is
    never released is a deadlock waiting for the next caller. For a mutex, giving it from
    another task than the owner breaks priority inheritance.

Example:
    The seed 004 workaround: I2C1_EV_IRQHandler runs `__HAL_UNLOCK(&hi2c1)` while the task that
    ran `__HAL_LOCK` is still polling inside HAL_I2C_Mem_Read_IT.

Instead:
    Release a lock in the context that took it, on every path (error returns included). Fix the
    contention instead of force-unlocking: see isr-lock-contention. Use a semaphore, not a
    mutex, when one context signals another.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from irqmon.analysis.common import at, where
from irqmon.analysis.context import ACT, EXC_NAME, IN_ISR, Context
from irqmon.analysis.findings import Finding, frame_list, group_hits
from irqmon.analysis.locks import LOCK, LOCK_NAME, STATE, holder_labels, lock_events, watched_while_held
from irqmon.analysis.registry import Rule
from irqmon.schema import EXCEPTION_FRAME, Kind, Role

RULE = Rule(
    id="unbalanced-lock", severity="error", summary="lock released by another context, left taken by an ISR, or never released",
    needs=(Kind.LOCK.value, Kind.MUTEX.value),
)


def check(ctx: Context) -> list[Finding]:
    events = lock_events(ctx)
    if events.empty:
        return []
    state = events[events[STATE]]
    findings = _foreign_release(ctx, events) + _isr_returns_locked(ctx, state)
    return findings + _never_released(ctx, state)


def _severity(group: pd.DataFrame) -> str:
    """HAL lock bytes have no owner semantics to fall back on; a mutex may be a signalling semaphore."""
    return "error" if (group["kind"] == Kind.LOCK.value).all() else "warning"


def _foreign_release(ctx: Context, events: pd.DataFrame) -> list[Finding]:
    foreign = events[STATE] & (events["role"] == Role.RELEASE.value) & (events["held_role"] == Role.ACQUIRE.value)
    hits = events[(foreign & (events["held_act"] != events[ACT])).fillna(False).astype(bool)].copy()
    hits = hits[~_handed_over(ctx, hits)]
    holders = ctx.rows_at(hits["held_row"].astype(np.int64).to_numpy(), ["symbol", "time"])
    hits = hits[watched_while_held(ctx, holders["symbol"], holders["time"], hits["time"])]
    hits["other_context"] = holder_labels(ctx, hits)
    findings = []
    for kind, group in hits.groupby("kind", sort=False):
        findings += group_hits(
            RULE, ctx, group, site=(EXC_NAME, LOCK, "source"),
            title=lambda f, g: f"{f[LOCK_NAME]} taken by {f['other_context']} released by {where(f)}",
            message=lambda f, g: (
                f"{f['context']} released {f[LOCK_NAME]}{at(f)} that {f['other_context']} had taken and still "
                f"relied on ({len(g)} time(s))."
            ),
            evidence=lambda f, g: {"lock": f[LOCK_NAME], "holder": f["other_context"], "case": "foreign-release"},
            severity=_severity(group),
        )  # fmt: skip
    return findings


def _handed_over(ctx: Context, releases: pd.DataFrame) -> pd.Series:
    """Releases in an ISR of a lock whose holder had left the function that took it: the lock
    marked a transfer in flight, which the completion interrupt ends (ST's HAL_DMA_Start_IT
    locks, HAL_DMA_IRQHandler unlocks). The ISR's call path goes on into the code it
    interrupted; the holder is still inside only where that function is among those frames."""
    known = (releases[IN_ISR] & releases["held_row"].notna()).to_numpy(dtype=bool)
    if not known.any():
        return pd.Series(False, index=releases.index)
    rows = releases[known]
    takers = ctx.rows_at(rows["held_row"].astype(np.int64).to_numpy(), ["callpath"])["callpath"]
    releasers = ctx.rows_at(rows.index.to_numpy(), ["callpath"])["callpath"]
    handed = [not _still_inside(taker, release) for taker, release in zip(takers, releasers, strict=True)]
    return pd.Series(handed, index=rows.index).reindex(releases.index, fill_value=False)


def _still_inside(taker_path: object, release_path: object) -> bool:
    """Whether the function that took the lock is among the frames the releasing ISR
    interrupted (true where a call path is missing: unknown)."""
    taker = frame_list(taker_path if isinstance(taker_path, str) else None, own=True)
    frames = frame_list(release_path if isinstance(release_path, str) else None)
    if not taker or EXCEPTION_FRAME not in frames:
        return True
    return taker[0] in frames[frames.index(EXCEPTION_FRAME) + 1 :]


def _isr_returns_locked(ctx: Context, state: pd.DataFrame) -> list[Finding]:
    """An ISR activation whose last change leaves the lock taken, and no later release ends it
    (a transfer the ISR started that the next completion interrupt ends is handed over)."""
    following = state.groupby(LOCK, sort=False)
    released_later = following["role"].shift(-1) == Role.RELEASE.value
    held_until = following["time"].shift(-1).fillna(float(np.nanmax(ctx.timeline.time)))
    in_isr = state[state[IN_ISR]].assign(released_later=released_later, held_until=held_until)
    last = in_isr.groupby([ACT, LOCK], sort=False).tail(1)
    closed = ctx.is_closed(last[ACT])
    hits = last[(last["role"] == Role.ACQUIRE.value) & closed & ~last["released_later"].fillna(False).astype(bool)]
    hits = hits[watched_while_held(ctx, hits["symbol"], hits["time"], hits["held_until"])]
    return group_hits(
        RULE, ctx, hits, site=(EXC_NAME, LOCK, "source"),
        title=lambda f, g: f"{where(f)} returned with {f[LOCK_NAME]} still taken",
        message=lambda f, g: f"{f['context']} took {f[LOCK_NAME]}{at(f)} and returned without releasing it ({len(g)} time(s)).",
        evidence=lambda f, g: {"lock": f[LOCK_NAME], "case": "isr-returned-locked"},
    )  # fmt: skip


def _never_released(ctx: Context, state: pd.DataFrame) -> list[Finding]:
    """Held at the end of the trace (warning: the capture may have stopped first), or too long."""
    end = float(np.nanmax(ctx.timeline.time))
    next_change = state.groupby(LOCK, sort=False)["time"].shift(-1)
    held_until = next_change.fillna(end)
    held_for = held_until - state["time"]
    at_end = next_change.isna() & ~state[IN_ISR]
    too_long = held_for > ctx.config.lock_window if ctx.config.lock_window is not None else pd.Series(False, index=state.index)
    takes = (state["role"] == Role.ACQUIRE.value) & (at_end | too_long)
    hits = state[takes.astype(bool)].assign(held_for=held_for[takes.astype(bool)], at_end=at_end[takes.astype(bool)])
    hits = hits[watched_while_held(ctx, hits["symbol"], hits["time"], held_until[hits.index])]
    return group_hits(
        RULE, ctx, hits, site=(LOCK, "source"),
        title=lambda f, g: f"{f[LOCK_NAME]} taken by {f['context']} and not released" + (" by the end of the trace" if f["at_end"] else f" for {f['held_for']:.3f} s"),
        message=lambda f, g: f"{f['context']} took {f[LOCK_NAME]}{at(f)}; it stayed taken for {g['held_for'].max():.6f} s.",
        evidence=lambda f, g: {"lock": f[LOCK_NAME], "case": "never-released" if f["at_end"] else "held-too-long", "held_for": float(g["held_for"].max())},
        severity="warning",
    )  # fmt: skip

