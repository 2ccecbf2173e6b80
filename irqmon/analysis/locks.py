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

import numpy as np
import pandas as pd

from irqmon.analysis.context import ACT, IN_ISR, PRIO, Context
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
    # send) whose object the capture found to be a mutex.
    mutex_rows = ctx.select(event=(Event.CALL.value, Event.RETURN.value), kind=MUTEX_KINDS, columns=["event", "role", "symbol", "address", ACT])
    mutex = ctx.outermost_calls(mutex_rows, MUTEX_KINDS)
    mutex = mutex[mutex["role"].isin(roles).fillna(False).astype(bool) & mutex["address"].notna()]
    # A take that may block owns the mutex once it returns: its call is only a try.
    is_take_return = (mutex_rows["event"] == Event.RETURN.value) & (mutex_rows["role"] == Role.ACQUIRE.value)
    take_returns = mutex_rows[is_take_return.fillna(False).astype(bool) & mutex_rows["address"].notna()]
    positions = np.sort(np.r_[hal, mutex.index.to_numpy(), take_returns.index.to_numpy()])
    if ctx.carried:  # the carried rows' events are those their batch found
        found = ctx.before.shared.get(CARRIED_EVENTS, frozenset())  # type: ignore[union-attr]
        carried = np.arange(ctx.carried)
        seqs = ctx.rows_at(carried, ["seq"])["seq"].to_numpy(dtype=np.int64)
        positions = np.r_[carried[np.isin(seqs, list(found))], positions[positions >= ctx.carried]]
    events = ctx.rows_at(positions, EVENT_COLUMNS)  # in order of position, so of seq (disjoint rows)
    calls = mutex_rows.index[(mutex_rows["event"] == Event.CALL.value).to_numpy(dtype=bool)]
    tries = events.index.isin(calls) & events["symbol"].isin(_taken_on_return(ctx, take_returns)).to_numpy(dtype=bool)
    events.loc[tries & (events["role"] == Role.ACQUIRE.value).to_numpy(dtype=bool), "role"] = Role.TEST.value
    events["kind"] = events["kind"].where(events["kind"] == Kind.LOCK.value, Kind.MUTEX.value)
    if events.empty:
        return events.assign(**{LOCK: pd.Series(dtype="string"), LOCK_NAME: pd.Series(dtype="string")})
    lock_code, events[LOCK], events[LOCK_NAME] = _locks(events)
    known = events[LOCK].notna().to_numpy()
    if not known.all():
        events, lock_code = events[known], lock_code[known]
    # A release that writes the unlocked value over the unlocked value changes nothing.
    redundant = (events["role"] == Role.RELEASE.value) & (events["old_value"] == 0)
    events[STATE] = events["role"].isin([Role.ACQUIRE.value, Role.RELEASE.value]) & ~redundant.fillna(False)
    events[STATE] = events[STATE].fillna(False).astype(bool)
    events["row"] = events.index
    held = _last_change_before(lock_code, events[STATE].to_numpy(dtype=bool))
    nobody = held < 0
    events["held_role"] = events["role"].array.take(held, allow_fill=True)
    events["held_act"] = pd.arrays.IntegerArray(events[ACT].to_numpy(dtype=np.int64)[held], nobody)
    events["held_row"] = pd.arrays.IntegerArray(events.index.to_numpy(dtype=np.int64)[held], nobody)
    return events


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


def _taken_on_return(ctx: Context, take_returns: pd.DataFrame) -> set[str]:
    """The take functions whose returns the trace has (with the object they took)."""
    if ctx.before is None:
        return set(take_returns["symbol"].dropna().unique())
    return {
        s.symbol for s in ctx.before.facts.signatures
        if s.event == Event.RETURN.value and s.kind in MUTEX_KINDS and s.role == Role.ACQUIRE.value and s.has_address
        and s.symbol is not None
    }  # fmt: skip


def lock_rows_to_carry(ctx: Context) -> np.ndarray:
    """Positions of the rows the next batch needs to go on with the locks: per lock its last
    change (the holder), per ISR activation not seen to return and lock its last change, and
    per context its last mutex call or return (whether a call that follows is nested)."""
    if "lock_carry" not in ctx.shared:
        events = lock_events(ctx)
        carry = _last_calls(ctx)
        if len(events):
            state = events[events[STATE]]
            in_isr = state[state[IN_ISR].to_numpy(dtype=bool)]
            open_isr = in_isr[~ctx.is_closed(in_isr[ACT]).to_numpy(dtype=bool)]
            last_changes = state.groupby(LOCK, sort=False).tail(1).index.to_numpy()
            open_changes = open_isr.groupby([ACT, LOCK], sort=False).tail(1).index.to_numpy()
            carry = np.unique(np.r_[carry, last_changes, open_changes].astype(np.int64))
        carried_events = events.index[events.index.isin(carry)]
        ctx.shared_with_next[CARRIED_EVENTS] = frozenset(ctx.rows_at(carried_events.to_numpy(), ["seq"])["seq"].tolist())
        ctx.shared["lock_carry"] = carry
    return ctx.shared["lock_carry"]  # type: ignore[return-value]


def _last_calls(ctx: Context) -> np.ndarray:
    """Per task, and per exception's last activation (the ones before are over), the position of
    its last mutex call or return row."""
    calls = ctx.select(event=(Event.CALL.value, Event.RETURN.value), kind=MUTEX_KINDS, columns=["ipsr", ACT])
    last = calls.groupby(ACT, sort=False).tail(1)
    isr = last[(last["ipsr"] > 0).fillna(False).to_numpy(dtype=bool)]
    over = isr[ACT] != isr.groupby("ipsr")[ACT].transform("max")
    return np.sort(last.index[~last.index.isin(isr.index[over.to_numpy(dtype=bool)])].to_numpy())


def _locks(events: pd.DataFrame) -> tuple[np.ndarray, pd.arrays.ArrowStringArray, pd.arrays.ArrowStringArray]:
    """Per event: a number per lock, the lock (`kind:0xaddress`, or `kind:symbol` without an
    address) and its name; worked out once per distinct (kind, address, symbol)."""
    combination = np.zeros(len(events), dtype=np.int64)
    for column in ("kind", "address", "symbol"):  # missing values included
        codes, values = pd.factorize(events[column])
        combination = combination * (len(values) + 1) + codes + 1
    combination, distinct_values = pd.factorize(combination)
    distinct = events.iloc[np.unique(combination, return_index=True)[1]]  # in order of first appearance
    addresses = distinct["address"].dropna().unique()
    hex_of = pd.Series([f"0x{int(a):x}" for a in addresses], index=addresses, dtype="string")  # per object
    address = distinct["address"].map(hex_of).astype("string")
    lock = (distinct["kind"] + ":" + address.fillna(distinct["symbol"])).astype("string")
    name = distinct["symbol"].where(distinct["kind"] == Kind.LOCK.value, distinct["symbol"] + "(" + address + ")")
    name = name.fillna(address).astype("string")
    lock_code = pd.factorize(lock)[0][combination]
    return lock_code, lock.array.take(combination), name.array.take(combination)


def contended(events: pd.DataFrame) -> pd.Series:
    """Events where an ISR tests or takes a lock another context holds (or reads it locked
    with no take in the trace: held by a context the capture did not see)."""
    tries = events[IN_ISR] & events["role"].isin([Role.TEST.value, Role.ACQUIRE.value])
    held_by_other = (events["held_role"] == Role.ACQUIRE.value) & (events["held_act"] != events[ACT])
    read_locked = (events["role"] == Role.TEST.value) & (events["value"] != 0) & events["held_role"].isna()
    return (tries & (held_by_other.fillna(False) | read_locked.fillna(False))).astype(bool)


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
    labels = ctx.labels(every.iloc[holders[holders >= 0]]).array
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
