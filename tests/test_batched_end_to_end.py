"""`irqmon analyze` in batches on live captures: every sample captured on QEMU and analysed with
the rules that judge a trace in batches, cut into batches of 997 rows (the recorded captures test batches of a few rows), as CSV and as Parquet,
with the source lines of the sample's ELF, gives the findings of the whole-trace analysis."""

from __future__ import annotations

import json

import pytest

from irqmon.analysis import all_rules, analyze
from irqmon.elf_sources import recorded_elf, with_elf_sources
from irqmon.tracefile import load_trace
from support import irqmon, sample_names

STREAMING = [rule_id for rule_id, rule in all_rules().items() if rule.stream is not None]


def _whole(trace_path) -> list[dict]:
    trace = load_trace(trace_path)
    elf = recorded_elf(trace.metadata)
    assert elf is not None  # the sample's ELF: its source lines are part of the findings
    findings = analyze(with_elf_sources(trace, elf), rules=STREAMING)
    return json.loads(json.dumps([f.to_dict() for f in findings]))


@pytest.mark.parametrize("sample", sample_names())
def test_batched_cli_gives_the_whole_traces_findings(sample, sample_trace, tmp_path):
    trace = sample_trace(sample)
    parquet = tmp_path / "trace.parquet"
    assert irqmon("convert", str(trace), str(parquet)).returncode == 0
    whole = _whole(trace)
    for path in (trace, parquet):
        out = tmp_path / f"{path.suffix[1:]}.json"
        result = irqmon("analyze", str(path), "--rules", ",".join(STREAMING), "--batch-rows", "997", "--format", "json", "-o", str(out))
        assert result.returncode in (0, 1), result.stderr
        assert json.loads(out.read_text())["findings"] == whole


def test_batch_rows_must_be_a_positive_number(sample_trace):
    result = irqmon("analyze", str(sample_trace("usb_cdc_malloc_isr")), "--rules", "malloc-in-isr", "--batch-rows", "0")
    assert result.returncode == 2
    assert "--batch-rows: 0 rows: at least 1" in result.stderr


def test_the_default_rules_judge_the_storm_sample_in_batches(sample_trace, tmp_path):
    """Every rule judges a trace in batches, interrupt-storm too: the default rule set reads the
    storm sample's capture in batches and gives the whole trace's findings, the storm among them."""
    assert set(STREAMING) == set(all_rules())
    trace = sample_trace("hal_i2c_lock_deadlock")
    out = tmp_path / "findings.json"
    result = irqmon("analyze", str(trace), "--batch-rows", "997", "--format", "json", "-o", str(out))
    assert result.returncode == 1, result.stderr
    findings = json.loads(out.read_text())["findings"]
    assert findings == _whole(trace) and "interrupt-storm" in {f["rule"] for f in findings}
