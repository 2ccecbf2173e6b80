"""The benchmark scripts run end to end at a tiny size (no timing is judged here)."""

from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
import pytest
from support import ROOT

from irqmon.tracefile import load_trace

BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import gen_trace


def test_run_tiny_writes_the_three_ratios(built_samples, tmp_path):
    report = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--tiny", "--results", str(report)],
        capture_output=True, text=True, timeout=600, check=False, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    text = report.read_text()
    rates = dict(re.findall(r"\| (gdb-multiarch alone \(baseline\)|`irqmon attach --backend \w+`) \| (\d+) \|", text))
    assert len(rates) == 3 and all(int(rate) > 0 for rate in rates.values())
    floors = re.findall(r"^\| floor[^|]*\| (\d+) \| [\d.]+ \|$", text, re.MULTILINE)
    assert len(floors) == 2 and all(int(rate) > 0 for rate in floors), floors
    round_trips = re.search(r"gdb-multiarch alone \*\*([\d.]+)\*\*, `irqmon attach --backend rsp` \*\*([\d.]+)\*\*", text)
    assert round_trips and float(round_trips[2]) >= 2, text  # at least the read, and the step or `c`
    slow_link = re.findall(r"^\| (gdb-multiarch alone|`irqmon attach --backend rsp`) \| (\d+) \| [\d.]+ \|$", text, re.MULTILINE)
    assert [path for path, _ in slow_link] == ["gdb-multiarch alone", "`irqmon attach --backend rsp`"], slow_link
    assert all(int(rate) > 0 for _, rate in slow_link)
    # Every activation of the tiny run (2000) entered and left, and nothing else was traced.
    assert re.search(r"\| IRQ entries \+ exits traced \| 4000 \|", text)
    recorded = re.findall(r"^\| qemu-plugin, (CSV|Parquet)[^|]*\| (\d+) \| (\d+) \| \*\*([\d.]+)\*\*", text, re.MULTILINE)
    assert [kind for kind, *_ in recorded] == ["CSV", "Parquet"] and all(float(ratio) > 0 for *_, ratio in recorded), text
    storm = re.search(r"^\| `--backend qemu-plugin` \| (\d+) \| \*\*([\d.]+)\*\*[^|]*\| (\d+) \| ([\d.]+) \|$", text, re.MULTILINE)
    assert storm and int(storm[1]) > 0 and int(storm[3]) > 0, text
    assert re.search(r"ratio \*\*[\d.]+\*\*; flat is 1", text)
    analyzer_rows = re.findall(r"^\| ([\d,]+) \| [\d.]+ s \| [\d.]+ s \| \*\*[\d.]+\*\*", text, re.MULTILINE)
    assert analyzer_rows == ["5,000", "20,000"]
    assert "capture: --backend rsp" in result.stdout and "analyzer scaling" in result.stdout
    large_rows = re.findall(r"^\| ([\d,]+) \| [\d.]+ GiB \| [\d.]+ s \| [\d.]+ s \| [\d.]+ \| [\d,]+ \| \*\*([\d.]+) GiB\*\* \|$", text, re.MULTILINE)
    assert [rows for rows, _ in large_rows] == ["5,000", "50,000"] and all(float(peak) > 0 for _, peak in large_rows), text
    assert re.search(r"analyze time ratio \*\*[\d.]+\*\* \(linear is 10\), peak RSS ratio \*\*[\d.]+\*\*", text)
    reports = re.findall(r"^\| ([\d,]+) \| [\d.]+ s \| [\d.]+ \| [\d,]+ \| \*\*([\d.]+) GiB\*\* \|$", text, re.MULTILINE)
    assert [rows for rows, _ in reports] == ["50,000"] and float(reports[0][1]) > 0, text  # `irqmon report`, the largest size
    assert "large trace: 50,000 rows" in result.stdout


def test_synthetic_trace_is_a_valid_trace_in_both_formats(tmp_path):
    csv_path, parquet_path = gen_trace.generate(12_000, tmp_path)
    from_csv, from_parquet = load_trace(csv_path), load_trace(parquet_path)
    frame = from_csv.frame
    assert len(frame) == 12_000 and (frame["seq"].diff().dropna() == 1).all()
    assert frame["time"].is_monotonic_increasing
    assert from_csv.metadata["backend"] == from_parquet.metadata["backend"] == "synthetic"
    pd.testing.assert_frame_equal(from_csv.frame, from_parquet.frame)
    # Each recorded capture appears whole in every round: its calls, accesses and IRQ rows.
    assert set(frame["event"]) >= {"call", "return", "access", "mask", "irq_enter", "irq_exit"}


def test_synthetic_trace_needs_a_whole_round(tmp_path):
    with pytest.raises(ValueError, match="not even one round"):
        gen_trace.generate(100, tmp_path)


def test_a_rerun_section_replaces_its_own_and_nothing_else(tmp_path):
    import run

    results_md = tmp_path / "RESULTS.md"
    results_md.write_text("# Benchmark results\n\n## 4. Recording\n\nkept\n")
    run.replace_section(results_md, ["## 5. Large: run 1", "", "| old table |", ""])
    results_md.write_text(results_md.read_text() + "## 6. Later\n\nalso kept\n")
    run.replace_section(results_md, ["## 5. Large: run 2", "", "| new table |", ""])
    run.replace_section(results_md, ["## 4. Recording", "", "replaced", ""])
    assert results_md.read_text() == (
        "# Benchmark results\n\n## 4. Recording\n\nreplaced\n\n## 5. Large: run 2\n\n| new table |\n\n"
        "## 6. Later\n\nalso kept\n"
    )
