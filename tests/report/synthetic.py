"""Traces built in memory with numpy: from a few hand-placed IRQ rows to a million of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from irqmon import schema
from irqmon.tracefile import Trace

METADATA = {"schema": "1", "target": "synthetic", "priority_bits": "4"}


def frame(columns: dict[str, Any], rows: int) -> pd.DataFrame:
    """A trace frame with the schema's dtypes; columns not given are empty, None cells are missing."""
    data = {}
    for name, dtype in schema.COLUMNS.items():
        value = columns.get(name)
        if dtype == "string":
            cells = pa.nulls(rows, pa.string()) if value is None else pa.array(np.broadcast_to(np.asarray(value, dtype=object), rows), type=pa.string())
            data[name] = pd.array(cells, dtype=pd.StringDtype("pyarrow"))
        elif dtype == "float64":
            data[name] = np.asarray(value, dtype=float)
        elif value is None:
            data[name] = pd.arrays.IntegerArray(np.zeros(rows, dtype=np.int64), np.ones(rows, dtype=bool))
        else:
            cells = pd.array(np.broadcast_to(np.asarray(value, dtype=object), rows), dtype="Int64")
            data[name] = cells if dtype == "Int64" else cells.to_numpy(dtype=np.int64)
    out = pd.DataFrame(data)
    out["seq"] = np.arange(rows, dtype=np.int64)
    return out


def irq_trace(events: list[tuple[float, str, int, str, int]], path: Path = Path("synthetic.csv")) -> Trace:
    """(time, event, ipsr, exception, priority) rows: irq_enter/irq_exit only."""
    time, event, ipsr, name, priority = (list(c) for c in zip(*events))
    columns = {"time": time, "event": event, "ipsr": ipsr, "exception": name, "priority": priority, "kind": "irq", "probe": "qemu"}
    return Trace(frame(columns, len(events)), dict(METADATA), path)


def million_row_trace(path: Path = Path("million.csv")) -> tuple[Trace, dict[str, float]]:
    """250,000 TIM2 activations (10 µs every 40 µs), every other one preempted by EXTI0 for 3 µs,
    and a BASEPRI write in thread mode between them: 1,000,000 rows. Returns the expected totals."""
    period, n = 40e-6, 250_000
    start = np.arange(n) * period
    nested = np.arange(0, n, 2)
    times = np.concatenate([start, start + 10e-6, start[nested] + 2e-6, start[nested] + 5e-6, start + 20e-6])
    events = np.concatenate([np.full(n, "irq_enter"), np.full(n, "irq_exit"), np.full(len(nested), "irq_enter"),
                             np.full(len(nested), "irq_exit"), np.full(n, "mask")])  # fmt: skip
    ipsr = np.concatenate([np.full(2 * n, 44), np.full(2 * len(nested), 22), np.zeros(n, dtype=np.int64)])
    names = np.where(ipsr == 44, "TIM2", np.where(ipsr == 22, "EXTI0", "Thread"))
    priority = np.where(ipsr == 44, 5, 1)
    order = np.argsort(times, kind="stable")
    rows = len(times)
    mask = events[order] == "mask"
    basepri = np.where(np.arange(rows) % 4 < 2, 0x50, 0)
    columns = {
        "time": times[order], "event": events[order], "exception": names[order],
        "kind": np.where(mask, "critical-section", "irq"), "symbol": np.where(mask, "basepri", None),
        "role": np.where(mask, "write", None),
    }  # fmt: skip
    out = frame(columns, rows)
    out["ipsr"] = pd.arrays.IntegerArray(ipsr[order], np.zeros(rows, dtype=bool))
    out["priority"] = pd.arrays.IntegerArray(priority[order], mask)
    out["basepri"] = pd.arrays.IntegerArray(basepri, ~mask)
    expected = {
        "rows": rows, "tim2_count": n, "exti0_count": len(nested), "tim2_total": n * 10e-6,
        "tim2_self": n * 10e-6 - len(nested) * 3e-6, "exti0_total": len(nested) * 3e-6,
    }  # fmt: skip
    return Trace(out, dict(METADATA), path), expected
