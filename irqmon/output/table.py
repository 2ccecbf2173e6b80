"""A rich table of findings for the terminal."""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from irqmon.analysis import Finding
from irqmon.output.terminal import console as plain_console
from irqmon.output.terminal import plain
from irqmon.tracefile import Trace

if TYPE_CHECKING:
    from irqmon.fleet.merge import Fleet, Sighting

STYLES = {"error": "bold red", "warning": "yellow", "note": "cyan"}


BUILD_ID_SHOWN = 12  # leading hex digits of a build id in the fleet table


def render(findings: list[Finding], trace: Trace, file: IO[str], color: str = "auto") -> None:
    """The findings as a table as wide as the terminal (PIPE_WIDTH columns into a file or a pipe);
    `color`: auto (a terminal, unless NO_COLOR is set), always or never."""
    console = _console(file, color)
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


def render_fleet(fleet: Fleet, file: IO[str], color: str = "auto") -> None:
    """The merged findings of many traces: rule, site, in how many traces and builds, first and last seen."""
    console = _console(file, color)
    failed = f", {len(fleet.failed)} failed" if fleet.failed else ""
    traces = f"{len(fleet.results)} traces ({len(fleet.analysed)} analysed{failed}, {len(fleet.builds)} build(s))"
    if not fleet.findings:
        console.print(f"{traces}: no findings")
        return
    table = Table(title=f"{traces}: {len(fleet.findings)} finding(s)", show_lines=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("rule", overflow="fold")
    table.add_column("site", ratio=4, overflow="fold")
    table.add_column("traces", justify="right", no_wrap=True)
    table.add_column("builds", overflow="fold")
    table.add_column("first seen", ratio=2, overflow="fold")
    table.add_column("last seen", ratio=2, overflow="fold")
    for m in fleet.findings:
        f = m.finding
        site = f.title.removeprefix(f"{f.rule}: ")
        table.add_row(
            Text(plain(m.severity), style=STYLES.get(m.severity, "")),
            plain(f.rule),
            Text.assemble((plain(site), "bold"), "\n", plain(f.source or "")),
            f"{len(m.traces)}/{len(fleet.analysed)}",
            plain("\n".join(build[:BUILD_ID_SHOWN] for build in m.builds)),
            _sighting(m.first_seen),
            _sighting(m.last_seen),
        )
    console.print(table)


def _sighting(sighting: Sighting) -> str:
    return plain(f"{sighting.trace}\n{sighting.seen_at}")


def _console(file: IO[str], color: str) -> Console:
    return plain_console(
        file=file, force_terminal=True if color == "always" else None,
        no_color=color == "never" or (color == "auto" and bool(os.environ.get("NO_COLOR"))),
    )  # fmt: skip
