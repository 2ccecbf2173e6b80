"""Out-of-core analysis: a trace judged batch by batch gives the findings the whole trace gives.

Every recorded capture, cut into batches of every small size (a batch edge between every pair of
rows, inside calls, activations and storms), against the whole-trace analysis of the same rules:
the rules that can judge a trace in batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from irqmon.analysis import AnalysisConfig, all_rules, analyze
from irqmon.analysis.batches import findings_in_batches, streamable
from irqmon.analysis.context import Before, Context
from irqmon.analysis.facts import FACT_COLUMNS, facts_of
from irqmon.tracefile import load_trace
from section_edges import TRACES as SECTION_EDGES
from tracebuild import write_trace

TRACES = Path(__file__).parent / "traces"
RULES = all_rules()
STREAMING = [rule_id for rule_id, rule in RULES.items() if rule.stream is not None]


def _in_batches(path: Path, rows: int, rules: list[str]) -> list[dict]:
    trace = load_trace(path)
    table = trace.table
    batches = lambda: [table.slice(start, rows) for start in range(0, table.num_rows, rows)]  # noqa: E731
    findings = findings_in_batches(batches, trace.metadata, AnalysisConfig(), RULES, rules)
    return sorted((f.to_dict() for f in findings), key=lambda f: (f["rule"], f["first_seq"]))


def _whole(path: Path, rules: list[str]) -> list[dict]:
    return sorted((f.to_dict() for f in analyze(load_trace(path), rules=rules)), key=lambda f: (f["rule"], f["first_seq"]))


def test_the_call_rules_stream():
    assert {"malloc-in-isr", "mutex-in-isr", "rtos-api-misuse", "isr-priority-violation", "non-reentrant-reentry", "critical-section-imbalance"} <= set(STREAMING)
    assert streamable(RULES, STREAMING) and not streamable(RULES, list(RULES))


# Every streaming rule; and mutex-in-isr alone, which then reports the heap lock inside malloc.
RULE_SETS = {"streaming": STREAMING, "mutex-alone": ["mutex-in-isr"]}


@pytest.mark.parametrize("rules", RULE_SETS, ids=str)
@pytest.mark.parametrize("rows", [3, 16])
@pytest.mark.parametrize("capture", sorted(TRACES.glob("*.csv")), ids=lambda p: p.stem)
def test_batches_give_the_whole_traces_findings(capture, rows, rules):
    assert _in_batches(capture, rows, RULE_SETS[rules]) == _whole(capture, RULE_SETS[rules])


@pytest.mark.parametrize("capture", ["usb_cdc_malloc_isr", "exti_imr_rmw_race", "hal_clean"])
def test_a_batch_edge_between_every_two_rows(capture):
    path = TRACES / f"{capture}.csv"
    assert _in_batches(path, 1, STREAMING + ["mutex-in-isr"]) == _whole(path, STREAMING + ["mutex-in-isr"])


def test_the_comparison_sees_findings():
    """The samples' captures do give these rules' findings (the comparisons above are not of nothing)."""
    found = {f["rule"] for capture in TRACES.glob("*.csv") for rules in RULE_SETS.values() for f in _whole(capture, rules)}
    assert {"malloc-in-isr", "mutex-in-isr", "rtos-api-misuse", "isr-priority-violation", "non-reentrant-reentry", "critical-section-imbalance"} <= found


# Each rule alone too: what another rule carries must not stand in for what a rule carries itself.
SECTION_RULE_SETS = {"streaming": STREAMING, "sections-alone": ["critical-section-imbalance"], "reentry-alone": ["non-reentrant-reentry"]}


@pytest.mark.parametrize("rules", SECTION_RULE_SETS)
@pytest.mark.parametrize("rows", [1, 2, 3])
@pytest.mark.parametrize("name", SECTION_EDGES)
def test_batch_edges_inside_sections_calls_and_activations(tmp_path, name, rows, rules):
    path = write_trace(tmp_path / "trace.csv", SECTION_EDGES[name])
    assert _in_batches(path, rows, SECTION_RULE_SETS[rules]) == _whole(path, SECTION_RULE_SETS[rules])


def test_the_section_edges_give_every_case(tmp_path):
    """The small traces above do give each kind of finding of the two rules."""
    found = {
        (f["rule"], f["evidence"].get("case")) for name, rows in SECTION_EDGES.items()
        for f in _whole(write_trace(tmp_path / f"{name}.csv", rows), STREAMING)
    }  # fmt: skip
    assert {("non-reentrant-reentry", None)} | {
        ("critical-section-imbalance", case) for case in ("inner-enable", "isr-changed-mask", "exit-without-enter", "isr-returned-inside")
    } <= found


@pytest.mark.parametrize("name", ["rotated-sections", "rotated-sections-cut-off", "rotated-puts"])
def test_a_batch_sees_the_whole_traces_coverage(tmp_path, name):
    """Coverage comes from the trace's facts in a batch: the same sites, turns and span (a capture
    cut off with sites armed runs to the trace's last time) as the whole trace's."""
    trace = load_trace(write_trace(tmp_path / "trace.csv", SECTION_EDGES[name]))
    whole = Context(trace.table, trace.metadata, AnalysisConfig()).coverage
    table = trace.table
    facts = facts_of([table.select(FACT_COLUMNS)])
    batch = Context([table.slice(2, 3)], trace.metadata, AnalysisConfig(), Before(facts)).coverage
    assert whole is not None and batch is not None
    assert (batch.sites, batch.span, batch.seqs.tolist()) == (whole.sites, whole.span, whole.seqs.tolist())
    assert {name: seqs.tolist() for name, seqs in batch.changes.items()} == {name: seqs.tolist() for name, seqs in whole.changes.items()}
