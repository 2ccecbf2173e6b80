"""A synthetic trace of a million rows renders in seconds, and its numbers add up."""

from __future__ import annotations

import time

import pytest
from reportcheck import assert_real_figure
from synthetic import million_row_trace

from irqmon.analysis import analysis_of
from irqmon.report import write_report
from irqmon.report.model import build_model

RENDER_BUDGET_S = 60.0  # generous for a loaded CI machine; a quiet one takes under ten


@pytest.mark.timeout(180)
def test_million_rows_render_quickly_with_exact_totals(tmp_path):
    trace, expected = million_row_trace(tmp_path / "million.csv")
    assert len(trace.frame) == expected["rows"] == 1_000_000
    began = time.perf_counter()
    analysis = analysis_of(trace, rules=[])  # the panels alone
    report = write_report(analysis, trace.path, tmp_path / "report", layout="full")
    elapsed = time.perf_counter() - began
    assert elapsed < RENDER_BUDGET_S, f"{elapsed:.1f} s"
    for png in (tmp_path / "report").glob("*.png"):
        assert_real_figure(png.read_bytes())
    assert {"timeline.png", "rates.png", "masks.png"} <= {p.name for p in (tmp_path / "report").glob("*.png")}
    assert report.stat().st_size < 50_000, "the markdown summarizes, it does not list events"
    table = build_model(analysis.context).summary().set_index("exception")
    assert table.loc["TIM2", "count"] == expected["tim2_count"]
    assert table.loc["EXTI0", "count"] == expected["exti0_count"]
    assert table.loc["TIM2", "total"] == pytest.approx(expected["tim2_total"], rel=1e-6)
    assert table.loc["TIM2", "self_time"] == pytest.approx(expected["tim2_self"], rel=1e-6)
    assert table.loc["EXTI0", "total"] == pytest.approx(expected["exti0_total"], rel=1e-6)
    assert table.loc["EXTI0", "max_depth"] == 2
