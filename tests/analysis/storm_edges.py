"""Small traces whose batch edges fall where interrupt-storm must carry something over: inside a
storm run and its activations, in the lookahead window after its last entry, between a tick's
entries, across halted rows; with the traces' metadata."""

from __future__ import annotations

from typing import Any

from test_interrupt_storm import CORE_CLOCK, SYSTICK, halted_activations, systick_run
from test_lock_rules import storm_rows
from tracebuild import THREAD, irq_pair, isr

I2C = (31, "I2C1_EV", 3)
PATH = "I2C1_EV_IRQHandler;<exception>;main"
READ = {"event": "access", "kind": "shared-register", "access": "r", "role": "read", "symbol": "I2C1_ISR", "address": 0x40005418}
POLL = {"event": "call", "kind": "rtos-api", "role": "api", "symbol": "poll", **THREAD}


def _runs(starts: list[float], entries: int, period: float = 1e-3) -> list[dict[str, Any]]:
    """I2C1_EV runs of `entries` back to back from each of `starts` (thread mode between them):
    its call path only from the third entry on, a source line on every fifth; a last entry after
    each run (thread mode between) still inside the run's last windows."""
    rows: list[dict[str, Any]] = []
    for start in starts:
        for n in range(entries):
            enter, leave = irq_pair(*I2C, start + n * period, start + (n + 1) * period - 2e-6)
            inside = {**READ, **isr(*I2C), "time": enter["time"] + 1e-6}
            if n >= 2:
                inside["callpath"] = PATH
            if n % 5 == 0:
                inside["source"] = f"i2c.c:{100 + n}"
            rows += [enter, inside, leave]
        end = start + entries * period
        rows += [{**POLL, "time": end}, *irq_pair(*I2C, end + 1e-4, end + 2e-4), {**POLL, "time": end + 3e-4}]
    return rows


def _lock_storm_reading_twice() -> list[dict[str, Any]]:
    """The lock storm with the handler reading the held lock twice per entry (one activation met it)."""
    rows: list[dict[str, Any]] = []
    for row in storm_rows(60):
        rows.append(row)
        if row.get("kind") == "lock" and row["ipsr"] == 16 + I2C[0]:
            rows.append({**row, "time": row["time"] + 5e-7})
    return rows


def _tick_storm() -> list[dict[str, Any]]:
    """SysTick every 1 ms with thread mode between its entries, then 120 entries 0.1 ms apart back
    to back, then the 1 ms tick again: its period is the median time between its entries."""
    rows: list[dict[str, Any]] = []
    time = 0.0
    for count, period, thread in ((70, 1e-3, True), (120, 1e-4, False), (70, 1e-3, True)):
        for _ in range(count):
            rows += [{"event": "irq_enter", "time": time, **SYSTICK}, {"event": "irq_exit", "time": time + 0.99 * period, **SYSTICK}]
            if thread:
                rows.append({**POLL, "time": time + 0.995 * period})
            time += period
    return rows


def _starved_without_irq_rows() -> list[dict[str, Any]]:
    """No IRQ rows: I2C1_EV's activations from ipsr, separated only by a less urgent ISR."""
    return [row for _ in range(60) for row in ({**READ, **isr(*I2C), "callpath": PATH}, {**READ, **isr(28, "TIM2", 6)})]


TRACES: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "lock-storm": (storm_rows(60), {}),
    "lock-storm-reading-twice": (_lock_storm_reading_twice(), {}),
    "two-storms": (_runs([0.0, 1.0], 55), {}),
    "halted": (halted_activations(60, halt=0.2e-3), {}),
    "tick-median": (_tick_storm(), {}),
    "tick-configured": (systick_run(120, 1e-4, 167_999), CORE_CLOCK),
    "without-irq-rows": (_starved_without_irq_rows(), {}),
}
