"""Out-of-core analysis: a trace judged batch by batch gives the findings the whole trace gives.

Every recorded capture, cut into batches of every small size (a batch edge between every pair of
rows, inside calls, activations and storms), against the whole-trace analysis of the same rules:
the rules that can judge a trace in batches."""

from __future__ import annotations

from pathlib import Path

import pytest

from irqmon.analysis import all_rules, analyze, analyze_in_batches, streams
from irqmon.tracefile import load_trace

TRACES = Path(__file__).parent / "traces"
RULES = all_rules()
STREAMING = [rule_id for rule_id, rule in RULES.items() if rule.stream is not None]


def _in_batches(path: Path, rows: int, rules: list[str]) -> list[dict]:
    trace = load_trace(path)
    table = trace.table
    batches = lambda: [table.slice(start, rows) for start in range(0, table.num_rows, rows)]  # noqa: E731
    findings, _ = analyze_in_batches(batches, trace.metadata, rules=rules)
    return sorted((f.to_dict() for f in findings), key=lambda f: (f["rule"], f["first_seq"]))


def _whole(path: Path, rules: list[str]) -> list[dict]:
    return sorted((f.to_dict() for f in analyze(load_trace(path), rules=rules)), key=lambda f: (f["rule"], f["first_seq"]))


def test_the_call_rules_stream():
    assert {"malloc-in-isr", "mutex-in-isr", "rtos-api-misuse", "isr-priority-violation"} <= set(STREAMING)
    assert streams(STREAMING) and not streams()


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
    assert {"malloc-in-isr", "mutex-in-isr", "rtos-api-misuse", "isr-priority-violation"} <= found
