"""A synthetic trace of a million rows renders every panel, and its numbers add up (speed is
for benchmarks/, never a test)."""

from __future__ import annotations

import pytest
from reportcheck import assert_real_figure
from synthetic import million_row_trace

from irqmon.analysis import analysis_of
from irqmon.report import write_report
from irqmon.report.model import build_model

# The full layout with the panels that follow findings drawn anyway (this trace has no findings).
EVERY_PANEL = "\n".join(f'[[panel]]\nkind = "{kind}"\n' + ('always = true\n' if kind in ("masks", "heap") else "") for kind in
                        ("summary", "timing", "timeline", "load", "rates", "masks", "locks", "heap"))  # fmt: skip


@pytest.mark.timeout(600)  # a hang guard, not a speed target
def test_million_rows_render_with_exact_totals(tmp_path):
    trace, expected = million_row_trace(tmp_path / "million.csv")
    assert len(trace.frame) == expected["rows"] == 1_000_000
    layout = tmp_path / "every.toml"
    layout.write_text(EVERY_PANEL)
    analysis = analysis_of(trace, rules=[])  # the panels alone
    report = write_report(analysis, trace.path, tmp_path / "report", layout=layout)
    for png in (tmp_path / "report").glob("*.png"):
        assert_real_figure(png.read_bytes())
    assert {"timeline.png", "load.png", "rates.png", "masks.png"} <= {p.name for p in (tmp_path / "report").glob("*.png")}
    assert report.stat().st_size < 50_000, "the markdown summarizes, it does not list events"
    table = build_model(analysis.context).summary().set_index("exception")
    assert table.loc["TIM2", "count"] == expected["tim2_count"]
    assert table.loc["EXTI0", "count"] == expected["exti0_count"]
    assert table.loc["TIM2", "total"] == pytest.approx(expected["tim2_total"], rel=1e-6)
    assert table.loc["TIM2", "self_time"] == pytest.approx(expected["tim2_self"], rel=1e-6)
    assert table.loc["EXTI0", "total"] == pytest.approx(expected["exti0_total"], rel=1e-6)
    assert table.loc["EXTI0", "max_depth"] == 2
    stats = build_model(analysis.context).isr_stats().set_index("exception")
    # TIM2 runs 10 µs every 40 µs, 3 of them given to EXTI0 every other time: 7 or 10 µs itself.
    assert stats.loc["TIM2", "count"] == expected["tim2_count"]
    assert (stats.loc["TIM2", "exec_min"], stats.loc["TIM2", "exec_max"]) == (pytest.approx(7e-6), pytest.approx(10e-6))
    assert stats.loc["TIM2", "period_median"] == pytest.approx(40e-6) and stats.loc["TIM2", "jitter"] == pytest.approx(0, abs=1e-9)
    assert stats.loc["EXTI0", "period_median"] == pytest.approx(80e-6)
