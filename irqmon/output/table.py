"""A rich table of findings for the terminal."""

from __future__ import annotations

from typing import IO

from rich.table import Table
from rich.text import Text

from irqmon.analysis import Finding
from irqmon.output.terminal import console as plain_console
from irqmon.output.terminal import plain
from irqmon.tracefile import Trace

STYLES = {"error": "bold red", "warning": "yellow", "note": "cyan"}


def render(findings: list[Finding], trace: Trace, file: IO[str]) -> None:
    console = plain_console(file=file, width=160 if not file.isatty() else None)
    if not findings:
        console.print(f"{plain(trace.path)}: no findings ({trace.rows} rows)")
        return
    table = Table(title=f"{plain(trace.path)}: {len(findings)} finding(s)", show_lines=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("finding", ratio=5, overflow="fold")
    table.add_column("count", justify="right")
    table.add_column("contexts", ratio=2, overflow="fold")
    table.add_column("source", ratio=2, overflow="fold")
    for f in findings:
        table.add_row(
            Text(plain(f.severity), style=STYLES.get(f.severity, "")),
            Text.assemble((plain(f.title), "bold"), "\n", plain(f.message)),
            str(f.count),
            plain("\n".join(f.contexts)),
            plain(f.source or ""),
        )
    console.print(table)
