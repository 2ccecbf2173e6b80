"""mutex-in-isr: a mutex or semaphore take, or another blocking call, made from an interrupt handler.

Why it is bad:
    An ISR cannot block: if the mutex is held, the RTOS either asserts, returns an error the
    caller rarely checks, or corrupts its scheduler state. A mutex also has an owner task and
    priority inheritance, neither of which means anything in handler mode.

Example:
    a HAL callback that takes the mutex guarding a shared buffer (osMutexAcquire, xSemaphoreTake)
    from TIM2_IRQHandler; an ISR calling osDelay/vTaskDelay to wait for a flag. A take inside a
    heap call of the ISR (malloc's heap lock, which an RTOS port implements with a mutex, seed 000)
    is listed under that malloc-in-isr finding (`inside`) while malloc-in-isr runs.

Instead:
    Use the ISR-safe API (xSemaphoreGiveFromISR, queues with the FromISR calls, task
    notifications) and do the blocking work in a task the ISR wakes.
"""

from __future__ import annotations

import pandas as pd

from irqmon.analysis.common import IsrCallStream, at, calls_inside, frames_text, inside_isr_heap_calls, isr_calls, smallest, where
from irqmon.analysis.context import EXC_NAME, Context
from irqmon.analysis.findings import HIT_COLUMNS, Group, SiteGroups
from irqmon.analysis.registry import Rule
from irqmon.schema import Kind, Role

RULE = Rule(
    id="mutex-in-isr", severity="error", summary="mutex/semaphore take or blocking call from an ISR",
    needs=(Kind.MUTEX.value, Kind.BLOCKING.value),
)


def stream() -> IsrCallStream:
    return IsrCallStream(
        _hits,
        SiteGroups(RULE, site=(EXC_NAME, "symbol", "source"), title=_title, message=_message, evidence=_evidence,
                   collect=lambda values, group: smallest(values, "objects", group["address"].dropna()), inside=calls_inside),
    )  # fmt: skip


def _hits(ctx: Context) -> pd.DataFrame:
    columns = [*HIT_COLUMNS, "source", "address"]
    takes = isr_calls(ctx, Kind.MUTEX.value, Role.ACQUIRE.value, columns)
    blocking = isr_calls(ctx, Kind.BLOCKING.value, columns=columns)
    hits = pd.concat([takes, blocking])
    return hits[~inside_isr_heap_calls(ctx, hits)] if ctx.reports("malloc-in-isr") else hits


def _title(first: pd.Series, group: Group) -> str:
    verb = "blocking call" if first["kind"] == Kind.BLOCKING.value else "mutex take"
    return f"{verb} {first['symbol']} from {where(first)}"


def _message(first: pd.Series, group: Group) -> str:
    chain = frames_text(first)
    path = f" Call path: {chain}." if chain else ""
    return f"{first['symbol']} ran in {first['context']}{at(first)}, {group.count} time(s).{path}"


def _evidence(first: pd.Series, group: Group) -> dict:
    return {
        "kind": first["kind"], "handler": first["handler"], "objects": [hex(a) for a in group.values.get("objects", [])],
        "inside": sorted(group.values["inside"]),
    }  # fmt: skip
