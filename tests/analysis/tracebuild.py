"""Small hand-built traces for the rule tests, written and read back through the real CSV code."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from irqmon.analysis import AnalysisConfig, Finding, analyze
from irqmon.tracefile import Trace, load_trace
from irqmon.tracewriter import TraceWriter

DEFAULT_METADATA = {"target": "test-mcu", "priority_bits": 4, "backend": "test"}
THREAD = {"ipsr": 0, "exception": "Thread", "primask": 0, "basepri": 0}


def isr(irq: int, name: str, priority: int | None) -> dict[str, Any]:
    """Columns of a row that runs in IRQ `irq`'s handler."""
    return {"ipsr": 16 + irq, "exception": name, "priority": priority, "primask": 0, "basepri": 0}


def task(name: str) -> dict[str, Any]:
    return {**THREAD, "task": name}


def write_trace(path: Path, rows: Iterable[dict[str, Any]], metadata: dict[str, Any] | None = None) -> Path:
    """Rows get `time` 1 ms apart unless they say otherwise."""
    with TraceWriter(path, {**DEFAULT_METADATA, **(metadata or {})}) as writer:
        for number, row in enumerate(rows):
            writer.write({"time": number * 1e-3, **row})
    return path


def load(tmp_path: Path, rows: Iterable[dict[str, Any]], metadata: dict[str, Any] | None = None) -> Trace:
    return load_trace(write_trace(tmp_path / "trace.csv", rows, metadata))


def run_rule(tmp_path: Path, rule: str, rows: Iterable[dict[str, Any]], metadata: dict[str, Any] | None = None,
             config: AnalysisConfig | None = None) -> list[Finding]:  # fmt: skip
    return analyze(load(tmp_path, rows, metadata), config, rules=[rule])


def irq_pair(irq: int, name: str, priority: int | None, enter: float, leave: float) -> list[dict[str, Any]]:
    """QEMU NVIC rows of one activation."""
    ctx = {"ipsr": 16 + irq, "exception": name, "priority": priority, "probe": "qemu", "kind": "irq"}
    return [{"event": "irq_enter", "time": enter, **ctx}, {"event": "irq_exit", "time": leave, **ctx}]
