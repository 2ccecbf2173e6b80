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

from dataclasses import replace

import numpy as np
import pandas as pd

from irqmon.analysis.common import at, where
from irqmon.analysis.context import ACT, EXC_NAME, IN_ISR, Context
from irqmon.analysis.findings import Finding, Group, SiteGroups, frame_list
from irqmon.analysis.locks import (
    LOCK, LOCK_NAME, STATE, LockChanges, holder_events, holder_labels, is_value, last_of_each, lock_changes, lock_events,
    lock_rows_to_carry, watched_while_held,
)
from irqmon.analysis.registry import Rule
from irqmon.schema import EXCEPTION_FRAME, Kind, Role

RULE = Rule(
    id="unbalanced-lock", severity="error", summary="lock released by another context, left taken by an ISR, or never released",
    needs=(Kind.LOCK.value, Kind.MUTEX.value),
)
# HAL lock bytes have no owner semantics to fall back on; a mutex may be a signalling semaphore.
AS_WARNING = replace(RULE, severity="warning")


def stream() -> UnbalancedLocks:
    return UnbalancedLocks()


class UnbalancedLocks:
    """The rule judged batch by batch. A take whose judgement needs rows after its batch (whether
    its activation returns, what the lock's next change is) waits, carried, for a later batch or
    the end of the trace (judged on the last batch's context)."""

    def __init__(self) -> None:
        site = (EXC_NAME, LOCK, "source")
        self.foreign = {
            rule.severity: SiteGroups(rule, site=site, title=_foreign_title, message=_foreign_message, evidence=_foreign_evidence)
            for rule in (RULE, AS_WARNING)
        }  # fmt: skip
        self.returned = SiteGroups(RULE, site=site, title=_returned_title, message=_returned_message, evidence=_returned_evidence)
        self.unreleased = SiteGroups(
            AS_WARNING, site=(LOCK, "source"), title=_unreleased_title, message=_unreleased_message,
            evidence=_unreleased_evidence, collect=_longest,
        )  # fmt: skip
        self.waiting_return: set[int] = set()  # seqs of ISR takes not judged yet
        self.returned_takes: set[int] = set()  # of those, the ones whose activation was seen to return (seqs)
        self.waiting_release: set[int] = set()  # seqs of takes whose lock's next change has not come yet
        self.end = -np.inf  # the latest time so far

    def add(self, ctx: Context) -> None:
        times = ctx.timeline.time[ctx.carried :]
        if len(times) and not np.isnan(times).all():
            self.end = max(self.end, float(np.nanmax(times)))
        events = lock_events(ctx)
        if events.empty:
            return
        self._foreign_release(ctx, events)
        self._judge_takes(ctx, events, at_end=False)
        if (self.waiting_return or self.waiting_release) and ctx.last_batch:
            self._judge_takes(ctx, events, at_end=True)

    def carry(self, ctx: Context) -> np.ndarray:
        return lock_rows_to_carry(ctx)

    def findings(self) -> list[Finding]:
        groups = [*self.foreign.values(), self.returned, self.unreleased]
        return [finding for group in groups for finding in group.findings()]

    def _foreign_release(self, ctx: Context, events: pd.DataFrame) -> None:
        """Releases (in the batch's own rows) of a lock another context had taken."""
        held = holder_events(ctx)
        role = events["role"]
        foreign = (held >= 0) & is_value(role, Role.RELEASE.value) & is_value(role, Role.ACQUIRE.value)[held]
        act = events[ACT].to_numpy(dtype=np.int64)
        foreign &= events[STATE].to_numpy(dtype=bool) & (act[held] != act) & (events.index.to_numpy() >= ctx.carried)
        hits = events.iloc[np.flatnonzero(foreign)]
        hits = hits[~_handed_over(ctx, hits)]
        holders = events[["symbol", "time"]].iloc[held[np.searchsorted(events.index.to_numpy(), hits.index.to_numpy())]]
        hits = hits[watched_while_held(ctx, holders["symbol"], holders["time"], hits["time"])]
        hits = hits.assign(other_context=holder_labels(ctx, hits))
        hal = (hits["kind"] == Kind.LOCK.value).to_numpy(dtype=bool)
        self.foreign[RULE.severity].add(ctx, hits[hal])
        self.foreign[AS_WARNING.severity].add(ctx, hits[~hal])

    def _judge_takes(self, ctx: Context, events: pd.DataFrame, at_end: bool) -> None:
        """Judge the batch's new takes (none at the end) and those still waiting: an ISR that
        returned with the lock taken, a lock never released or held too long."""
        changes = lock_changes(ctx)
        new = (changes.positions >= ctx.carried) & (not at_end)
        next_time = np.where(changes.following >= 0, changes.time[changes.following], np.nan)
        self._isr_returns_locked(ctx, events, changes, new | np.isin(changes.seq, list(self.waiting_return)), next_time, at_end)
        takes = np.flatnonzero((new | np.isin(changes.seq, list(self.waiting_release))) & changes.taken)
        self._never_released(ctx, events, changes, takes, next_time, at_end)

    def _isr_returns_locked(
        self, ctx: Context, events: pd.DataFrame, changes: LockChanges, candidates: np.ndarray, next_time: np.ndarray, at_end: bool,
    ) -> None:  # fmt: skip
        """An ISR activation whose last change leaves the lock taken, and no later release ends it
        (a transfer the ISR started that the next completion interrupt ends is handed over)."""
        in_isr = np.flatnonzero(changes.in_isr)
        last = in_isr[last_of_each(changes.act[in_isr], changes.lock[in_isr])]
        takes = last[candidates[last] & changes.taken[last]]
        seq = changes.seq[takes]
        returned = ctx.is_closed(pd.Series(changes.act[takes])).to_numpy(dtype=bool) | np.isin(seq, list(self.returned_takes))
        following = changes.following[takes]
        decided = (returned & (following >= 0)) | at_end
        released_later = (following >= 0) & ~changes.taken[following]
        hit = takes[decided & returned & ~released_later]
        held_until = np.where(np.isnan(next_time[hit]), self.end, next_time[hit])
        hits = events.iloc[changes.numbers[hit]]
        self.returned.add(ctx, hits[watched_while_held(ctx, hits["symbol"], hits["time"], held_until)])
        self.waiting_return = set(seq[~decided].tolist())
        self.returned_takes = set(seq[~decided & returned].tolist())

    def _never_released(
        self, ctx: Context, events: pd.DataFrame, changes: LockChanges, takes: np.ndarray, next_time: np.ndarray, at_end: bool,
    ) -> None:  # fmt: skip
        """Held at the end of the trace (warning: the capture may have stopped first), or too long
        (`takes`: the numbers of the takes to judge among the changes)."""
        next_change = next_time[takes]
        unknown = np.isnan(next_change)
        decided = ~unknown | at_end
        held_until = np.where(unknown, self.end, next_change)
        held_for = held_until - changes.time[takes]
        ended = unknown & ~changes.in_isr[takes]
        window = ctx.config.lock_window
        too_long = held_for > window if window is not None else np.zeros(len(takes), dtype=bool)
        hit = decided & (ended | too_long)
        hits = events.iloc[changes.numbers[takes[hit]]].assign(held_for=held_for[hit], at_end=ended[hit])
        self.unreleased.add(ctx, hits[watched_while_held(ctx, hits["symbol"], hits["time"], held_until[hit])])
        self.waiting_release = set(changes.seq[takes][~decided].tolist())


def _foreign_title(first: pd.Series, group: Group) -> str:
    return f"{first[LOCK_NAME]} taken by {first['other_context']} released by {where(first)}"


def _foreign_message(first: pd.Series, group: Group) -> str:
    return (
        f"{first['context']} released {first[LOCK_NAME]}{at(first)} that {first['other_context']} had taken and still "
        f"relied on ({group.count} time(s))."
    )


def _foreign_evidence(first: pd.Series, group: Group) -> dict:
    return {"lock": first[LOCK_NAME], "holder": first["other_context"], "case": "foreign-release"}


def _handed_over(ctx: Context, releases: pd.DataFrame) -> np.ndarray:
    """Releases in an ISR of a lock whose holder had left the function that took it: the lock
    marked a transfer in flight, which the completion interrupt ends (ST's HAL_DMA_Start_IT
    locks, HAL_DMA_IRQHandler unlocks). The ISR's call path goes on into the code it
    interrupted; the holder is still inside only where that function is among those frames
    (judged once per distinct pair of call paths)."""
    handed = np.zeros(len(releases), dtype=bool)
    known = (releases[IN_ISR] & releases["held_row"].notna()).to_numpy(dtype=bool)
    if not known.any():
        return handed
    rows = releases[known]
    takers = ctx.rows_at(rows["held_row"].astype(np.int64).to_numpy(), ["callpath"])["callpath"]
    releasers = ctx.rows_at(rows.index.to_numpy(), ["callpath"])["callpath"]
    taker_codes, taker_paths = pd.factorize(takers, use_na_sentinel=False)
    releaser_codes, releaser_paths = pd.factorize(releasers, use_na_sentinel=False)
    pairs, pair_of = np.unique(taker_codes * len(releaser_paths) + releaser_codes, return_inverse=True)
    taker_paths, releaser_paths = np.asarray(taker_paths, dtype=object), np.asarray(releaser_paths, dtype=object)
    still_inside = [
        _still_inside(taker_paths[pair // len(releaser_paths)], releaser_paths[pair % len(releaser_paths)]) for pair in pairs.tolist()
    ]  # fmt: skip
    handed[known] = ~np.array(still_inside, dtype=bool)[pair_of]
    return handed


def _still_inside(taker_path: object, release_path: object) -> bool:
    """Whether the function that took the lock is among the frames the releasing ISR
    interrupted (true where a call path is missing: unknown)."""
    taker = frame_list(taker_path if isinstance(taker_path, str) else None, own=True)
    frames = frame_list(release_path if isinstance(release_path, str) else None)
    if not taker or EXCEPTION_FRAME not in frames:
        return True
    return taker[0] in frames[frames.index(EXCEPTION_FRAME) + 1 :]


def _returned_title(first: pd.Series, group: Group) -> str:
    return f"{where(first)} returned with {first[LOCK_NAME]} still taken"


def _returned_message(first: pd.Series, group: Group) -> str:
    return f"{first['context']} took {first[LOCK_NAME]}{at(first)} and returned without releasing it ({group.count} time(s))."


def _returned_evidence(first: pd.Series, group: Group) -> dict:
    return {"lock": first[LOCK_NAME], "case": "isr-returned-locked"}


def _longest(values: dict, hits: pd.DataFrame) -> None:
    values["held_for"] = max(values.get("held_for", -np.inf), float(hits["held_for"].max()))


def _unreleased_title(first: pd.Series, group: Group) -> str:
    how = " by the end of the trace" if first["at_end"] else f" for {first['held_for']:.3f} s"
    return f"{first[LOCK_NAME]} taken by {first['context']} and not released{how}"


def _unreleased_message(first: pd.Series, group: Group) -> str:
    return f"{first['context']} took {first[LOCK_NAME]}{at(first)}; it stayed taken for {group.values['held_for']:.6f} s."


def _unreleased_evidence(first: pd.Series, group: Group) -> dict:
    case = "never-released" if first["at_end"] else "held-too-long"
    return {"lock": first[LOCK_NAME], "case": case, "held_for": group.values["held_for"]}
