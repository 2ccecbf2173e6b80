"""Per-ISR execution time and period jitter, CPU load per window, and the halts of a halting
capture, against hand computations on hand-placed rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic import METADATA, frame, irq_trace

from irqmon.analysis import analysis_of
from irqmon.report.model import ReportModel, build_model, load_window
from irqmon.tracefile import Trace

# TIM2 (priority 5) six times, the second preempted by EXTI0 (priority 1) for 0.1 s, the last
# still running when the trace ends at 7.0 s (EXTI0 preempting it from 6.9 s).
EVENTS = [
    (0.0, "irq_enter", 44, "TIM2", 5), (0.1, "irq_exit", 44, "TIM2", 5),
    (1.0, "irq_enter", 44, "TIM2", 5), (1.1, "irq_enter", 22, "EXTI0", 1), (1.2, "irq_exit", 22, "EXTI0", 1),
    (1.4, "irq_exit", 44, "TIM2", 5),
    (2.5, "irq_enter", 44, "TIM2", 5), (2.7, "irq_exit", 44, "TIM2", 5),
    (3.0, "irq_enter", 44, "TIM2", 5), (3.15, "irq_exit", 44, "TIM2", 5),
    (5.0, "irq_enter", 44, "TIM2", 5), (5.35, "irq_exit", 44, "TIM2", 5),
    (6.0, "irq_enter", 22, "EXTI0", 1), (6.05, "irq_exit", 22, "EXTI0", 1),
    (6.5, "irq_enter", 44, "TIM2", 5), (6.9, "irq_enter", 22, "EXTI0", 1), (7.0, "irq_exit", 22, "EXTI0", 1),
]  # fmt: skip


def model_of(trace: Trace) -> ReportModel:
    return build_model(analysis_of(trace, rules=[]).context)


def stats_of(name: str, model: ReportModel | None = None):
    table = (model or model_of(irq_trace(EVENTS))).isr_stats()
    return table[table["exception"] == name].iloc[0]


def test_execution_time_is_self_time_of_whole_activations():
    tim2 = stats_of("TIM2")
    # Self times 0.1, 0.4 - 0.1 (EXTI0 inside), 0.2, 0.15, 0.35; the open last one left out.
    assert tim2["count"] == 5
    assert tim2["exec_min"] == pytest.approx(0.1)
    assert tim2["exec_median"] == pytest.approx(0.2)
    assert tim2["exec_max"] == pytest.approx(0.35)
    # p99 of [0.1, 0.15, 0.2, 0.3, 0.35], linear: 0.3 + 0.96 * (0.35 - 0.3)
    assert tim2["exec_p99"] == pytest.approx(0.348)
    exti0 = stats_of("EXTI0")
    assert (exti0["count"], exti0["exec_min"], exti0["exec_max"]) == (3, pytest.approx(0.05), pytest.approx(0.1))


def test_period_and_jitter_from_successive_entries():
    tim2 = stats_of("TIM2")
    # Entries at 0, 1, 2.5, 3, 5, 6.5: periods 1, 1.5, 0.5, 2, 1.5 (mean 1.3).
    assert tim2["periods"] == 5
    assert (tim2["period_median"], tim2["period_min"], tim2["period_max"]) == (pytest.approx(1.5), pytest.approx(0.5), pytest.approx(2.0))
    assert tim2["jitter"] == pytest.approx(np.sqrt((0.3**2 + 0.2**2 + 0.8**2 + 0.7**2 + 0.2**2) / 5))
    exti0 = stats_of("EXTI0")
    assert (exti0["period_min"], exti0["period_max"]) == (pytest.approx(0.9), pytest.approx(4.9))


def test_most_urgent_first_and_no_halts_without_halting_rows():
    table = model_of(irq_trace(EVENTS)).isr_stats()
    assert list(table["exception"]) == ["EXTI0", "TIM2"]
    assert list(table["halts"]) == [0, 0]


def test_activations_cut_by_the_window_are_left_out():
    model = model_of(irq_trace(EVENTS)).clipped(1.05, 6.0)
    tim2 = stats_of("TIM2", model)
    # Inside whole: 2.5-2.7, 3.0-3.15, 5.0-5.35 (1.0-1.4 begins before the window).
    assert tim2["count"] == 3 and tim2["exec_min"] == pytest.approx(0.15) and tim2["exec_max"] == pytest.approx(0.35)
    assert tim2["periods"] == 2 and tim2["period_min"] == pytest.approx(0.5)


def test_cpu_load_is_the_share_of_each_window_in_handler_mode():
    load = model_of(irq_trace(EVENTS)).cpu_load(1.0)
    assert list(load.index) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    np.testing.assert_allclose(load["TIM2"], [0.1, 0.3, 0.2, 0.15, 0.0, 0.35, 0.4], atol=1e-9)
    np.testing.assert_allclose(load["EXTI0"], [0.0, 0.1, 0.0, 0.0, 0.0, 0.0, 0.15], atol=1e-9)
    np.testing.assert_allclose(load.sum(axis=1), [0.1, 0.4, 0.2, 0.15, 0.0, 0.35, 0.55], atol=1e-9)


def test_cpu_load_last_window_is_a_share_of_its_own_length():
    load = model_of(irq_trace(EVENTS)).cpu_load(2.0)  # windows 0-2, 2-4, 4-6, 6-7
    np.testing.assert_allclose(load.sum(axis=1), [0.5 / 2, 0.35 / 2, 0.35 / 2, 0.55 / 1], atol=1e-9)


@pytest.mark.parametrize("duration, window", [(7.0, 0.05), (1.0, 0.01), (0.3, 0.002), (150.0, 1.0)])
def test_load_window_is_round(duration, window):
    assert load_window(duration) == pytest.approx(window)


def halting_trace(backend: str | None) -> Trace:
    """TIM2 five times: three run 1 ms without a halt; one has two halting rows inside and lasts
    41 ms, one has one and lasts 21 ms: 20 ms per halt. One more halting row in thread mode."""
    rows = [
        (0.000, "irq_enter", 44), (0.001, "irq_exit", 44), (0.010, "access", 0),
        (0.100, "irq_enter", 44), (0.110, "access", 44), (0.130, "access", 44), (0.141, "irq_exit", 44),
        (0.200, "irq_enter", 44), (0.201, "irq_exit", 44),
        (0.300, "irq_enter", 44), (0.310, "access", 44), (0.321, "irq_exit", 44),
        (0.400, "irq_enter", 44), (0.401, "irq_exit", 44), (0.500, "config", None),
    ]  # fmt: skip
    times, events, ipsr = zip(*rows)
    columns = {
        "time": list(times), "event": list(events), "ipsr": list(ipsr),
        "exception": [None if i is None else "TIM2" if i else "Thread" for i in ipsr],
        "priority": [5 if i else None for i in ipsr], "kind": ["irq" if e.startswith("irq") else "watch" for e in events],
        "symbol": ["max_syscall_priority" if e == "config" else None for e in events],
    }  # fmt: skip
    metadata = dict(METADATA) | ({"backend": backend} if backend else {})
    return Trace(frame(columns, len(rows)), metadata, Path("halting.csv"))


def test_halts_counted_per_activation_and_their_cost_estimated():
    model = model_of(halting_trace("gdbmi"))
    assert list(model.activations.sort_values("start")["halts"]) == [0, 2, 0, 1, 0]
    halting = model.halting()
    assert (halting.backend, halting.halts) == ("gdbmi", 4)  # the config row is no hit
    assert halting.per_halt == pytest.approx(0.020)
    assert halting.stopped == pytest.approx(0.080)
    assert stats_of("TIM2", model)["halts"] == 3


@pytest.mark.parametrize("backend", [None, "swo-replay"])
def test_no_halting_without_a_halting_backend(backend):
    assert model_of(halting_trace(backend)).halting() is None


def test_halt_cost_unknown_when_every_activation_was_hit():
    model = model_of(halting_trace("rsp")).clipped(0.05, 0.15)  # only the activation with two halts
    halting = model.halting()
    assert halting.halts == 2 and halting.per_halt is None and halting.stopped is None


def test_timing_table_left_out_without_whole_activations(tmp_path):
    """Halting rows only (no exception trace): no handler is seen from entry to exit."""
    from irqmon.report import write_report

    columns = {"time": [0.0, 1.0, 2.0, 3.0], "event": "access", "ipsr": [0, 44, 44, 0],
               "exception": ["Thread", "TIM2", "TIM2", "Thread"], "priority": [None, 5, 5, None]}  # fmt: skip
    trace = Trace(frame(columns, 4), dict(METADATA), Path("halting-only.csv"))
    text = write_report(analysis_of(trace, rules=[]), trace.path, tmp_path / "r").read_text(encoding="utf-8")
    assert "### Per-ISR execution time" not in text
    assert "Per-ISR execution time and period jitter: no handler seen from its entry to its exit" in text
