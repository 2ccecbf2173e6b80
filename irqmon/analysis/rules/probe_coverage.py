"""probe-coverage: the capture armed its probe sites in turns (or some not at all); a note of what it covered.

Why it is bad:
    A silence that means less than it seems. A chip has a few FPB and DWT comparators (6 and
    4 on a Cortex-M4); when the probe packs find more sites than that, irqmon arms them in
    sets, in turns (or only the first set with --no-rotate). A rule sees only what happened
    while its sites were armed: no finding then means none in that share of the capture.

Example:
    printf_tasks_critical under the stm32f405 budget: 24 breakpoints in 4 sets, each armed
    about a quarter of the time.

Instead:
    Capture longer, choose fewer packs with --probes (irqmon probes suggests a set that fits),
    or on QEMU use the in-QEMU recorder (no comparators) or --unlimited.
"""

from __future__ import annotations

import numpy as np

from irqmon.analysis.context import Context
from irqmon.analysis.coverage import Coverage, summary
from irqmon.analysis.findings import Finding, fingerprint
from irqmon.analysis.registry import Rule

RULE = Rule(id="probe-coverage", severity="note", summary="probe sites armed in turns or left out: what the capture covered")


class CoverageNote:
    """The note needs only the capture's coverage, the whole trace's in any batch."""

    def __init__(self) -> None:
        self.coverage: Coverage | None = None

    def add(self, ctx: Context) -> None:
        self.coverage = ctx.coverage

    def carry(self, ctx: Context) -> np.ndarray:
        return np.zeros(0, dtype=np.int64)

    def findings(self) -> list[Finding]:
        coverage = self.coverage
        if coverage is None or not coverage.partial:
            return []
        sites = {site.name: round(site.armed_seconds, 3) for site in coverage.sites}
        return [
            Finding(
                rule=RULE.id, severity="note", title=f"{RULE.id}: {summary(coverage)}",
                message="Findings (and their absence) hold for the time each probe site was armed; report.md lists each site's armed time.",
                fingerprint=fingerprint(RULE.id, ["coverage"]), count=len(coverage.sites), first_time=0.0,
                last_time=coverage.span, first_seq=0, evidence={"armed_seconds": sites, "span_seconds": round(coverage.span, 3)},
            )  # fmt: skip
        ]


def stream() -> CoverageNote:
    return CoverageNote()
