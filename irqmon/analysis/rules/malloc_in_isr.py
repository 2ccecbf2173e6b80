"""malloc-in-isr: a heap function (malloc, free, realloc, …) called from an interrupt handler.

Why it is bad:
    The heap is not reentrant. Without an RTOS nothing protects it, so an ISR that allocates while
    thread mode is inside malloc corrupts the free list. With an RTOS the heap lock is a mutex
    (or a scheduler suspension), which an ISR may not take and which does not stop interrupts
    anyway. The allocation can also fail or take unbounded time inside the handler.

Example:
    ST's USB device stack: OTG_FS_IRQHandler -> HAL_PCD_IRQHandler -> … -> USBD_SetClassConfig ->
    USBD_CDC_Init -> USBD_malloc -> malloc, and free() on de-initialisation (seed 000).

Instead:
    Allocate at start-up (a static buffer, or `USBD_static_malloc`), or hand the work to a task
    (queue/deferred call) that may allocate; use a fixed-size pool with interrupt-safe operations
    if an ISR must obtain memory.
"""

from __future__ import annotations

import pandas as pd

from irqmon.analysis.common import IsrCallStream, at, calls_inside, frames_text, isr_calls, smallest, where
from irqmon.analysis.findings import HIT_COLUMNS, Group, SiteGroups, frame_list
from irqmon.analysis.context import EXC_NAME
from irqmon.analysis.registry import Rule
from irqmon.schema import Kind

RULE = Rule(
    id="malloc-in-isr", severity="error", summary="heap function called from an interrupt handler",
    needs=(Kind.HEAP.value,),
)


def stream() -> IsrCallStream:
    return IsrCallStream(
        lambda ctx: isr_calls(ctx, Kind.HEAP.value, columns=[*HIT_COLUMNS, "source", "size"]),
        SiteGroups(RULE, site=(EXC_NAME, "symbol", "source"), title=_title, message=_message, evidence=_evidence,
                   collect=lambda values, group: smallest(values, "sizes", group["size"].dropna()), inside=calls_inside),
    )  # fmt: skip


def _title(first: pd.Series, group: Group) -> str:
    return f"{first['symbol']} called from {where(first)}"


def _message(first: pd.Series, group: Group) -> str:
    chain = frames_text(first)
    path = f" Call path: {chain}." if chain else ""
    inside = sorted(group.values["inside"])
    return (
        f"{first['symbol']} ({first['role']}) ran in {first['context']}{at(first)}, {group.count} time(s).{path}"
        + (f" Inside it: {', '.join(inside)}." if inside else "")
    )


def _evidence(first: pd.Series, group: Group) -> dict:
    return {
        "role": first["role"],
        "handler": first["handler"],
        "call_chain": frame_list(first["callpath"] if isinstance(first["callpath"], str) else None, own=True),
        "sizes": group.values.get("sizes", []),
        "inside": sorted(group.values["inside"]),
    }
