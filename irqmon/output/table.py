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
        console.print(f"{trace.path}: no findings ({trace.rows} rows)")
        return
    table = Table(title=f"{trace.path}: {len(findings)} finding(s)", show_lines=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("finding", ratio=5, overflow="fold")
    table.add_column("count", justify="right")
    table.add_column("contexts", ratio=2, overflow="fold")
    table.add_column("source", ratio=2, overflow="fold")
    for f in findings:
        table.add_row(
            f"[{STYLES.get(f.severity, '')}]{f.severity}[/]",
            f"[bold]{f.title}[/]\n{f.message}",
            str(f.count),
            "\n".join(f.contexts),
            f.source or "",
        )
    console.print(table)
