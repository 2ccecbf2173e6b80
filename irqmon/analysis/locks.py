"""Lock events shared by the lock rules: who holds each lock at every take, test and release.

A lock is a HAL `Lock` byte (watched `access` rows, role test/acquire/release) or a mutex
(`call` rows of kind mutex, or RTOS calls the capture found working on a mutex, keyed by the
object in `address`). A take whose return is in the trace holds the mutex from its return on
(it may block first, while the holder runs); its call is a try (`test`). Each event row gets the lock's
last holder before it: `held_role` (acquire/release), `held_act`, `held_row` (index of that row).

In a batch of a trace analysed in batches, the rows `lock_rows_to_carry` gives come again first
(each lock's last change, so the holders go on), and the events among them are those the batch
before found (a call judged nested there has lost the rows that showed it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from irqmon.analysis.context import ACT, IN_ISR, LABEL_COLUMNS, PRIO, Context, among_sorted
from irqmon.analysis.findings import numbered
from irqmon.schema import Event, Kind, Role

LOCK = "lock"
LOCK_NAME = "lock_name"
STATE = "changes_state"
MUTEX_KINDS = (Kind.MUTEX.value, Kind.RTOS_API.value)  # the calls that may take or give a mutex
CARRIED_EVENTS = "lock_events"  # `Before.shared`: the seqs of the lock events among the carried rows
# The columns of the trace each lock event has: what the lock rules and their sites read (the
# events are many: `group_hits` takes the other columns only for each site's first hit).
EVENT_COLUMNS = ["seq", "time", "ipsr", "task", "kind", "role", "symbol", "address", "value", "old_value", "source", IN_ISR, PRIO, ACT]


def lock_events(ctx: Context) -> pd.DataFrame:
    """The lock events of the trace with their holders (computed once per analysis), with the
    trace's `EVENT_COLUMNS`."""
    return ctx.once("lock_events", _lock_events)


def _lock_events(ctx: Context) -> pd.DataFrame:
    roles = (Role.ACQUIRE.value, Role.RELEASE.value, Role.TEST.value)
    hal = ctx.positions_of(event=Event.ACCESS.value, kind=Kind.LOCK.value, role=roles)
    # RTOS calls whose row names a take or a give: a mutex's calls, and generic ones (a queue
    # send) whose object the capture found to be a mutex (picked on the context's codes).
    calls_and_returns = (Event.CALL.value, Event.RETURN.value)
    mutex = ctx.positions_of(event=calls_and_returns, kind=MUTEX_KINDS)
    with_object = ctx.has_value("address", mutex)
    mutex_rows = ctx.rows_at(mutex, ["event", "symbol", ACT])  # what `outermost_calls` reads
    outermost = among_sorted(mutex, ctx.outermost_calls(mutex_rows, MUTEX_KINDS).index.to_numpy())
    with_role = lambda wanted: among_sorted(mutex, ctx.positions_of(event=calls_and_returns, kind=MUTEX_KINDS, role=wanted))  # noqa: E731
    takes_and_gives = outermost & with_role(roles) & with_object
    # A take that may block owns the mutex once it returns: its call is only a try.
    calls = ctx.positions_of(event=Event.CALL.value, kind=MUTEX_KINDS)
    take_returns = ~among_sorted(mutex, calls) & with_role(Role.ACQUIRE.value) & with_object
    positions = np.sort(np.concatenate((hal, mutex[takes_and_gives | take_returns])), kind="stable")  # two sorted runs merged
    if ctx.carried:  # the carried rows' events are those their batch found
        found = ctx.before.shared.get(CARRIED_EVENTS, frozenset())  # type: ignore[union-attr]
        carried = np.arange(ctx.carried)
        seqs = ctx.rows_at(carried, ["seq"])["seq"].to_numpy(dtype=np.int64)
        positions = np.concatenate((carried[np.isin(seqs, list(found))], positions[positions >= ctx.carried]))
    events = ctx.rows_at(positions, EVENT_COLUMNS)  # in order of position, so of seq (disjoint rows)
    if events.empty:
        return events.assign(**{LOCK: pd.Series(dtype="string"), LOCK_NAME: pd.Series(dtype="string")})
    taken_on_return = _taken_on_return(ctx, mutex_rows["symbol"][take_returns])
    acquire = is_value(events["role"], Role.ACQUIRE.value)
    tries = among_sorted(positions, calls) & is_value(events["symbol"], tuple(taken_on_return)) & acquire
    if tries.any():
        events["role"] = events["role"].mask(tries, Role.TEST.value)
        acquire = acquire & ~tries
    other_kind = ~is_value(events["kind"], (Kind.LOCK.value, Kind.MUTEX.value))  # an RTOS call found working on a mutex
    if other_kind.any():
        events["kind"] = events["kind"].mask(other_kind, Kind.MUTEX.value)
    lock_code, events[LOCK], events[LOCK_NAME] = _locks(events)
    known = lock_code >= 0
    if not known.all():
        events, lock_code, acquire = events[known], lock_code[known], acquire[known]
    # A release that writes the unlocked value over the unlocked value changes nothing.
    is_release = is_value(events["role"], Role.RELEASE.value)
    redundant = is_release & (events["old_value"] == 0).to_numpy(dtype=bool, na_value=False)
    changes = (acquire | is_release) & ~redundant
    events[STATE] = changes
    held = _last_change_before(lock_code, changes)
    nobody = held < 0
    events["held_role"] = events["role"].array.take(held, allow_fill=True)
    events["held_act"] = pd.arrays.IntegerArray(events[ACT].to_numpy(dtype=np.int64)[held], nobody)
    events["held_row"] = pd.arrays.IntegerArray(events.index.to_numpy(dtype=np.int64)[held], nobody)
    return events


def is_value(values: pd.Series, wanted: str | tuple[str, ...]) -> np.ndarray:
    """Per row of a string column, whether it is `wanted` (one of them; missing values are not)."""
    return values.isin([wanted] if isinstance(wanted, str) else list(wanted)).to_numpy(dtype=bool)


def _last_change_before(lock_code: np.ndarray, changes: np.ndarray) -> np.ndarray:
    """Per event, the number (0, 1, …) of the last event before it of the same lock that changed
    its state (`changes`); -1 where none did."""
    order = np.argsort(lock_code, kind="stable")  # each lock's events together, in order
    sorted_codes = lock_code[order]
    lock_start = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if len(order) else order
    start_of = np.repeat(lock_start, np.diff(np.r_[lock_start, len(order)]))
    last = np.maximum.accumulate(np.where(changes[order], np.arange(len(order)), -1))
    before = np.r_[-1, last[:-1]] if len(order) else last
    held = np.full(len(order), -1, dtype=np.int64)
    held[order] = np.where(before >= start_of, order[np.maximum(before, 0)], -1)
    return held


def _taken_on_return(ctx: Context, take_returns: pd.Series) -> set[str]:
    """The take functions whose returns the trace has (with the object they took); in a batch,
    the whole trace's (`take_returns`: the symbols of the batch's)."""
    if ctx.before is None:
        return set(take_returns.dropna().unique())
    return {
        s.symbol for s in ctx.before.facts.signatures
        if s.event == Event.RETURN.value and s.kind in MUTEX_KINDS and s.role == Role.ACQUIRE.value and s.has_address
        and s.symbol is not None
    }  # fmt: skip


@dataclass(frozen=True)
class LockChanges:
    """The lock events that change a lock's state (`STATE`), in order, as arrays."""

    numbers: np.ndarray  # their numbers among the lock events
    positions: np.ndarray
    seq: np.ndarray
    time: np.ndarray
    act: np.ndarray
    lock: np.ndarray  # a number per lock
    in_isr: np.ndarray
    taken: np.ndarray  # an acquire (else a release)
    following: np.ndarray  # the number (among the changes) of the same lock's next change; -1 where none is known yet


def lock_changes(ctx: Context) -> LockChanges:
    """The context's lock events that change a lock's state (worked out once per context)."""
    return ctx.once("lock_changes", _lock_changes)


def _lock_changes(ctx: Context) -> LockChanges:
    events = lock_events(ctx)
    numbers = np.flatnonzero(events[STATE].to_numpy(dtype=bool)) if not events.empty else np.zeros(0, dtype=np.int64)
    lock = pd.factorize(events[LOCK].array.take(numbers))[0]
    order = np.argsort(lock, kind="stable")  # each lock's changes together, in order
    same_lock = lock[order][1:] == lock[order][:-1]
    following = np.full(len(numbers), -1, dtype=np.int64)
    following[order[:-1][same_lock]] = order[1:][same_lock]
    return LockChanges(
        numbers, events.index.to_numpy()[numbers], events["seq"].to_numpy(dtype=np.int64)[numbers],
        events["time"].to_numpy(dtype=float)[numbers], events[ACT].to_numpy(dtype=np.int64)[numbers], lock,
        events[IN_ISR].to_numpy(dtype=bool)[numbers], is_value(events["role"], Role.ACQUIRE.value)[numbers], following,
    )  # fmt: skip


def last_of_each(*keys: np.ndarray) -> np.ndarray:
    """Per element, whether it is the last one with its combination of `keys` (integer arrays)."""
    combination = numbered(list(keys))
    last = np.zeros(len(combination), dtype=bool)
    last[len(combination) - 1 - np.unique(combination[::-1], return_index=True)[1]] = True
    return last


def lock_rows_to_carry(ctx: Context) -> np.ndarray:
    """Positions of the rows the next batch needs to go on with the locks: per lock its last
    change (the holder), per ISR activation not seen to return and lock its last change, and
    per context its last mutex call or return (whether a call that follows is nested)."""
    if "lock_carry" not in ctx.shared:
        events = lock_events(ctx)
        carry = _last_calls(ctx)
        if len(events):
            changes = lock_changes(ctx)
            last_changes = changes.positions[last_of_each(changes.lock)]
            in_isr = np.flatnonzero(changes.in_isr)
            open_isr = in_isr[~ctx.is_closed(pd.Series(changes.act[in_isr])).to_numpy(dtype=bool)]
            open_changes = changes.positions[open_isr[last_of_each(changes.act[open_isr], changes.lock[open_isr])]]
            carry = np.unique(np.concatenate((carry, last_changes, open_changes)).astype(np.int64))
        carried_events = among_sorted(events.index.to_numpy(), carry)
        ctx.shared_with_next[CARRIED_EVENTS] = frozenset(events["seq"].to_numpy(dtype=np.int64)[carried_events].tolist())
        ctx.shared["lock_carry"] = carry
    return ctx.shared["lock_carry"]  # type: ignore[return-value]


def _last_calls(ctx: Context) -> np.ndarray:
    """Per task, and per exception's last activation (the ones before are over), the position of
    its last mutex call or return row."""
    t = ctx.timeline
    rows = ctx.positions_of(event=(Event.CALL.value, Event.RETURN.value), kind=MUTEX_KINDS)
    rows = rows[last_of_each(t.act[rows])]  # each context's last, in order
    act, ipsr = t.act[rows], t.ipsr[rows]
    isr = np.flatnonzero(ipsr > 0)
    exceptions, exception_of = np.unique(ipsr[isr], return_inverse=True)
    latest = np.full(len(exceptions), np.iinfo(np.int64).min)
    np.maximum.at(latest, exception_of, act[isr])  # each exception's latest activation
    over = np.zeros(len(rows), dtype=bool)
    over[isr] = act[isr] != latest[exception_of]
    return rows[~over]


def _locks(events: pd.DataFrame) -> tuple[np.ndarray, pd.api.extensions.ExtensionArray, pd.api.extensions.ExtensionArray]:
    """Per event: a number per lock (-1 for none), the lock (`kind:0xaddress`, or `kind:symbol`
    without an address) and its name; worked out once per distinct (kind, address, symbol)."""
    combination = np.zeros(len(events), dtype=np.int64)
    for column in ("kind", "address", "symbol"):  # missing values included
        codes, values = pd.factorize(events[column])
        combination = combination * (len(values) + 1) + codes + 1
    combination = pd.factorize(combination)[0]
    first = np.unique(combination, return_index=True)[1]  # per distinct combination, in order of first appearance
    distinct = (events[column].array.take(first).to_numpy(dtype=object, na_value=None) for column in ("kind", "address", "symbol"))
    locks, names = [], []
    for kind, address, symbol in zip(*distinct, strict=True):
        hex_address = None if address is None else f"0x{int(address):x}"
        lock_object = hex_address if hex_address is not None else symbol
        locks.append(None if lock_object is None or kind is None else f"{kind}:{lock_object}")
        if kind == Kind.LOCK.value:  # a HAL lock by its field, a mutex by its function and object
            names.append(symbol if symbol is not None else hex_address)
        else:
            names.append(f"{symbol}({hex_address})" if symbol is not None and hex_address is not None else hex_address)
    lock = pd.array(locks, dtype="string")
    lock_code = pd.factorize(lock)[0][combination]
    return lock_code, lock.take(combination), pd.array(names, dtype="string").take(combination)


def contended(events: pd.DataFrame) -> pd.Series:
    """Events where an ISR tests or takes a lock another context holds (or reads it locked
    with no take in the trace: held by a context the capture did not see)."""
    is_test = is_value(events["role"], Role.TEST.value)
    tries = events[IN_ISR].to_numpy(dtype=bool) & is_value(events["role"], (Role.TEST.value, Role.ACQUIRE.value))
    other_act = (events["held_act"] != events[ACT]).to_numpy(dtype=bool, na_value=False)
    held_by_other = is_value(events["held_role"], Role.ACQUIRE.value) & other_act
    read_locked = is_test & (events["value"] != 0).to_numpy(dtype=bool, na_value=False) & events["held_role"].isna().to_numpy()
    return pd.Series(tries & (held_by_other | read_locked), index=events.index)


def contended_events(ctx: Context) -> np.ndarray:
    """`contended` of each lock event of the context, in order (worked out once per context)."""
    return ctx.once("lock_contended", _contended_events)


def _contended_events(ctx: Context) -> np.ndarray:
    events = lock_events(ctx)
    return contended(events).to_numpy(dtype=bool) if not events.empty else np.zeros(0, dtype=bool)


def holder_events(ctx: Context) -> np.ndarray:
    """Per lock event of the context, the number (0, 1, …) of the event at its `held_row`,
    whose context held the lock then; -1 where nobody did (worked out once per context)."""
    return ctx.once("lock_holder_events", _holder_events)


def _holder_events(ctx: Context) -> np.ndarray:
    events = lock_events(ctx)
    if events.empty:
        return np.zeros(0, dtype=np.int64)
    held_row = events["held_row"].array
    numbers = np.searchsorted(events.index.to_numpy(), held_row.to_numpy(dtype=np.int64, na_value=-1))  # in order of position
    return np.where(held_row.isna(), -1, numbers)


def holder_labels(ctx: Context, events: pd.DataFrame) -> pd.Series:
    """The label of the context that held the lock at each of `events` (lock events of this
    context; NA where nobody did), worked out once per holding event."""
    every = lock_events(ctx)
    held = holder_events(ctx)[np.searchsorted(every.index.to_numpy(), events.index.to_numpy())]
    holders, at = np.unique(held, return_inverse=True)
    labels = ctx.labels(every[LABEL_COLUMNS].iloc[holders[holders >= 0]]).array
    at -= int(len(holders) > 0 and holders[0] < 0)  # -1: nobody
    return pd.Series(labels.take(at, allow_fill=True), index=events.index)


def watched_while_held(ctx: Context, symbols: pd.Series, since: pd.Series, until: pd.Series) -> np.ndarray:
    """Per take (the probe symbol that took it, when, and until when the lock was held): whether
    its site, with the releases planned alongside it, stayed armed all that time. A rotated
    capture that disarmed it meanwhile cannot tell a release it missed from none. (In a batch,
    `ctx.coverage` is the whole trace's.)"""
    coverage = ctx.coverage
    if coverage is None or symbols.empty:
        return np.ones(len(symbols), dtype=bool)
    return np.array([
        coverage.armed_throughout({str(symbol)}, float(start), float(end))
        for symbol, start, end in zip(symbols, since, until, strict=True)
    ], dtype=bool)  # fmt: skip
