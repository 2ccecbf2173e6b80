"""The analyzer: runs the rules over a trace and returns findings.

No backend and no plotting here: a trace in, findings out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from irqmon.analysis.context import AnalysisConfig, Context
from irqmon.analysis.coverage import Coverage, not_observed
from irqmon.analysis.findings import SEVERITIES, Finding
from irqmon.analysis.registry import LoadedRule, Rule, all_rules
from irqmon.errors import UsageError
from irqmon.tracefile import Trace

if TYPE_CHECKING:
    import pyarrow as pa

    from irqmon.analysis.facts import TraceFacts

__all__ = [
    "Analysis", "AnalysisConfig", "Context", "Finding", "Rule", "LoadedRule", "all_rules", "analysis_of", "analyze",
    "analyze_in_batches", "streams",
]  # fmt: skip

SEVERITY_ORDER = {severity: rank for rank, severity in enumerate(SEVERITIES)}


@dataclass(frozen=True)
class Analysis:
    """A trace's findings and the context they were found in: what the report and the export draw."""

    context: Context
    findings: list[Finding]


def analyze(
    trace: Trace, config: AnalysisConfig | None = None, rules: Sequence[str] | None = None, release: bool = False
) -> list[Finding]:
    """Findings of the selected rules (all by default), most severe and earliest first.

    With `release`, the analysis takes the trace's rows (`Trace.take_table`) and frees them once
    its own columns are built: the trace keeps only its path, metadata and row count."""
    return analysis_of(trace, config, rules, release).findings


def analysis_of(
    trace: Trace, config: AnalysisConfig | None = None, rules: Sequence[str] | None = None, release: bool = False
) -> Analysis:
    """`analyze`, keeping the context the rules ran on."""
    available = all_rules()
    selected = _checked(available, rules)
    ctx = Context([trace.take_table()] if release else trace.table, trace.metadata, config or AnalysisConfig())
    ctx.rules = frozenset(selected)
    findings = [finding for rule_id in selected for finding in available[rule_id].check(ctx)]
    return Analysis(ctx, _in_order(findings + _not_observed(available, selected, ctx.coverage)))


def streams(rules: Sequence[str] | None = None) -> bool:
    """Whether every one of `rules` (all by default) can judge a trace in batches."""
    from irqmon.analysis.batches import streamable

    available = all_rules()
    return streamable(available, _checked(available, rules))


def analyze_in_batches(
    batches: Callable[[], Iterable[pa.Table]], metadata: dict[str, str], config: AnalysisConfig | None = None,
    rules: Sequence[str] | None = None, fact_batches: Iterable[pa.Table] | None = None,
) -> tuple[list[Finding], TraceFacts]:  # fmt: skip
    """`analyze` of a trace read in batches (`batches()` reads them anew; see `streams`), in
    memory that follows the batch size, not the trace's length; and the trace's facts (its row
    count among them) that the first pass learned.
    `fact_batches`: the trace again, only the columns its facts need (else `batches()` twice)."""
    from irqmon.analysis.batches import findings_in_batches

    available = all_rules()
    selected = _checked(available, rules)
    findings, facts = findings_in_batches(batches, metadata, config or AnalysisConfig(), available, selected, fact_batches)
    return _in_order(findings + _not_observed(available, selected, facts.capture_coverage)), facts


def _not_observed(available: dict[str, LoadedRule], selected: list[str], coverage: Coverage | None) -> list[Finding]:
    """The notes of the selected rules whose probe sites the capture never armed."""
    if coverage is None:
        return []
    return [note for rule_id in selected if (note := not_observed(available[rule_id].rule, coverage))]


def _checked(available: dict[str, LoadedRule], rules: Sequence[str] | None) -> list[str]:
    selected = list(available) if rules is None else list(rules)
    unknown = [r for r in selected if r not in available]
    if unknown:
        raise UsageError(f"unknown rule {unknown[0]!r} (irqmon analyze --list-rules shows them)")
    return selected


def _in_order(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then earliest."""
    return sorted(findings, key=lambda f: (SEVERITY_ORDER.get(f.severity, 3), f.first_seq, f.rule))
