"""A rich table of findings for the terminal."""

from __future__ import annotations

import os
from typing import IO

from rich.table import Table
from rich.text import Text

from irqmon.analysis import Finding
from irqmon.output.terminal import console as plain_console
from irqmon.output.terminal import plain
from irqmon.tracefile import Trace

STYLES = {"error": "bold red", "warning": "yellow", "note": "cyan"}


def render(findings: list[Finding], trace: Trace, file: IO[str], color: str = "auto") -> None:
    """The findings as a table as wide as the terminal (PIPE_WIDTH columns into a file or a pipe);
    `color`: auto (a terminal, unless NO_COLOR is set), always or never."""
    console = plain_console(
        file=file, force_terminal=True if color == "always" else None,
        no_color=color == "never" or (color == "auto" and bool(os.environ.get("NO_COLOR"))),
    )  # fmt: skip
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
