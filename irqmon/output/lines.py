"""One line per finding: `--format concise` (like a compiler or ruff) and `--format github`
(workflow commands that GitHub Actions shows as annotations on the pull request's files)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from irqmon.analysis import Finding
from irqmon.output.sarif import split_source
from irqmon.output.terminal import plain
from irqmon.tracefile import Trace

if TYPE_CHECKING:
    from irqmon.fleet.merge import Fleet, FleetFinding

GITHUB_LEVELS = {"error": "error", "warning": "warning", "note": "notice"}


def concise(findings: list[Finding], trace: Trace) -> str:
    """`path:line: rule-id title [severity]`, at the trace itself where there is no source line."""
    lines = []
    for f in findings:
        place = f.source if split_source(f.source) else str(trace.path)
        lines.append(plain(f"{place}: {f.rule} {f.title.removeprefix(f'{f.rule}: ')} [{f.severity}]"))
    return "".join(line + "\n" for line in lines)


def github(findings: list[Finding], trace: Trace) -> str:
    """`::error file=…,line=…,title=…::message` per finding (file and line only where known)."""
    lines = []
    for f in findings:
        properties = {"title": f"irqmon {f.rule}"}
        parsed = split_source(f.source)
        if parsed:
            properties = {"file": parsed[0], "line": str(parsed[1])} | properties
        fields = ",".join(f"{key}={_property(value)}" for key, value in properties.items())
        lines.append(f"::{GITHUB_LEVELS.get(f.severity, 'warning')} {fields}::{_data(f'{f.title}. {f.message}')}")
    return "".join(line + "\n" for line in lines)


def concise_fleet(fleet: Fleet) -> str:
    """One `path:line: rule-id title [severity] (seen in …)` line per merged finding."""
    lines = []
    for m in fleet.findings:
        f = m.finding
        place = f.source if split_source(f.source) else m.first_seen.trace
        lines.append(plain(f"{place}: {f.rule} {f.title.removeprefix(f'{f.rule}: ')} [{m.severity}] ({sightings(m, fleet)})"))
    return "".join(line + "\n" for line in lines)


def github_fleet(fleet: Fleet) -> str:
    """One workflow command per merged finding, its message saying where it was seen."""
    lines = []
    for m in fleet.findings:
        f = m.finding
        properties = {"title": f"irqmon {f.rule}"}
        parsed = split_source(f.source)
        if parsed:
            properties = {"file": parsed[0], "line": str(parsed[1])} | properties
        fields = ",".join(f"{key}={_property(value)}" for key, value in properties.items())
        text = f"{f.title}. {f.message} Seen in {sightings(m, fleet)}."
        lines.append(f"::{GITHUB_LEVELS.get(m.severity, 'warning')} {fields}::{_data(text)}")
    return "".join(line + "\n" for line in lines)


def sightings(merged: FleetFinding, fleet: Fleet) -> str:
    """`3 of 5 traces, 2 builds, first a.csv, last c.csv`."""
    builds = f", {len(merged.builds)} build{'s' if len(merged.builds) != 1 else ''}" if merged.builds else ""
    return (f"{len(merged.traces)} of {len(fleet.analysed)} traces{builds}, "
            f"first {merged.first_seen.trace}, last {merged.last_seen.trace}")  # fmt: skip


def _data(text: str) -> str:
    """A workflow command's message: `%`, CR and LF escaped (GitHub's toolkit does the same)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    """A workflow command's property value: as data, and `:` and `,` too."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")
