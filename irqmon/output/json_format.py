"""The JSON result (`docs/findings.md`), and reading one back: its findings, or as a baseline."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from irqmon import __version__
from irqmon.analysis import Finding
from irqmon.analysis.findings import SEVERITIES
from irqmon.errors import UsageError
from irqmon.output import strict_json
from irqmon.tracefile import Trace

if TYPE_CHECKING:
    from irqmon.fleet.merge import Fleet, FleetFinding
    from irqmon.fleet.task import TraceResult

RESULT_SCHEMA = 1


def result(findings: list[Finding], trace: Trace) -> dict[str, Any]:
    counts = Counter(f.severity for f in findings)
    return {
        "schema": RESULT_SCHEMA,
        "tool": {"name": "irqmon", "version": __version__},
        "trace": {"path": str(trace.path), "rows": trace.rows, "metadata": dict(trace.metadata)},
        "summary": {severity: counts.get(severity, 0) for severity in SEVERITIES},
        "findings": [f.to_dict() for f in findings],
    }


def render(findings: list[Finding], trace: Trace) -> str:
    return strict_json.dumps(result(findings, trace), indent=2, ensure_ascii=False) + "\n"


def fleet_result(fleet: Fleet) -> dict[str, Any]:
    """Many traces' result: `traces` (each trace, failed ones with their error) and `fleet` in
    place of `trace`; `findings` merged by fingerprint, each with its `fleet` sightings."""
    counts = Counter(m.severity for m in fleet.findings)
    return {
        "schema": RESULT_SCHEMA,
        "tool": {"name": "irqmon", "version": __version__},
        "fleet": {
            "traces": len(fleet.results),
            "analysed": len(fleet.analysed),
            "failed": len(fleet.failed),
            "builds": fleet.builds,
        },
        "traces": [_trace_entry(result) for result in fleet.results],
        "summary": {severity: counts.get(severity, 0) for severity in SEVERITIES},
        "findings": [_merged_finding(merged) for merged in fleet.findings],
    }


def render_fleet(fleet: Fleet) -> str:
    return strict_json.dumps(fleet_result(fleet), indent=2, ensure_ascii=False) + "\n"


def _trace_entry(result: TraceResult) -> dict[str, Any]:
    return {
        "path": result.path,
        "seen_at": result.seen_at,
        "seen_from": result.seen_from,
        "rows": result.rows,
        "metadata": dict(result.metadata),
        "findings": len(result.findings),
        "error": result.error,
    }


def _merged_finding(merged: FleetFinding) -> dict[str, Any]:
    return merged.finding.to_dict() | {
        "severity": merged.severity,
        "fleet": {
            "traces": len(merged.traces),
            "occurrences": merged.occurrences,
            "seen_in": merged.traces,
            "builds": merged.builds,
            "first_seen": {"trace": merged.first_seen.trace, "time": merged.first_seen.seen_at},
            "last_seen": {"trace": merged.last_seen.trace, "time": merged.last_seen.seen_at},
        },
    }


def _read_result(path: Path, what: str) -> dict[str, Any]:
    """An earlier JSON result (`irqmon analyze --format json`), read as `what` (for messages)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: {what} is not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("schema") != RESULT_SCHEMA or not isinstance(data.get("findings"), list):
        raise UsageError(f"{path}: {what} is not an irqmon JSON result (from `irqmon analyze --format json`)")
    return data


def baseline_fingerprints(path: Path) -> set[str]:
    """Fingerprints of the findings in an earlier JSON result."""
    findings = _read_result(path, "baseline")["findings"]
    if not all(isinstance(f, dict) and isinstance(f.get("fingerprint"), str) for f in findings):
        raise UsageError(f"{path}: baseline findings lack fingerprints")
    return {f["fingerprint"] for f in findings}


def read_findings(path: Path) -> list[Finding]:
    """The findings of an earlier JSON result."""
    findings = _read_result(path, "the findings file")["findings"]
    try:
        return [Finding.from_dict(item) for item in findings]
    except (TypeError, AttributeError) as exc:
        raise UsageError(f"{path}: a finding lacks a field ({exc})") from None
