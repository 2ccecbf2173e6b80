"""One line per finding: `--format concise` (like a compiler or ruff) and `--format github`
(workflow commands that GitHub Actions shows as annotations on the pull request's files)."""

from __future__ import annotations

from irqmon.analysis import Finding
from irqmon.output.sarif import split_source
from irqmon.output.terminal import plain
from irqmon.tracefile import Trace

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


def _data(text: str) -> str:
    """A workflow command's message: `%`, CR and LF escaped (GitHub's toolkit does the same)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    """A workflow command's property value: as data, and `:` and `,` too."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")
