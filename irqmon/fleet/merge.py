"""Findings of many traces merged by fingerprint: one merged finding per site, with the traces
and firmware builds it was seen in, and when it was first and last seen."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from irqmon.analysis import SEVERITY_ORDER, Finding
from irqmon.fleet.task import TraceResult


@dataclass(frozen=True)
class Sighting:
    """A trace a finding was seen in, and when that trace was taken."""

    trace: str
    seen_at: str  # ISO 8601 (TraceResult.seen_at)


@dataclass(frozen=True)
class FleetFinding:
    """One site's finding across traces; `finding` is as the trace that first saw it reports it."""

    finding: Finding
    severity: str  # the most severe any trace gave it
    traces: list[str]  # the traces it was seen in, earliest first
    occurrences: int  # its count summed over those traces
    builds: list[str]  # firmware build ids of those traces (known ones), in the order first seen
    first_seen: Sighting
    last_seen: Sighting


@dataclass(frozen=True)
class Fleet:
    """Every trace's result, earliest taken first, and the findings merged across them."""

    results: list[TraceResult]
    findings: list[FleetFinding] = field(default_factory=list)

    @property
    def analysed(self) -> list[TraceResult]:
        return [r for r in self.results if r.error is None]

    @property
    def failed(self) -> list[TraceResult]:
        return [r for r in self.results if r.error is not None]

    @property
    def builds(self) -> list[str]:
        """The firmware build ids of the analysed traces (known ones), in time order."""
        return list(dict.fromkeys(r.build_id for r in self.analysed if r.build_id))


def merge(results: Iterable[TraceResult], ignored: set[str] | None = None) -> Fleet:
    """The results in time order (then by path) and their findings merged by fingerprint, most
    severe, then most widespread first; findings whose fingerprints are `ignored` left out."""
    ordered = sorted(results, key=lambda r: (r.seen_time, r.path))
    sightings: dict[str, list[tuple[TraceResult, Finding]]] = {}
    for result in ordered:
        for finding in result.findings:
            if not ignored or finding.fingerprint not in ignored:
                sightings.setdefault(finding.fingerprint, []).append((result, finding))
    merged = [_merged(seen) for seen in sightings.values()]
    merged.sort(key=lambda m: (_rank(m.severity), -len(m.traces), m.finding.rule, m.first_seen.seen_at))
    return Fleet(ordered, merged)


def _merged(seen: list[tuple[TraceResult, Finding]]) -> FleetFinding:
    first, last = seen[0][0], seen[-1][0]
    return FleetFinding(
        finding=seen[0][1],
        severity=min((f.severity for _, f in seen), key=_rank),
        traces=list(dict.fromkeys(r.path for r, _ in seen)),
        occurrences=sum(f.count for _, f in seen),
        builds=list(dict.fromkeys(r.build_id for r, _ in seen if r.build_id)),
        first_seen=Sighting(first.path, first.seen_at),
        last_seen=Sighting(last.path, last.seen_at),
    )


def _rank(severity: str) -> int:
    return SEVERITY_ORDER.get(severity, len(SEVERITY_ORDER))
