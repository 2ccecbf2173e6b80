"""Lock events shared by the lock rules: who holds each lock at every take, test and release.

A lock is a HAL `Lock` byte (watched `access` rows, role test/acquire/release) or a mutex
(`call` rows of kind mutex, or RTOS calls the capture found working on a mutex, keyed by the
object in `address`). A take whose return is in the trace holds the mutex from its return on
(it may block first, while the holder runs); its call is a try (`test`). Each event row gets the lock's
last holder before it: `held_role` (acquire/release), `held_act`, `held_row` (index of that row).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from irqmon.analysis.context import ACT, IN_ISR, PRIO, Context
from irqmon.schema import Event, Kind, Role

LOCK = "lock"
LOCK_NAME = "lock_name"
STATE = "changes_state"
# The columns of the trace each lock event has: what the lock rules and their sites read (the
# events are many: `group_hits` takes the other columns only for each site's first hit).
EVENT_COLUMNS = ["seq", "time", "ipsr", "task", "kind", "role", "symbol", "address", "value", "old_value", "source", IN_ISR, PRIO, ACT]


def lock_events(ctx: Context) -> pd.DataFrame:
    """The lock events of the trace with their holders (computed once per analysis), with the
    trace's `EVENT_COLUMNS`."""
    if "lock_events" not in ctx.shared:
        ctx.shared["lock_events"] = _lock_events(ctx)
    return ctx.shared["lock_events"]  # type: ignore[return-value]


def _lock_events(ctx: Context) -> pd.DataFrame:
    roles = (Role.ACQUIRE.value, Role.RELEASE.value, Role.TEST.value)
    hal = ctx.positions_of(event=Event.ACCESS.value, kind=Kind.LOCK.value, role=roles)
    # RTOS calls whose row names a take or a give: a mutex's calls, and generic ones (a queue
    # send) whose object the capture found to be a mutex.
    kinds = (Kind.MUTEX.value, Kind.RTOS_API.value)
    mutex_rows = ctx.select(event=(Event.CALL.value, Event.RETURN.value), kind=kinds, columns=["event", "role", "symbol", "address", ACT])
    mutex = ctx.outermost_calls(mutex_rows)
    mutex = mutex[mutex["role"].isin(roles).fillna(False).astype(bool) & mutex["address"].notna()]
    # A take that may block owns the mutex once it returns: its call is only a try.
    is_take_return = (mutex_rows["event"] == Event.RETURN.value) & (mutex_rows["role"] == Role.ACQUIRE.value)
    take_returns = mutex_rows[is_take_return.fillna(False).astype(bool) & mutex_rows["address"].notna()]
    positions = np.sort(np.r_[hal, mutex.index.to_numpy(), take_returns.index.to_numpy()])
    events = ctx.rows_at(positions, EVENT_COLUMNS)  # in order of position, so of seq (disjoint rows)
    tries = events.index.isin(mutex.index) & events["symbol"].isin(take_returns["symbol"].unique()).to_numpy(dtype=bool)
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
    state = events[STATE]
    events["row"] = events.index
    for column, source in (("held_role", "role"), ("held_act", ACT), ("held_row", "row")):
        marked = events[source].where(state)
        events[column] = marked.groupby(lock_code, sort=False).shift()
        events[column] = events[column].groupby(lock_code, sort=False).ffill()
    events["held_act"] = events["held_act"].astype("Int64")
    events["held_row"] = events["held_row"].astype("Int64")
    return events


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


def holder_labels(ctx: Context, events: pd.DataFrame) -> pd.Series:
    """The label of the context that held the lock at each event (NA where nobody did)."""
    rows = events["held_row"].dropna().astype(np.int64)
    labels = ctx.labels_at(rows.to_numpy())
    return pd.Series(labels.to_numpy(), index=rows.index, dtype="string").reindex(events.index)


def watched_while_held(ctx: Context, symbols: pd.Series, since: pd.Series, until: pd.Series) -> np.ndarray:
    """Per take (the probe symbol that took it, when, and until when the lock was held): whether
    its site, with the releases planned alongside it, stayed armed all that time. A rotated
    capture that disarmed it meanwhile cannot tell a release it missed from none."""
    coverage = ctx.coverage
    if coverage is None or symbols.empty:
        return np.ones(len(symbols), dtype=bool)
    return np.array([
        coverage.armed_throughout({str(symbol)}, float(start), float(end))
        for symbol, start, end in zip(symbols, since, until, strict=True)
    ], dtype=bool)  # fmt: skip
