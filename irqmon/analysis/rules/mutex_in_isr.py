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

from irqmon.analysis.common import at, calls_inside, frames_text, inside_isr_heap_calls, isr_calls, where
from irqmon.analysis.context import EXC_NAME, Context
from irqmon.analysis.findings import Finding, group_hits
from irqmon.analysis.registry import Rule
from irqmon.schema import Kind, Role

RULE = Rule(
    id="mutex-in-isr", severity="error", summary="mutex/semaphore take or blocking call from an ISR",
    needs=(Kind.MUTEX.value, Kind.BLOCKING.value),
)


def check(ctx: Context) -> list[Finding]:
    takes = isr_calls(ctx, Kind.MUTEX.value, Role.ACQUIRE.value)
    blocking = isr_calls(ctx, Kind.BLOCKING.value)
    hits = pd.concat([takes, blocking])
    if ctx.reports("malloc-in-isr"):
        hits = hits[~inside_isr_heap_calls(ctx, hits)]
    return group_hits(RULE, ctx, hits, site=(EXC_NAME, "symbol", "source"), title=_title, message=_message,
                      evidence=lambda first, group: _evidence(first, group) | {"inside": calls_inside(ctx, group)})  # fmt: skip


def _title(first: pd.Series, group: pd.DataFrame) -> str:
    verb = "blocking call" if first["kind"] == Kind.BLOCKING.value else "mutex take"
    return f"{verb} {first['symbol']} from {where(first)}"


def _message(first: pd.Series, group: pd.DataFrame) -> str:
    chain = frames_text(first)
    path = f" Call path: {chain}." if chain else ""
    return f"{first['symbol']} ran in {first['context']}{at(first)}, {len(group)} time(s).{path}"


def _evidence(first: pd.Series, group: pd.DataFrame) -> dict:
    objects = sorted({int(a) for a in group["address"].dropna()})
    return {"kind": first["kind"], "handler": first["handler"], "objects": [hex(a) for a in objects][:16]}
