"""mutex-in-isr: a mutex or semaphore take, or another blocking call, made from an interrupt handler.

Why it is bad:
    An ISR cannot block: if the mutex is held, the RTOS either asserts, returns an error the
    caller rarely checks, or corrupts its scheduler state. A mutex also has an owner task and
    priority inheritance, neither of which means anything in handler mode.

Example:
    malloc called from OTG_FS_IRQHandler takes the heap lock, which the RTOS port implements with
    osMutexAcquire (seed 000); an ISR calling osDelay/vTaskDelay to wait for a flag.

Instead:
    Use the ISR-safe API (xSemaphoreGiveFromISR, queues with the FromISR calls, task
    notifications) and do the blocking work in a task the ISR wakes.
"""

from __future__ import annotations

import pandas as pd

from irqmon.analysis.common import at, frames_text, isr_calls, where
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
    return group_hits(RULE, ctx, hits, site=(EXC_NAME, "symbol", "source"), title=_title, message=_message, evidence=_evidence)


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
