"""rtos-api-misuse: a task-level RTOS call (not a FromISR variant) made from an interrupt handler.

Why it is bad:
    Task-level calls assume a task context: they may block, switch tasks, or keep state (a
    critical-section nesting count) per task. From an ISR they corrupt the scheduler's lists or
    its nesting count, or trip configASSERT; taskENTER_CRITICAL in an ISR leaves BASEPRI and
    uxCriticalNesting out of step with the interrupted task.

Example:
    xQueueSend instead of xQueueSendFromISR in a UART handler; vPortEnterCritical called from a
    HAL callback that runs in the DMA interrupt.

Instead:
    Use the FromISR variants (xQueueSendFromISR, xTaskNotifyFromISR, …) with
    portYIELD_FROM_ISR, and taskENTER_CRITICAL_FROM_ISR / taskEXIT_CRITICAL_FROM_ISR.
"""

from __future__ import annotations

import pandas as pd

from irqmon.analysis.common import IsrCallStream, at, calls_inside, isr_calls, outer_calls_only, where
from irqmon.analysis.context import EXC_NAME, Context
from irqmon.analysis.findings import HIT_COLUMNS, Group, SiteGroups
from irqmon.analysis.registry import Rule
from irqmon.schema import Kind, Role

RULE = Rule(
    id="rtos-api-misuse", severity="error", summary="task-level RTOS API called from an ISR",
    needs=(Kind.RTOS_API.value, Kind.CRITICAL_SECTION.value),
)


def stream() -> IsrCallStream:
    """Calls the kernel makes inside another probed call (the critical section inside an ISR's
    xQueueSemaphoreTake) are that call's evidence, under its own finding."""
    return IsrCallStream(
        _hits,
        SiteGroups(RULE, site=(EXC_NAME, "symbol", "source"), title=_title, message=_message,
                   evidence=lambda first, group: {"inside": sorted(group.values["inside"])}, inside=calls_inside),
    )  # fmt: skip


def _hits(ctx: Context) -> pd.DataFrame:
    columns = [*HIT_COLUMNS, "source"]
    api = isr_calls(ctx, Kind.RTOS_API.value, columns=columns)
    critical = isr_calls(ctx, Kind.CRITICAL_SECTION.value, (Role.ENTER.value, Role.EXIT.value), columns)
    return outer_calls_only(ctx, pd.concat([api, critical]))


def _title(first: pd.Series, group: Group) -> str:
    return f"{first['symbol']} called from {where(first)}"


def _message(first: pd.Series, group: Group) -> str:
    what = "task-level critical section" if first["kind"] == Kind.CRITICAL_SECTION.value else "task-level RTOS call"
    return f"{first['symbol']} is a {what}; it ran in {first['context']}{at(first)}, {group.count} time(s)."
