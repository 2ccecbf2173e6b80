"""isr-priority-violation: a FromISR call from an ISR more urgent than the RTOS's syscall ceiling.

Why it is bad:
    The RTOS masks interrupts up to configMAX_SYSCALL_INTERRUPT_PRIORITY (BASEPRI) in its critical
    sections. An ISR more urgent than that ceiling (numerically lower priority) is never masked,
    so its FromISR call can run in the middle of the kernel's own list updates: the ready lists
    or a queue get corrupted, intermittently, long after the fact.

Example:
    A timer IRQ left at priority 0 (the reset value) calls xQueueSendFromISR while
    configMAX_SYSCALL_INTERRUPT_PRIORITY is 5 << (8 - 4) = 0x50.

Instead:
    Give every ISR that calls the RTOS a priority numerically at or above the ceiling
    (NVIC_SetPriority(irq, 5..15) here); keep only ISRs that never call the RTOS above it.
"""

from __future__ import annotations

import pandas as pd

from irqmon.analysis.common import IsrCallStream, at, isr_calls, where
from irqmon.analysis.context import EXC_NAME, PRIO, Context
from irqmon.analysis.findings import HIT_COLUMNS, Group, SiteGroups
from irqmon.analysis.registry import Rule
from irqmon.schema import Event, Kind

RULE = Rule(
    id="isr-priority-violation", severity="error", summary="FromISR call from an ISR above the syscall priority ceiling",
    needs=(Kind.RTOS_FROMISR.value,),
)
CEILING_SYMBOL = "max_syscall_priority"


def ceiling_raw(ctx: Context) -> int | None:
    """The raw BASEPRI ceiling: the option, else the trace's `config` row."""
    if ctx.config.max_syscall_priority is not None:
        return ctx.config.max_syscall_priority
    if ctx.before is not None:
        return ctx.before.facts.config_value(CEILING_SYMBOL)
    rows = ctx.select(event=Event.CONFIG.value)
    values = rows.loc[rows["symbol"] == CEILING_SYMBOL, "value"].dropna()
    return int(values.iloc[-1]) if len(values) else None


def stream() -> IsrCallStream:
    return IsrCallStream(_hits, SiteGroups(RULE, site=(EXC_NAME, "symbol", "source"), title=_title, message=_message, evidence=_evidence))


def _hits(ctx: Context) -> pd.DataFrame:
    raw = ceiling_raw(ctx)
    if raw is None or raw == 0 or ctx.priority_bits is None:
        return pd.DataFrame()  # nothing to compare with: no ceiling, or no way to convert it
    ceiling = ctx.logical_priority(raw)
    calls = isr_calls(ctx, Kind.RTOS_FROMISR.value, columns=[PRIO])
    above = calls.index[(calls[PRIO] < ceiling).fillna(False).to_numpy(dtype=bool)]
    return ctx.rows_at(above.to_numpy(), [*HIT_COLUMNS, "source"]).assign(ceiling=ceiling, ceiling_raw=raw)


def _title(first: pd.Series, group: Group) -> str:
    return f"{first['symbol']} from {where(first)}, above the syscall ceiling {first['ceiling']}"


def _message(first: pd.Series, group: Group) -> str:
    return (
        f"{first['context']} called {first['symbol']}{at(first)} ({group.count} time(s)) but its priority "
        f"{first[PRIO]} is more urgent than configMAX_SYSCALL_INTERRUPT_PRIORITY {first['ceiling']} "
        f"(BASEPRI {first['ceiling_raw']:#x}); the kernel's critical sections do not mask it."
    )


def _evidence(first: pd.Series, group: Group) -> dict:
    return {"priority": first[PRIO], "ceiling": first["ceiling"], "ceiling_raw": first["ceiling_raw"]}
