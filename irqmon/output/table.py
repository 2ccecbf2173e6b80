"""A rich table of findings for the terminal."""

from __future__ import annotations

from typing import IO

from rich.console import Console
from rich.table import Table

from irqmon.analysis import Finding
from irqmon.tracefile import Trace

STYLES = {"error": "bold red", "warning": "yellow", "note": "cyan"}


def render(findings: list[Finding], trace: Trace, file: IO[str]) -> None:
    console = Console(file=file, width=160 if not file.isatty() else None, highlight=False)
    if not findings:
        console.print(f"{trace.path}: no findings ({len(trace.frame)} rows)")
        return
    table = Table(title=f"{trace.path}: {len(findings)} finding(s)", show_lines=True)
    for column in ("severity", "finding", "count", "contexts", "source"):
        table.add_column(column, overflow="fold")
    for f in findings:
        table.add_row(
            f"[{STYLES.get(f.severity, '')}]{f.severity}[/]",
            f"[bold]{f.title}[/]\n{f.message}",
            str(f.count),
            "\n".join(f.contexts),
            f.source or "",
        )
    console.print(table)
